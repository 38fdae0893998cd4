"""OPTIONS and 405 answers that name every method of a path, across all the routes that serve it.

Starlette routes one method per `Route` here (`GET /api/group/{name}`, `PUT ...`, `DELETE ...`
are three routes), and on a wrong method it names only the first matching route's methods in
``Allow``. This middleware looks at every route matching the path instead: ``OPTIONS`` is
answered ``204`` with ``Allow`` listing them all, and a method none of them takes ``405``
``{"error": ...}`` with the same ``Allow`` (in place of the router's own 405 answer). Paths no
route matches (and mounted apps, such as the console's files) go on to the router unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from photon.server.http.errors import error_response

# The order an Allow header lists methods in (any other method after these).
_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> set[str]:
    """Every method some route serves at the request's path (empty: no route has this path)."""
    found: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.methods and route.matches(scope)[0] != Match.NONE:
            found |= route.methods
    return found


def allow_header(methods: set[str]) -> str:
    listed = methods | {"OPTIONS"}
    return ", ".join(sorted(listed, key=lambda m: (_ORDER.index(m) if m in _ORDER else len(_ORDER), m)))


class AllowedMethodsMiddleware:
    """Answers OPTIONS, and methods no route takes at a path, with the path's whole ``Allow``.

    Finding every route of a path costs a match against each route, so it is done only when it
    is needed: for OPTIONS, and when the router answers 405. A request a route serves pays nothing.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "OPTIONS":
            methods = allowed_methods(scope["app"].routes, scope)  # the Starlette app, set before middleware
            if methods:
                await Response(status_code=204, headers={"Allow": allow_header(methods)})(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_or_replace(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the router's own 405 answer, already replaced
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = allowed_methods(scope["app"].routes, scope)
                if methods:
                    replaced = True
                    headers = {"Allow": allow_header(methods)}
                    response = error_response(405, f"method {method} not allowed on {scope['path']}", headers=headers)
                    await response(scope, receive, send)
                    return
            await send(message)

        await self.app(scope, receive, send_or_replace)
