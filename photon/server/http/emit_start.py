"""A plain emit's task starts at the direct emit itself, not at the top of the app.

uvicorn starts each request's task at its outermost app: here uvicorn's `ProxyHeadersMiddleware`
around `PhotonApp`, whose `__call__` hands a plain ``POST /api/event`` (no query string) to
`DirectEmit` (`photon.server.http.emit_direct`). Both are coroutine frames of the request's task:
made when it starts and passed through again each time it resumes (an emit resumes once, when
the writer has stored its events). The protocol knows the request's shape when it starts the
task, so for a plain emit it starts the task at `DirectEmit` with what `PhotonApp` would have set
(``scope["app"]``). Nothing else changes: uvicorn's `run_asgi` still wraps the call (its error
answers and logs), and a request the middleware would change (an ``X-Forwarded-For`` or
``X-Forwarded-Proto`` header) or any other shape takes the whole way as before, as does every
request once a middleware is added to the app after `create_app` (`PhotonApp.direct_emit` is
then None).
"""

from __future__ import annotations

from typing import Any, Final

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from photon.server.http.emit_direct import is_plain_emit

_FORWARDED: Final = (b"x-forwarded-for", b"x-forwarded-proto")
"""The header fields `ProxyHeadersMiddleware` reads: a request with one takes the whole way."""


def direct_app(app: Any) -> tuple[Any, Any, bool] | None:
    """The `PhotonApp` that uvicorn's app wraps, when it serves plain emits directly, its direct
    emit, and whether `ProxyHeadersMiddleware` is between them; None for any other app (another
    wrapper, a middleware added later)."""
    proxied = type(app) is ProxyHeadersMiddleware
    if proxied:
        app = app.app
    direct = getattr(app, "direct_emit", None)
    if direct is None:
        return None
    return app, direct, proxied


def plain_emit(scope: Any, proxied: bool) -> bool:
    """What `PhotonApp` takes to `DirectEmit` (`is_plain_emit`); behind `ProxyHeadersMiddleware`,
    also with no header field that the middleware acts on."""
    if not is_plain_emit(scope):
        return False
    if proxied:
        for name, _value in scope["headers"]:
            if name in _FORWARDED:
                return False
    return True


class DirectStartProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, starting a plain emit's task at `DirectEmit`."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # (Also called for a pipelined request when its turn comes, with the app it was queued with.)
        if app is self.app:
            found = direct_app(app)
            scope: Any = cycle.scope
            if found is not None and plain_emit(scope, found[2]):
                scope["app"] = found[0]  # as `PhotonApp.__call__` sets it
                app = found[1]
        super()._start_asgi_task(cycle, app)
