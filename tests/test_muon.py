"""Photon as a Muon event store: the real Muon node client (muon-core 7.2.6) against a real
Photon and a real RabbitMQ broker."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from photon.server.amqp import AmqpService
from photon.server.server import Projections

from .live import LiveServer, make_config
from .muon_support import NodeClient, WireClient, events_of, node_modules, run
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


# -- reactive-stream: muon.replay and muon.subscribe -------------------------------------------


def fill(photon: LiveServer, stream: str, count: int) -> list[int]:
    stored = photon.store.append(
        [{"stream-name": stream, "event-type": "tick", "payload": {"n": n}} for n in range(count)]
    )
    return [e.order_id for e in stored]


def order_ids(results: list[dict[str, Any]]) -> list[int]:
    return [e["order-id"] for e in events_of(results)]


def test_cold_replay_delivers_the_stream_in_order_and_completes(photon: LiveServer, broker: RabbitServer) -> None:
    ids = fill(photon, "muon-cold", 120)
    results = run(broker.url, "replay", {"stream": "muon-cold", "args": {"stream-type": "cold"}})
    assert order_ids(results) == ids
    assert events_of(results)[0]["payload"] == {"n": 0} and events_of(results)[0]["stream-version"] == 1
    assert results[-1] == {"complete": 120, "ms": results[-1]["ms"]}


def test_replay_options_have_their_usual_names(photon: LiveServer, broker: RabbitServer) -> None:
    ids = fill(photon, "muon-from", 30)
    # `from` as the Clojure Photon took it (text), `to` and `limit` as everywhere in Photon.
    results = run(broker.url, "replay", {"stream": "muon-from", "args": {"stream-type": "cold", "from": str(ids[10])}})
    assert order_ids(results) == ids[10:]
    results = run(
        broker.url, "replay", {"stream": "muon-from", "args": {"stream-type": "cold", "from": ids[3], "to": ids[7]}}
    )
    assert order_ids(results) == ids[3:8]
    results = run(broker.url, "replay", {"stream": "muon-from", "args": {"stream-type": "cold", "limit": 4}})
    assert order_ids(results) == ids[:4] and "complete" in results[-1]


def test_replay_filters_of_all_have_their_usual_names(photon: LiveServer, broker: RabbitServer) -> None:
    wanted = fill(photon, "muonfilter-a", 3) + fill(photon, "muonfilter-b", 2)
    fill(photon, "muon-other-filter", 2)
    args = {"stream-type": "cold", "stream-prefix": ["muonfilter-"], "from": wanted[0]}
    results = run(broker.url, "replay", {"stream": "__all__", "args": args})
    assert order_ids(results) == wanted
    results = run(broker.url, "replay", {"stream": "__all__", "args": {"stream-type": "cold", "stream-regex": "("}})
    assert "stream-regex" in results[-1]["error"]["error"]


def test_a_bad_replay_request_errors_naming_the_problem(photon: LiveServer, broker: RabbitServer) -> None:
    fill(photon, "muon-bad-args", 1)
    results = run(broker.url, "replay", {"stream": "muon-bad-args", "args": {"stream-type": "lukewarm"}})
    assert "stream-type" in results[-1]["error"]["error"]
    results = run(broker.url, "replay", {"stream": "muon-bad-args", "args": {"form": 3}})
    assert "'form'" in results[-1]["error"]["error"]
    results = run(broker.url, "subscribe", {"url": "stream://photon/no-such-endpoint"})
    assert results[-1] == {"error": "Stream does not exist"}


def emit_in_background(photon: LiveServer, stream: str, count: int, pause: float = 0.002) -> threading.Thread:
    def emit() -> None:
        for n in range(count):
            photon.store.append({"stream-name": stream, "event-type": "live", "payload": {"n": n}})
            time.sleep(pause)

    thread = threading.Thread(target=emit, daemon=True)
    thread.start()
    return thread


def test_hot_cold_hands_over_to_live_exactly_while_others_emit(photon: LiveServer, broker: RabbitServer) -> None:
    history = fill(photon, "muon-hc", 300)
    client = NodeClient(broker.url, "replay", {"stream": "muon-hc", "args": {"stream-type": "hot-cold"}, "count": 800})
    try:
        client.wait_for(lambda results: len(events_of(results)) >= 50)  # in the history
        writers = [emit_in_background(photon, "muon-hc", 200) for _ in range(2)]
        node_writer = run(broker.url, "emitloop", {"stream": "muon-hc", "count": 100, "inflight": 8, "quiet": True})
        assert node_writer[-1]["done"] == 100
        for writer in writers:
            writer.join(60)
        results = client.finish()
    finally:
        client.kill()
    stored = [e.order_id for e in photon.store.read("muon-hc")]
    assert len(stored) == 800 and stored[:300] == history
    assert order_ids(results) == stored  # none missed, none twice, in order
    assert "counted" in results[-1]


def test_hot_delivers_only_new_events(photon: LiveServer, broker: RabbitServer) -> None:
    fill(photon, "muon-hot", 50)
    client = NodeClient(broker.url, "replay", {"stream": "muon-hot", "args": {"stream-type": "hot"}, "count": 30})
    try:
        client.wait_for(lambda results: any("subscribing" in r for r in results))
        writer = emit_in_background(photon, "muon-hot", 400, pause=0.01)
        results = client.finish()
        writer.join(60)
    finally:
        client.kill()
    got = events_of(results)
    assert len(got) >= 30 and all(e["event-type"] == "live" for e in got)
    stored = [e.order_id for e in photon.store.read("muon-hot")]
    start = stored.index(got[0]["order-id"])
    assert [e["order-id"] for e in got] == stored[start : start + len(got)]  # consecutive, nothing skipped


def test_cancel_stops_the_replay(photon: LiveServer, broker: RabbitServer) -> None:
    service = photon.server.service(AmqpService)
    # Clients of earlier tests were killed, not closed: their transports (and any session on them)
    # go once they have been silent for the keep-alive time. Wait for that, so that every session
    # counted below is this test's own.
    deadline = time.monotonic() + 30
    while service.stats()["muon"]["transports"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert service.stats()["muon"]["transports"] == 0, "transports of earlier clients were never closed"
    fill(photon, "muon-cancel", 100)
    client = NodeClient(
        broker.url,
        "replay",
        {"stream": "muon-cancel", "args": {"stream-type": "hot-cold"}, "cancelAfter": 15, "linger": 3},
    )
    try:
        client.wait_for(lambda results: any("cancelled" in r for r in results))
        fill(photon, "muon-cancel", 50)  # live events after the cancel reach nobody
        results = client.finish()
    finally:
        client.kill()
    # What was granted before the cancel may still be in flight (the client asks 10 at a time).
    assert 15 <= results[-1]["after"] <= 20
    assert order_ids(results) == [e.order_id for e in photon.store.read("muon-cancel")][: results[-1]["after"]]
    assert service.stats()["muon"]["channels"] == 0  # the replay's session is gone


def test_an_idle_live_replay_sends_nothing_after_its_cancel(photon: LiveServer, broker: RabbitServer) -> None:
    # A live replay waiting for events, with credit left, is cancelled: an event stored once Photon
    # has the cancel is not sent (the node client would log a Data for a channel it no longer knows).
    service = photon.server.service(AmqpService)
    deadline = time.monotonic() + 30
    while service.stats()["muon"]["transports"] and time.monotonic() < deadline:
        time.sleep(0.2)  # transports of earlier tests' clients: gone once silent for the keep-alive time
    assert service.stats()["muon"]["channels"] == 0
    client = NodeClient(
        broker.url,
        "replay",
        {"stream": "muon-idle-cancel", "args": {"stream-type": "hot"}, "cancelAfter": 1, "linger": 3},
    )
    try:
        deadline = time.monotonic() + 30
        while not events_of(client.results):  # until the replay is live and has had one event
            assert time.monotonic() < deadline, f"no live event reached the client: {client.noise[-10:]}"
            fill(photon, "muon-idle-cancel", 1)
            with contextlib.suppress(AssertionError):
                client.wait_for(lambda results: bool(events_of(results)), timeout=2)
        client.wait_for(lambda results: any("cancelled" in r for r in results))
        while service.stats()["muon"]["channels"]:  # Photon has the cancel: the channel is gone
            assert time.monotonic() < deadline, "the cancel never reached Photon"
            time.sleep(0.01)
        before = len(client.noise)
        fill(photon, "muon-idle-cancel", 5)
        results = client.finish()
    finally:
        client.kill()
    assert results[-1] == {"after": 1}
    unexpected = [line for line in client.noise[before:] if "no virtual channel" in line]
    assert not unexpected, unexpected


def test_projection_stream_follows_the_projection(photon: LiveServer, broker: RabbitServer) -> None:
    template = {
        "projection-name": "muon-count",
        "stream-name": "muon-proj",
        "language": "python",
        "reduction": "def reduction(state, event):\n    return state + event['payload']['n']\n",
        "initial-value": 0,
    }
    with photon.client() as http:
        assert http.post("/api/projection", json=template).status_code == 200
    client = NodeClient(broker.url, "subscribe", {"url": "stream://photon/projection/muon-count", "count": 3})
    try:
        client.wait_for(lambda results: len(events_of(results, "data")) >= 1)
        photon.store.append({"stream-name": "muon-proj", "event-type": "add", "payload": {"n": 5}})
        client.wait_for(lambda results: len(events_of(results, "data")) >= 2)
        photon.store.append({"stream-name": "muon-proj", "event-type": "add", "payload": {"n": 7}})
        results = client.finish()
    finally:
        client.kill()
    updates = events_of(results, "data")
    assert [u["current-value"] for u in updates] == [0, 5, 12]
    assert all(u["projection-name"] == "muon-count" for u in updates)
    assert updates[-1]["processed"] == 2


def test_a_replay_sends_no_more_than_the_credit_granted(photon: LiveServer, broker: RabbitServer) -> None:
    ids = fill(photon, "muon-credit", 40)
    client = WireClient(broker.url)
    try:
        args = {"stream-name": "muon-credit", "stream-type": "cold"}
        client.send("reactive-stream", "SubscriptionRequested", {"streamName": "/stream", "args": args})
        assert client.receive()["step"] == "SubAck"  # type: ignore[index]
        client.send("reactive-stream", "DataRequested", {"request": 5})
        got = [client.receive() for _ in range(5)]
        assert [orjson.loads(bytes(m["payload"]))["order-id"] for m in got if m] == ids[:5]
        assert client.receive(timeout=1.5) is None  # nothing beyond the credit
        client.send("reactive-stream", "DataRequested", {"request": 100})
        rest = []
        while (message := client.receive()) is not None and message["step"] == "Data":
            rest.append(orjson.loads(bytes(message["payload"]))["order-id"])
        assert rest == ids[5:]
        assert message is not None and message["step"] == "Completed" and message["channel_op"] == "closed"
    finally:
        client.close()


# -- rpc: the Clojure Photon's request endpoints ------------------------------------------------


def requests(broker: RabbitServer, *calls: tuple[str, Any]) -> list[dict[str, Any]]:
    """Answers to rpc requests made one after the other by one node client."""
    results = run(
        broker.url,
        "requests",
        {
            "calls": [
                {"url": f"rpc://photon/{endpoint}", "body": {} if body is None else body} for endpoint, body in calls
            ]
        },
    )
    return [r["response"] for r in results if "response" in r]


def test_rpc_stream_names_events_and_stream_delete(photon: LiveServer, broker: RabbitServer) -> None:
    event = {"stream-name": "muon-rpc", "event-type": "made", "payload": {"k": 1}}
    posted, many, conflict, bad, names, deleted, internal = requests(
        broker,
        ("events", event),
        ("events", [{**event, "event-type": "more"}] * 2),
        ("events", {"events": [event], "expected-version": 1}),
        ("events", {"stream-name": "muon-rpc", "event-type": "x"}),
        ("stream-names", None),
        ("stream/delete", {"stream-name": "muon-rpc"}),
        ("stream/delete", {"stream-name": "__config__"}),
    )
    assert posted["status"] == 200
    assert posted["body"]["stream-name"] == "muon-rpc" and posted["body"]["stream-version"] == 1
    assert posted["body"]["payload"] == {"k": 1}
    assert [e["stream-version"] for e in many["body"]] == [2, 3]
    assert conflict["status"] == 409 and conflict["body"]["current-version"] == 3
    assert bad["status"] == 400 and bad["body"]["field"] == "payload"
    assert names["status"] == 200
    assert {"stream-name": "muon-rpc", "total-events": 3} in names["body"]["streams"]
    assert deleted == {"status": 200, "body": {"correct": True, "deleted-events": 3}}
    assert list(photon.store.read("muon-rpc")) == []
    assert internal["status"] == 400 and "internal" in internal["body"]["error"]


def test_rpc_projection_endpoints(photon: LiveServer, broker: RabbitServer) -> None:
    template = {
        "projection-name": "muon-rpc-sum",
        "stream-name": "muon-rpc-proj",
        "language": "python",
        "reduction": "def reduction(state, event):\n    p = event['payload']\n    return {**state, p['k']: p['v']}\n",
        "initial-value": {},
    }
    photon.store.append({"stream-name": "muon-rpc-proj", "event-type": "set", "payload": {"k": "a", "v": 1}})
    created, bad_template, keys = requests(
        broker,
        ("projections", template),
        ("projections", {**template, "projection-name": "muon-bad", "language": "cobol"}),
        ("projection-keys", None),
    )
    assert created["status"] == 200 and created["body"]["correct"] is True
    assert bad_template["status"] == 400 and "muon-bad" not in keys["body"]["projection-keys"]
    assert "muon-rpc-sum" in keys["body"]["projection-keys"]

    manager = photon.server.service(Projections).manager
    deadline = time.monotonic() + 30
    while manager.get("muon-rpc-sum")["processed"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    name = {"projection-name": "muon-rpc-sum"}
    descriptor, value, missing_key, unknown_action, gone, after, keys = requests(
        broker,
        ("projection", name),
        ("projection", {**name, "query-key": "a"}),
        ("projection", {**name, "query-key": "zz"}),
        ("projection", {**name, "action": "explode"}),
        ("projection", {**name, "action": "delete"}),
        ("projection", name),
        ("projection-keys", None),
    )
    assert descriptor["status"] == 200 and descriptor["body"]["current-value"] == {"a": 1}
    assert descriptor["body"]["stream-name"] == "muon-rpc-proj"
    assert value == {"status": 200, "body": 1}
    assert missing_key["status"] == 404
    assert unknown_action["status"] == 400 and unknown_action["body"]["field"] == "action"
    assert gone == {"status": 200, "body": {"correct": True}}
    assert after["status"] == 404
    assert "muon-rpc-sum" not in keys["body"]["projection-keys"]


def test_rpc_rest_url_and_unknown_endpoints(photon: LiveServer, broker: RabbitServer) -> None:
    url, unknown = requests(broker, ("rest-url", None), ("no-such-thing", None))
    assert url == {"status": 200, "body": photon.url}
    assert unknown["status"] == 404 and "stream-names" in unknown["body"]["error"]


def test_the_original_photon_event_shape_is_accepted(photon: LiveServer, broker: RabbitServer) -> None:
    cause = {
        "stream-name": "muon-original",
        "event-type": "OrderPlaced",
        "service-id": "shop",
        "local-id": "6f1c0b7e-1111-4222-8333-944455556666",
        "server-timestamp": 1_469_002_000_000,
        "encoding": "application/json",
        "schema": "http://schemas.example.com/order-placed-2.json",
        "payload": {"sku": "A-1"},
    }
    effect = {
        "stream-name": "muon-original",
        "event-type": "OrderPaid",
        "service-id": "billing",
        "local-id": "6f1c0b7e-1111-4222-8333-944455557777",
        "provenance": {"service-id": "shop", "local-id": cause["local-id"], "relationship-type": "caused-by"},
        "payload": {"amount": 12},
    }
    results = run(broker.url, "emit", {"events": [cause, effect, cause, {**cause, "encoding": "text/csv"}]})
    first, second, resent, bad = (r["result"] for r in results if "result" in r)
    assert first["status"] == second["status"] == "PERSISTED"
    assert resent == first  # the same local-id: stored once, answered with the stored event
    assert bad["status"] == "FAILED" and "encoding" in bad["cause"]
    stored = [e.to_dict() for e in photon.store.read("muon-original")]
    assert len(stored) == 2
    assert stored[0]["id"] == cause["local-id"] and stored[0]["event-time"] == cause["server-timestamp"]
    assert stored[0]["schema"] == cause["schema"] and stored[0]["encoding"] == "application/json"
    assert stored[1]["caused-by"] == cause["local-id"] and stored[1]["caused-by-relation"] == "caused-by"
    assert stored[1]["provenance"] == effect["provenance"]


# -- many clients, and a broker restart ------------------------------------------------------------


def test_twenty_clients_at_once(photon: LiveServer, broker: RabbitServer) -> None:
    results = run(broker.url, "swarm", {"clients": 20, "stream": "muon-swarm", "count": 10}, timeout=120)
    clients = [r for r in results if "client" in r]
    assert len(clients) == 20 and results[-1] == {"done": 20}
    for client in clients:
        assert client["statuses"] == ["PERSISTED"] * 10
        stored = [e.order_id for e in photon.store.read(f"muon-swarm-{client['client']}")]
        assert sorted(client["orderIds"]) == stored
        assert client["replayed"] == stored  # each client's replay: its own stream, in order


@pytest.fixture
def restartable_broker() -> Iterator[RabbitServer]:
    server = RabbitServer()
    if not server.restartable:
        pytest.skip(f"{server.env_var} points at an external broker; not restarting it")
    try:
        server.start()
    except (ServerError, OSError) as exc:
        server.close()
        pytest.fail(f"RabbitMQ cannot start (run scripts/install-test-servers): {exc}")
    yield server
    server.close()


@pytest.mark.slow
def test_a_broker_restart_loses_no_acknowledged_emit_and_clients_come_back(
    restartable_broker: RabbitServer, tmp_path: Path
) -> None:
    node_modules()
    broker = restartable_broker
    server = LiveServer(make_config(tmp_path, muon_url=broker.url, microservice_name="photon"))
    try:
        client = NodeClient(
            broker.url,
            "emitloop",
            {
                "stream": "muon-restart",
                "count": 400,
                "inflight": 4,
                "tag": "r",
                "ids": True,
                "reconnect": True,
                "emitTimeout": 5,
            },
            timeout=240,
        )
        try:
            client.wait_for(lambda results: sum("result" in r for r in results) >= 60)
            broker.stop()
            time.sleep(2)
            broker.start()
            results = client.finish(300)
        finally:
            client.kill()
        answers = {r["i"]: r["result"] for r in results if "result" in r}
        assert any("reconnecting" in r for r in results)  # the client had to come back
        assert len(answers) == 400 and all(a["status"] == "PERSISTED" for a in answers.values())
        # Every acknowledged emit is stored once, where its answer said; nothing twice.
        stored = {e.event_id: e for e in server.store.read("muon-restart")}
        assert len(stored) == 400
        for i, answer in answers.items():
            assert stored[f"r-{i}"].order_id == answer["orderId"]
        service = server.server.service(AmqpService)
        assert service.stats()["connects"] >= 2
        # And a new client finds Photon again (discovery announcements resumed) and replays.
        replay = run(broker.url, "replay", {"stream": "muon-restart", "args": {"stream-type": "cold"}, "quiet": True})
        assert replay[-1]["complete"] == 400
    finally:
        server.stop()


def test_a_client_without_credit_does_not_make_photon_buffer_without_bound(
    photon: LiveServer, broker: RabbitServer
) -> None:
    ids = fill(photon, "muon-slow", 5)
    client = WireClient(broker.url)
    try:
        args = {"stream-name": "muon-slow", "stream-type": "hot-cold"}
        client.send("reactive-stream", "SubscriptionRequested", {"streamName": "/stream", "args": args})
        assert client.receive()["step"] == "SubAck"  # type: ignore[index]
        client.send("reactive-stream", "DataRequested", {"request": 5})
        assert [orjson.loads(bytes(m["payload"]))["order-id"] for m in (client.receive() for _ in range(5)) if m] == ids
        # The client reads no further; 12,000 live events arrive for its stream.
        for _ in range(12):
            ids += fill(photon, "muon-slow", 1000)
        buffer = int(photon.config["subscription.buffer"])
        assert photon.store.subscriber_stats()[1] <= buffer  # what waits for it is bounded
        assert client.receive(timeout=1) is None  # and nothing was sent beyond the credit
        client.send("reactive-stream", "DataRequested", {"request": 300})
        got = [orjson.loads(bytes(m["payload"]))["order-id"] for m in (client.receive() for _ in range(300)) if m]
        assert got == ids[5:305]  # it goes on in order, nothing skipped
    finally:
        client.close()
