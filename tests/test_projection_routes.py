"""The projection HTTP routes over a real socket: uvicorn serving them beside a running manager."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from photon.core.store import EventStore
from photon.server.http.projection_routes import projection_routes

from .projection_helpers import caught_up, events, make_config, running, wait_for


def allow_all(request: Request) -> None:
    return None


async def deny_without_header(request: Request) -> Any:
    if request.headers.get("authorization") != "Token ok":
        return JSONResponse({"error": "Not authorized"}, status_code=401)
    return None


async def serve(app: Starlette) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    # Bound here and handed to uvicorn: a port found free and bound by uvicorn later could be
    # taken by another process meanwhile.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_for(lambda: server.started, what="uvicorn to start")
    return server, task, f"http://127.0.0.1:{port}"


def test_projection_routes(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store = EventStore.open(config)
    store.append(events("a", 4))
    store.append(events("a/b/c", 2))

    async def scenario() -> None:
        async with running(store, config) as manager:
            server, task, base = await serve(Starlette(routes=projection_routes(manager, allow_all)))
            try:
                async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                    template = {
                        "projection-name": "sum",
                        "language": "python",
                        "stream-name": "a",
                        "initial-value": {"total": 0},
                        "reduction": "def reduction(s, e):\n    s['total'] += e['payload']['n']\n    return s\n",
                    }
                    answer = await client.post("/api/projection", json=template)
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["correct"] is True
                    hy = {
                        "projection-name": "n",
                        "language": "hy",
                        "reduction": "(fn [s e] (+ s 1))",
                        "initial-value": 0,
                    }
                    assert (await client.post("/api/projection", json=hy)).status_code == 200
                    await caught_up(manager)

                    bad = await client.post("/api/projection", json={**hy, "reduction": "(fn [s e]"})
                    assert bad.status_code == 400 and "syntax error" in bad.json()["error"]
                    assert "n" in manager.projections and manager.get("n")["status"] == "running"
                    not_json = await client.post("/api/projection", content=b"{nope")
                    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]
                    unknown = await client.post("/api/projection", json={**hy, "colour": 1})
                    assert unknown.status_code == 400 and unknown.json()["field"] == "colour"

                    listed = (await client.get("/api/projections")).json()
                    assert [d["projection-name"] for d in listed] == ["__streams__", "n", "sum"]
                    assert all("current-value" not in d for d in listed)
                    keys = (await client.get("/api/projection-keys")).json()
                    assert keys == {"projection-keys": ["__streams__", "n", "sum"]}

                    full = (await client.get("/api/projection/sum")).json()
                    assert full["current-value"] == {"total": 6} and full["status"] == "running"
                    assert full["language"] == "python" and full["last-event"] == 4
                    assert (await client.get("/api/projection/sum/total")).json() == 6
                    missing_key = await client.get("/api/projection/sum/nothing")
                    assert missing_key.status_code == 404 and "no key 'nothing'" in missing_key.json()["error"]
                    assert (await client.get("/api/projection/ghost")).status_code == 404
                    streams = (await client.get("/api/projection/__streams__/a")).json()
                    assert streams["total-events"] == 4
                    # A key holding "/" (a stream name here), sent percent-encoded as any key.
                    slashed = await client.get("/api/projection/__streams__/" + quote("a/b/c", safe=""))
                    assert slashed.status_code == 200, slashed.text
                    assert slashed.json()["total-events"] == 2

                    # Server-sent events: the current state, then the next one.
                    async with client.stream("GET", "/api/projection/sum/updates") as stream:
                        assert stream.headers["content-type"].startswith("text/event-stream")
                        lines = stream.aiter_lines()
                        data = await anext_data(lines)
                        assert data["current-value"] == {"total": 6}
                        store.append(events("a", 1, start=10))
                        data = await anext_data(lines)
                        assert data["current-value"] == {"total": 16}
                    assert (await client.get("/api/projection/ghost/updates")).status_code == 404

                    assert (await client.delete("/api/projection/sum")).json() == {"correct": True}
                    assert (await client.delete("/api/projection/sum")).status_code == 404
                    assert (await client.delete("/api/projection/__streams__")).status_code == 400
                    assert "sum" not in manager.names()
            finally:
                server.should_exit = True
                await task

    asyncio.run(scenario())
    store.close()


async def anext_data(lines: Any) -> dict[str, Any]:
    while True:
        line = await asyncio.wait_for(lines.__anext__(), 10)
        if line.startswith("data: "):
            result: dict[str, Any] = orjson.loads(line[6:])
            return result


def test_admin_guard_protects_changes(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store = EventStore.open(config)

    async def scenario() -> None:
        async with running(store, config) as manager:
            routes = projection_routes(manager, deny_without_header)
            server, task, base = await serve(Starlette(routes=routes))
            try:
                async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                    template = {"projection-name": "x", "reduction": "lambda s, e: s", "initial-value": 0}
                    denied = await client.post("/api/projection", json=template)
                    assert denied.status_code == 401 and "x" not in manager.names()
                    ok = await client.post("/api/projection", json=template, headers={"Authorization": "Token ok"})
                    assert ok.status_code == 200
                    assert (await client.delete("/api/projection/x")).status_code == 401
                    assert (await client.get("/api/projection/x")).status_code == 200
            finally:
                server.should_exit = True
                await task

    asyncio.run(scenario())
    store.close()
