"""``POST /api/event`` served straight from ASGI, ahead of the middleware stack and the router.

Single-event emits are the busiest request a server takes, and most of what they cost in Python
was the way to the endpoint: Starlette's error and exception middlewares, the token and method
middlewares, the router's match against every route, the `Request` and `Response` objects, and
the three `send` wrappers the answer went through. `PhotonApp` (`photon.server.http.app`) hands
the plain shape of that request (``POST /api/event`` with no query string) to `DirectEmit`,
which does the same work as the routed endpoint: the token check of `TokenAuthMiddleware`, the
body limits of `read_body`, `api.emit` (the one place an emit is parsed, stored and counted),
and the app's own exception handlers for every error, so that the answers, their headers and the
metrics are the ones the routed endpoint gives. Any other shape (a query string, such as
``expected-version`` or ``access_token``; another method; OPTIONS) takes the routed way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from photon.core.metrics import metrics_for
from photon.core.store import EventStore
from photon.server.http.api import emit
from photon.server.http.auth import scope_token, unauthorized
from photon.server.http.limits import receive_body
from photon.server.tokens import TokenSigner

PATH: Final = "/api/event"
_JSON_TYPE_HEADER: Final = (b"content-type", b"application/json")


class DirectEmit:
    """The emit route as a plain ASGI app, for `PhotonApp` to call on a plain single emit."""

    def __init__(
        self,
        store: EventStore,
        config: Mapping[str, Any],
        signer: TokenSigner,
        exception_handlers: Mapping[Any, Any],
    ) -> None:
        self.store = store
        self.limit = int(config["rest.body.max.bytes"])
        self.signer = signer
        self.exception_handlers = exception_handlers
        self.metrics = metrics_for(store)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.signer.verify(scope_token(scope)):
            await unauthorized()(scope, receive, send)
            return
        try:
            answer = await emit(
                self.store, receive_body(scope, receive, self.limit), None, scope.get("client"), self.metrics
            )
        except Exception as exc:
            await self._answer_error(exc, scope, receive, send)
            return
        # Once the answer has started, nothing else can be said on this request (`send` None).
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"%d" % len(answer)), _JSON_TYPE_HEADER],
                }
            )
            await send({"type": "http.response.body", "body": answer})
        except Exception as exc:
            await self._answer_error(exc, scope, receive, None)

    async def _answer_error(self, exc: Exception, scope: Scope, receive: Receive, send: Send | None) -> None:
        """Answer `exc` as the middleware stack would: by the app's handler for its type (the
        nearest in its class's MRO); an error only the catch-all `Exception` handler takes is
        answered by it and raised again, for the server to log, as Starlette's error middleware does."""
        handler: Any = None
        for kind in type(exc).__mro__:
            if kind is not Exception and kind in self.exception_handlers:
                handler = self.exception_handlers[kind]
                break
        catch_all = handler is None
        if catch_all:
            handler = self.exception_handlers.get(Exception) or self.exception_handlers.get(500)
            if handler is None:
                raise exc
        if send is not None:
            response = await handler(Request(scope), exc)
            await response(scope, receive, send)
        elif not catch_all:
            raise exc  # the answer had started: nothing else can be said on this request
        if catch_all:
            raise exc
