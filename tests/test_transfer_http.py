"""The stream export and upload routes over a real socket (uvicorn), with an allow-all auth check."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from photon.core.store import EventStore
from photon.server.http.transfer_routes import transfer_routes


def allow_all(request: Request) -> None:
    return None


async def token_required(request: Request) -> Response | None:
    if request.headers.get("authorization") != "Token good":
        return JSONResponse({"error": "Not authorized"}, status_code=401)
    return None


def serve(app: Starlette) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def store() -> Iterator[EventStore]:
    with EventStore.open(db_backend="memory") as store:
        store.append([{"stream-name": "orders", "event-type": "Placed", "payload": {"n": n}} for n in range(7)])
        store.append([{"stream-name": "ünïcode name", "event-type": "x", "payload": {}}])
        yield store


def make_server(store: EventStore, auth: Callable[..., Any]) -> Iterator[httpx.Client]:
    for url in serve(Starlette(routes=transfer_routes(store, auth))):
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client


@pytest.fixture
def client(store: EventStore) -> Iterator[httpx.Client]:
    yield from make_server(store, allow_all)


def test_export_downloads_the_stream_as_an_attachment(client: httpx.Client, store: EventStore) -> None:
    response = client.get("/export/stream/orders")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.headers["content-disposition"].startswith('attachment; filename="orders.ndjson"')
    assert response.content == b"".join(e.data + b"\n" for e in store.read("orders"))


def test_export_of_a_name_that_needs_quoting(client: httpx.Client) -> None:
    response = client.get("/export/stream/%C3%BCn%C3%AFcode%20name")
    assert response.status_code == 200
    assert "filename*=UTF-8''%C3%BCn%C3%AFcode%20name.ndjson" in response.headers["content-disposition"]
    assert response.content.count(b"\n") == 1


def test_export_of_a_missing_stream_is_404(client: httpx.Client) -> None:
    response = client.get("/export/stream/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "stream 'nope' does not exist"}


def test_upload_as_body_and_as_multipart_renames_when_taken(client: httpx.Client, store: EventStore) -> None:
    data = client.get("/export/stream/orders").content
    response = client.post("/api/new-stream", content=data, headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 201
    assert response.json() == {"correct": True, "stream-name": "orders-0", "events": 7}

    response = client.post("/api/new-stream", files={"file": ("orders.ndjson", data, "application/x-ndjson")})
    assert response.json() == {"correct": True, "stream-name": "orders-1", "events": 7}

    response = client.post("/api/new-stream", files={"file": ("x", data)}, data={"name": "copy"})
    assert response.json() == {"correct": True, "stream-name": "copy", "events": 7}
    response = client.post("/api/new-stream?name=copy", content=data)
    assert response.json()["stream-name"] == "copy-0"

    assert [e.payload for e in store.read("orders-1")] == [e.payload for e in store.read("orders")]


def test_bad_upload_is_400_and_stores_nothing(client: httpx.Client, store: EventStore) -> None:
    before = store.last_order_id()
    response = client.post("/api/new-stream", content=b'{"stream-name":"a","event-type":"x","payload":{}}\n{oops\n')
    assert response.status_code == 400
    assert response.json()["error"].startswith("line 2: not valid JSON")
    response = client.post("/api/new-stream", files={"other": ("x", b"")})
    assert response.status_code == 400
    assert "'file' field" in response.json()["error"]
    assert client.post("/api/new-stream", content=b"").status_code == 400
    assert store.last_order_id() == before


def test_an_unknown_query_parameter_is_400_and_stores_nothing(client: httpx.Client, store: EventStore) -> None:
    before = store.last_order_id()
    data = client.get("/export/stream/orders").content
    for target in ("/api/new-stream?nme=copy", "/api/new-stream?name=copy&force=true"):
        response = client.post(target, content=data)
        assert response.status_code == 400, (target, response.text)
        assert response.json()["error"].startswith("unknown query parameter"), response.text
        assert response.json()["parameter"] in ("nme", "force")
    misspelt = client.post("/api/new-stream?nme=copy", files={"file": ("x", data)})
    assert misspelt.status_code == 400 and "did you mean 'name'" in misspelt.json()["error"]
    assert store.last_order_id() == before
    assert client.get("/export/stream/orders?from=3").json()["parameter"] == "from"
    assert client.get("/export/stream/orders?access_token=t").status_code == 200


def test_the_auth_check_guards_both_routes(store: EventStore) -> None:
    for client in make_server(store, token_required):
        assert client.get("/export/stream/orders").status_code == 401
        assert client.post("/api/new-stream", content=b"{}").json() == {"error": "Not authorized"}
        good = {"Authorization": "Token good"}
        data = client.get("/export/stream/orders", headers=good).content
        assert client.post("/api/new-stream", content=data, headers=good).status_code == 201
