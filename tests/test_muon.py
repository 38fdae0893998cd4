"""Photon as a Muon event store: the real Muon node client (muon-core 7.2.6) against a real
Photon and a real RabbitMQ broker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .live import LiveServer, make_config
from .muon_support import events_of, node_modules, run
from .servers import RabbitServer, ServerError

pytestmark = pytest.mark.rabbitmq


@pytest.fixture(scope="module")
def broker() -> Iterator[RabbitServer]:
    server = RabbitServer()
    try:
        server.start()
    except (ServerError, OSError) as exc:
        server.close()
        if os.environ.get("PHOTON_SKIP_SERVERS"):
            pytest.skip(f"RabbitMQ cannot start (PHOTON_SKIP_SERVERS is set): {exc}")
        pytest.fail(f"RabbitMQ cannot start (run scripts/install-test-servers): {exc}")
    yield server
    server.close()


@pytest.fixture(scope="module")
def photon(broker: RabbitServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    node_modules()  # fail (or skip) early when the node client is missing
    tmp: Path = tmp_path_factory.mktemp("muon")
    server = LiveServer(make_config(tmp, muon_url=broker.url, microservice_name="photon"))
    yield server
    server.stop()


def test_emit_is_persisted_with_order_id_and_event_time(photon: LiveServer, broker: RabbitServer) -> None:
    event = {
        "stream-name": "muon-users",
        "event-type": "UserRegistered",
        "service-id": "my-service",
        "payload": {"firstname": "John", "lastname": "Simples"},
    }
    results = run(broker.url, "emit", {"events": [event, {**event, "payload": {"firstname": "Jane"}}]})
    answers = [r["result"] for r in results if "result" in r]
    assert [a["status"] for a in answers] == ["PERSISTED", "PERSISTED"]
    stored = list(photon.store.read("muon-users"))
    assert [e.order_id for e in stored] == [a["orderId"] for a in answers]
    assert [e.event_time for e in stored] == [a["eventTime"] for a in answers]
    assert stored[0].to_dict()["payload"] == {"firstname": "John", "lastname": "Simples"}
    assert stored[0].to_dict()["service-id"] == "my-service"


@pytest.mark.parametrize(
    ("event", "cause"),
    [
        ({"stream-name": "muon-bad", "event-type": "x"}, "missing required field 'payload'"),
        ({"event-type": "x", "payload": {}}, "stream-name"),
        ({"stream-name": "__config__", "event-type": "x", "payload": {}}, "internal"),
        ({"stream-name": "muon-bad", "event-type": "x", "payload": [1, 2]}, "payload"),
        ({"stream-name": "muon-bad", "event-type": "x", "payload": {}, "colour": "red"}, "colour"),
        ({"stream-name": "muon-bad", "event-type": "x", "payload": {}, "order-id": 7}, "order-id"),
    ],
)
def test_a_refused_emit_fails_with_the_reason_and_stores_nothing(
    photon: LiveServer, broker: RabbitServer, event: dict[str, object], cause: str
) -> None:
    before = photon.store.last_order_id()
    results = run(broker.url, "emit", {"events": [event]})
    [answer] = [r["result"] for r in results if "result" in r]
    assert answer["status"] == "FAILED"
    assert cause in answer["cause"]
    assert photon.store.last_order_id() == before


def test_many_emits_in_flight_each_get_their_own_answer(photon: LiveServer, broker: RabbitServer) -> None:
    results = run(broker.url, "emitloop", {"stream": "muon-inflight", "count": 200, "inflight": 32})
    answers = [r["result"] for r in results if "result" in r]
    assert len(answers) == 200 and all(a["status"] == "PERSISTED" for a in answers)
    stored = list(photon.store.read("muon-inflight"))
    assert sorted(a["orderId"] for a in answers) == [e.order_id for e in stored]
    assert sorted(e.to_dict()["payload"]["n"] for e in stored) == list(range(200))
    assert events_of(results) == []
