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

Served by uvicorn's cycle itself (no middleware wrapping `receive` and `send`), the body is taken
from the cycle when it has all arrived, and a stored emit's answer is written whole in one call
(`WholeAnswerCycle.whole_body`, `answer_whole`): the same bytes on the wire, without the ASGI
messages and the coroutines between. A token already checked is known by its header's bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, Final

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from photon.core.metrics import metrics_for
from photon.core.store import EventStore
from photon.server.http.api import emit
from photon.server.http.auth import scope_token, unauthorized
from photon.server.http.limits import receive_body, too_large
from photon.server.http.whole_answers import cycle_of
from photon.server.tokens import TokenSigner

PATH: Final = "/api/event"
_JSON_TYPE_HEADER: Final = (b"content-type", b"application/json")
_KNOWN_TOKENS: Final = 64
"""Authorization headers kept by their bytes once their token verified (a few clients' each)."""


def is_plain_emit(scope: Scope) -> bool:
    """The requests `DirectEmit` serves: ``POST /api/event`` over HTTP, with no query string
    (such as ``expected-version`` or ``access_token``) and no root path."""
    return (
        scope["type"] == "http"
        and scope["path"] == PATH
        and scope["method"] == "POST"
        and not scope.get("query_string")
        and not scope.get("root_path")
    )


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
        self._tokens: dict[bytes, str] = {}
        """Authorization header bytes to the token they carry, for headers whose token verified."""

    def _authorized(self, scope: Scope) -> bool:
        """`TokenAuthMiddleware`'s check: the token must verify (`TokenSigner.verify` keeps
        expiry); a header seen before skips its parsing."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                token = self._tokens.get(value)
                if token is not None:
                    return self.signer.verify(token)
                break
        else:
            value = None
        token = scope_token(scope)
        if not self.signer.verify(token):
            return False
        if value is not None and token is not None:
            if len(self._tokens) >= _KNOWN_TOKENS:
                self._tokens.clear()
            self._tokens[value] = token
        return True

    def _body(self, scope: Scope, receive: Receive) -> bytes | Awaitable[bytes]:
        """The request's body when it has all arrived within the limit (taken from the cycle: no
        coroutine to make and await); else what awaits it or refuses it (`_rest_of_body`)."""
        cycle = cycle_of(receive)
        body = cycle.whole_body() if cycle is not None else None
        if body is not None and len(body) <= self.limit:
            return body
        return self._rest_of_body(scope, receive, body)

    async def _rest_of_body(self, scope: Scope, receive: Receive, body: bytes | None) -> bytes:
        """`receive_body` for a body still arriving (`body` None), or its refusal for a whole
        body over the limit (raised where `emit` awaits it, so that it counts as a refused emit)."""
        if body is None:
            return await receive_body(scope, receive, self.limit)
        if len(body) > self.limit:
            # The Content-Length declared it first (`receive_body` names the size it declared).
            for name, value in scope["headers"]:
                if name == b"content-length":
                    raise too_large(self.limit, int(value) if value.isdigit() else None)
            raise too_large(self.limit)
        return body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._authorized(scope):
            await unauthorized()(scope, receive, send)
            return
        try:
            answer = await emit(self.store, self._body(scope, receive), None, scope.get("client"), self.metrics)
        except Exception as exc:
            await self._answer_error(exc, scope, receive, send)
            return
        cycle = cycle_of(send)
        if cycle is not None and cycle.answer_whole(
            200, ((b"content-length", b"%d" % len(answer)), _JSON_TYPE_HEADER), answer
        ):
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
