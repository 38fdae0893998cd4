"""The ASGI application: Photon's routes, auth, JSON errors, metrics and the OpenAPI description.

Other parts add route groups with ``create_app(store, config, extra_routes=[...])``; routes
under ``/api`` are protected by the token check automatically, others use `require_admin`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from photon.core.metrics import metrics_for
from photon.core.store import EventStore
from photon.server.http.api import api_routes
from photon.server.http.auth import TokenAuthMiddleware, auth_token
from photon.server.http.console import console_routes
from photon.server.http.emit_direct import DirectEmit, is_plain_emit
from photon.server.http.errors import EXCEPTION_HANDLERS
from photon.server.http.login_throttle import LoginThrottle
from photon.server.http.methods import AllowedMethodsMiddleware
from photon.server.http.params import RouteDoc
from photon.server.http.schemas import Token
from photon.server.logs import RequestFieldsMiddleware
from photon.server.tokens import TokenSigner

METRICS_MEDIA = "text/plain; version=0.0.4; charset=utf-8"


async def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format; no token needed)."""
    body = metrics_for(request.app.state.store).exposition()
    return Response(body, media_type=METRICS_MEDIA)


metrics.route_doc = RouteDoc(  # type: ignore[attr-defined]
    auth=False,
    answer="Prometheus text exposition format (version 0.0.4)",
    response={"type": "string"},
    response_media=("text/plain",),
)
auth_token.route_doc = RouteDoc(  # type: ignore[attr-defined]
    auth=False,
    answer='{"token": "<token>", "expires-in": <seconds>}',
    errors={
        401: "wrong or missing HTTP Basic credentials",
        429: "too many failed logins from this address; Retry-After gives the seconds to wait",
    },
    response=Token,
    strict_query=True,
)


def core_routes() -> list[BaseRoute]:
    from photon.server.http.group_routes import group_routes
    from photon.server.http.health import health_routes
    from photon.server.http.openapi import openapi_routes
    from photon.server.http.replay import replay_routes
    from photon.server.http.server_info import server_info

    return [
        *api_routes(),
        *replay_routes(),
        *group_routes(),
        Route("/auth/token", auth_token, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *health_routes(),
        *openapi_routes(),
        Route("/api/server", server_info, methods=["GET"]),
        *console_routes(),
    ]


class PhotonApp(Starlette):
    """Photon's Starlette app, with single emits (``POST /api/event`` without a query string)
    taken straight to `DirectEmit` instead of through the middleware stack and the router.

    The direct path gives the same answers as the routed one (`photon.server.http.emit_direct`);
    it is left off when a middleware is added to the app after `create_app`, which must see
    every request."""

    direct_emit: Callable[..., Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        direct = self.direct_emit
        if direct is not None and is_plain_emit(scope):
            scope["app"] = self
            await direct(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def add_middleware(self, *args: Any, **kwargs: Any) -> None:
        super().add_middleware(*args, **kwargs)
        self.direct_emit = None


def create_app(
    store: EventStore,
    config: Mapping[str, Any],
    *,
    extra_routes: Iterable[BaseRoute] = (),
    signer: TokenSigner | None = None,
) -> PhotonApp:
    """The HTTP API of `store`. `extra_routes` are added after Photon's own."""
    signer = signer or TokenSigner.from_config(config)
    middleware = [Middleware(TokenAuthMiddleware, signer=signer), Middleware(AllowedMethodsMiddleware)]
    if config.get("log.format") == "json":  # the request's fields on the log lines written while serving it
        middleware.insert(0, Middleware(RequestFieldsMiddleware))
    app = PhotonApp(
        routes=[*core_routes(), *extra_routes],
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    direct = DirectEmit(store, config, signer, app.exception_handlers)
    # With JSON logs, the request's fields go on the lines written while serving it, here too.
    app.direct_emit = RequestFieldsMiddleware(direct) if config.get("log.format") == "json" else direct
    app.state.store = store
    app.state.config = config
    app.state.tokens = signer
    app.state.login_throttle = LoginThrottle()
    app.state.started_at = time.time()
    metrics_for(store)
    return app
