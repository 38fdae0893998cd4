"""The server runs every part together: stream transfer routes and, with muon.url, the AMQP transport."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from photon.client.amqp import AmqpClient
from photon.server.server import PhotonServer

from .live import LiveServer, make_config
from .test_amqp import broker  # noqa: F401  (the module-scoped real RabbitMQ fixture)


def test_stream_export_and_import_are_served_and_need_a_token(live: LiveServer, api: httpx.Client) -> None:
    api.post("/api/event", json=[{"stream-name": "cart", "event-type": "added", "payload": {"n": i}} for i in range(3)])
    assert httpx.get(live.url + "/export/stream/cart").status_code == 401
    assert httpx.post(live.url + "/api/new-stream", content=b"").status_code == 401
    exported = api.get("/export/stream/cart")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    lines = [orjson.loads(line) for line in exported.content.splitlines()]
    assert [e["payload"]["n"] for e in lines] == [0, 1, 2]
    imported = api.post("/api/new-stream", content=exported.content)
    assert imported.status_code == 201 and imported.json()["stream-name"] == "cart-0"
    streams = {s["stream-name"]: s["total-events"] for s in api.get("/api/streams").json()["streams"]}
    assert streams["cart"] == 3 and streams["cart-0"] == 3


def test_without_muon_url_no_amqp_service_runs(live: LiveServer) -> None:
    names = [type(service).__name__ for service in live.server.services]
    assert "AmqpService" not in names and "HttpService" in names


@pytest.fixture
def amqp_server(tmp_path: Path, broker: object) -> Iterator[LiveServer]:  # noqa: F811
    name = f"photon-{uuid.uuid4().hex[:8]}"
    config = make_config(tmp_path, **{"muon.url": broker.url, "microservice.name": name})  # type: ignore[attr-defined]
    server = LiveServer(config)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.rabbitmq
def test_amqp_emits_land_in_the_same_store_as_http(amqp_server: LiveServer) -> None:
    assert isinstance(amqp_server.server, PhotonServer)
    name = str(amqp_server.config["microservice.name"])
    client = AmqpClient(str(amqp_server.config["muon.url"]), service=name, timeout=30)
    try:
        stored = client.emit([{"stream-name": "via-amqp", "event-type": "sent", "payload": {"n": 1}}])
        assert stored[0]["order-id"] == 1
    finally:
        client.close()
    with amqp_server.client() as api:
        body = api.get("/api/stream-contents/via-amqp").json()
    assert [e["payload"] for e in body["results"]] == [{"n": 1}]


@pytest.mark.rabbitmq
def test_python_client_over_the_amqp_transport(amqp_server: LiveServer) -> None:
    from photon.client.amqp import AmqpTransport
    from photon.client.blocking import PhotonClient
    from photon.core.subscriptions import CaughtUp

    name = str(amqp_server.config["microservice.name"])
    transport = AmqpTransport(str(amqp_server.config["muon.url"]), service=name, timeout=30)
    with PhotonClient(transport=transport) as client:
        one = client.emit({"stream-name": "a", "event-type": "t", "payload": {"n": 1}})
        assert one.order_id == 1 and one.payload == {"n": 1}
        more = client.emit([{"stream-name": "a", "event-type": "t", "payload": {"n": n}} for n in (2, 3)])
        assert [e.stream_version for e in more] == [2, 3]
        cold = list(client.replay("a", stream_type="cold", from_=2))
        assert [e.payload["n"] for e in cold] == [2, 3]  # type: ignore[union-attr]
        live = client.replay("a", stream_type="hot-cold")
        items = [next(live) for _ in range(4)]
        assert items[-1] == CaughtUp(3)
        client.emit({"stream-name": "a", "event-type": "t", "payload": {"n": 4}})
        assert next(live).payload == {"n": 4}  # type: ignore[union-attr]
        live.close()  # type: ignore[attr-defined]
        with pytest.raises(NotImplementedError, match="over HTTP"):
            client.streams()
