"""The web console: `GET /` (and `/console/`) answers its page, `/console/...` its static files (shipped in
the package).

The console is plain HTML, CSS and JavaScript modules: no build step and nothing fetched from
elsewhere, so it works offline. It signs in with `GET /auth/token` and then uses only the
public API, so it can do nothing the API cannot. The page and its files need no token.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from photon.server.http.params import RouteDoc

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
"""The console's files, inside the installed package."""

# The page and its modules change with the package: a browser checks before it reuses them.
_NO_CACHE = {"Cache-Control": "no-cache"}
# Only the console's own files and the API: no inline script, nothing from elsewhere.
_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


async def console_page(request: Request) -> Response:
    """The console (an HTML page; no token needed: it signs in itself)."""
    headers = {**_NO_CACHE, "Content-Security-Policy": _POLICY, "X-Content-Type-Options": "nosniff"}
    return FileResponse(CONSOLE_DIR / "index.html", media_type="text/html; charset=utf-8", headers=headers)


console_page.route_doc = RouteDoc(  # type: ignore[attr-defined]
    auth=False, answer="the web console's HTML page", response={"type": "string"}, response_media=("text/html",)
)


class _ConsoleFiles(StaticFiles):
    async def get_response(self, path: str, scope: dict) -> Response:  # type: ignore[override,type-arg]
        response = await super().get_response(path, scope)
        response.headers.update({**_NO_CACHE, "X-Content-Type-Options": "nosniff"})
        return response


def console_routes() -> list[BaseRoute]:
    return [
        Route("/", console_page, methods=["GET"]),
        # `/console` (which the mount below redirects here) and `/console/` are the page too: without
        # this route an address a person types, `localhost:3000/console`, would end in a 404.
        Route("/console/", console_page, methods=["GET"]),
        Mount("/console", app=_ConsoleFiles(directory=CONSOLE_DIR), name="console"),
    ]
