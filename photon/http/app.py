"""The ASGI application: Photon's routes, auth, JSON errors, metrics and the OpenAPI description.

Other parts add route groups with ``create_app(store, config, extra_routes=[...])``; routes
under ``/api`` are protected by the token check automatically, others use `require_admin`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..logs import RequestFieldsMiddleware
from ..metrics import metrics_for
from ..store import EventStore
from ..tokens import TokenSigner
from .api import api_routes
from .auth import TokenAuthMiddleware, auth_token
from .console import console_routes
from .errors import EXCEPTION_HANDLERS
from .login_throttle import LoginThrottle
from .params import RouteDoc


async def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format; no token needed)."""
    body = metrics_for(request.app.state.store).exposition()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


metrics.route_doc = RouteDoc(auth=False, answer="Prometheus text format")  # type: ignore[attr-defined]
auth_token.route_doc = RouteDoc(  # type: ignore[attr-defined]
    auth=False,
    answer='{"token": "<token>", "expires-in": <seconds>}',
    errors={
        401: "wrong or missing HTTP Basic credentials",
        429: "too many failed logins from this address; Retry-After gives the seconds to wait",
    },
)


def core_routes() -> list[BaseRoute]:
    from .group_routes import group_routes
    from .health import health_routes
    from .openapi import openapi_routes
    from .replay import replay_routes
    from .server_info import server_info

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


def create_app(
    store: EventStore,
    config: Mapping[str, Any],
    *,
    extra_routes: Iterable[BaseRoute] = (),
    signer: TokenSigner | None = None,
) -> Starlette:
    """The HTTP API of `store`. `extra_routes` are added after Photon's own."""
    signer = signer or TokenSigner.from_config(config)
    middleware = [Middleware(TokenAuthMiddleware, signer=signer)]
    if config.get("log.format") == "json":  # the request's fields on the log lines written while serving it
        middleware.insert(0, Middleware(RequestFieldsMiddleware))
    app = Starlette(
        routes=[*core_routes(), *extra_routes],
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.store = store
    app.state.config = config
    app.state.tokens = signer
    app.state.login_throttle = LoginThrottle()
    app.state.started_at = time.time()
    metrics_for(store)
    return app
