"""Other parts plug into the server: services with start/stop, extra HTTP routes, require_admin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from photon.core.config import Config
from photon.core.store import EventStore
from photon.server.http import Param, accepts, json_response, require_admin
from photon.server.server import SERVICES, HttpService, PhotonServer

from .live import make_config

CALLS: list[str] = []


class CountingService:
    """A service like the projection engine: started before HTTP, offering routes."""

    def __init__(self, store: EventStore, config: Config) -> None:
        self.store = store

    async def start(self) -> None:
        CALLS.append("start")

    async def stop(self) -> None:
        CALLS.append("stop")

    def http_routes(self) -> list[BaseRoute]:
        @accepts(Param("stream", "string", "A stream."))
        async def count(request: Request, query: dict[str, Any]) -> Response:
            """Events in a stream."""
            return json_response({"count": self.store.stream_version(query["stream"] or "x")})

        async def export(request: Request) -> Response:
            require_admin(request)
            return Response(b"exported")

        return [Route("/api/count", count, methods=["GET"]), Route("/export/all", export, methods=["GET"])]


def test_a_plugged_in_service_and_its_routes(tmp_path: Path) -> None:
    import asyncio

    CALLS.clear()
    server = PhotonServer(make_config(tmp_path), services=[CountingService, *SERVICES])

    async def scenario() -> None:
        await server.start()
        try:
            http: HttpService = server.service(HttpService)
            async with httpx.AsyncClient(base_url=http.url) as client:
                assert (await client.get("/api/count")).status_code == 401  # /api is guarded
                token = (await client.get("/auth/token", auth=("admin", "p4010n"))).json()["token"]
                headers = {"Authorization": f"Token {token}"}
                assert (await client.get("/api/count", params={"stream": "x"}, headers=headers)).json() == {"count": 0}
                bad = await client.get("/api/count", params={"strem": "x"}, headers=headers)
                assert bad.status_code == 400 and "did you mean 'stream'" in bad.json()["error"]
                assert (await client.get("/export/all")).status_code == 401  # require_admin outside /api
                assert (await client.get("/export/all", headers=headers)).content == b"exported"
                spec = (await client.get("/openapi.json")).json()
                assert "/api/count" in spec["paths"]
        finally:
            await server.stop()

    asyncio.run(scenario())
    assert CALLS == ["start", "stop"]
