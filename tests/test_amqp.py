"""The AMQP service and client against a real RabbitMQ broker and a real event store."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pika
import pytest

from photon.client.amqp import AmqpClient
from photon.core.config import load_config
from photon.core.errors import (
    AppendConditionFailed,
    ConfigError,
    InternalStreamError,
    PhotonError,
    ValidationError,
    VersionConflict,
)
from photon.core.store import EventStore
from photon.core.subscriptions import CaughtUp
from photon.server.amqp import AmqpService, BrokerUnavailable, Names, amqp_service

from .live import ServerProcess
from .servers import RabbitServer, ServerError, free_port

pytestmark = pytest.mark.rabbitmq


def start_broker() -> RabbitServer:
    server = RabbitServer()
    try:
        return server.start()
    except (ServerError, OSError) as exc:
        server.close()
        if os.environ.get("PHOTON_SKIP_SERVERS"):
            pytest.skip(f"RabbitMQ cannot start (PHOTON_SKIP_SERVERS is set): {exc}")
        pytest.fail(f"RabbitMQ cannot start (run scripts/install-test-servers): {exc}")


@pytest.fixture(scope="module")
def broker() -> Iterator[RabbitServer]:
    server = start_broker()
    yield server
    server.close()


class Loop:
    """An asyncio loop in a thread, as the server runs its services."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Photon:
    """A store and its AMQP service, started."""

    def __init__(self, path: Path, url: str, name: str, **extra: str) -> None:
        self.config = load_config(
            {"db.backend": "sqlite", "sqlite.path": str(path), "muon.url": url, "microservice.name": name, **extra},
            environ={},
        )
        self.name = name
        self.names = Names(name)
        self.url = url
        self.store = EventStore.open(self.config)
        self.service = AmqpService(self.store, self.config)
        self.loop = Loop()

    def start(self) -> Photon:
        self.loop.run(self.service.start())
        return self

    def stop(self) -> None:
        self.loop.run(self.service.stop())

    def close(self) -> None:
        self.stop()
        self.loop.close()
        self.store.close()

    def client(self, **options: Any) -> AmqpClient:
        return AmqpClient(self.url, service=self.name, **options)


@pytest.fixture
def photon_factory(tmp_path: Path) -> Iterator[Callable[..., Photon]]:
    made: list[Photon] = []

    def make(url: str, *, name: str | None = None, path: Path | None = None, **extra: str) -> Photon:
        photon = Photon(path or tmp_path / f"store{len(made)}.db", url, name or f"t{uuid.uuid4().hex[:10]}", **extra)
        made.append(photon)
        return photon

    yield make
    for photon in made:
        photon.close()


@pytest.fixture
def photon(broker: RabbitServer, photon_factory: Callable[..., Photon]) -> Photon:
    return photon_factory(broker.url).start()


def event(stream: str = "orders", kind: str = "placed", **payload: Any) -> dict[str, Any]:
    return {"stream-name": stream, "event-type": kind, "payload": payload}


def wait_until(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Raw:
    """A plain pika connection, as any AMQP application would use."""

    def __init__(self, url: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()

    def queue(self, name: str = "", **options: Any) -> str:
        options.setdefault("exclusive", not name)
        queue: str = self.channel.queue_declare(name, **options).method.queue
        return queue

    def bind(self, exchange: str, key: str, name: str = "", **options: Any) -> str:
        queue = self.queue(name, **options)
        self.channel.queue_bind(queue, exchange, key)
        return queue

    def drain(self, queue: str, count: int, timeout: float = 20.0) -> list[tuple[Any, Any, bytes]]:
        got: list[tuple[Any, Any, bytes]] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            method, properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                self.connection.process_data_events(0.05)
                continue
            got.append((method, properties, body))
        return got

    def request(self, body: bytes, reply_to: str, kind: str | None = "emit", **props: Any) -> str:
        correlation_id = str(uuid.uuid4())
        queue = props.pop("queue", None) or self._commands
        properties = pika.BasicProperties(type=kind, reply_to=reply_to, correlation_id=correlation_id, **props)
        self.channel.basic_publish("", queue, body, properties)
        return correlation_id

    _commands = ""

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


@pytest.fixture
def raw(photon: Photon) -> Iterator[Raw]:
    connection = Raw(photon.url)
    connection._commands = photon.names.commands
    yield connection
    connection.close()


def message_count(url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        count: int = connection.channel().queue_declare(queue, passive=True).method.message_count
        return count
    finally:
        connection.close()


# -- configuration and start-up --------------------------------------------------------------


def test_without_muon_url_nothing_amqp_is_used(tmp_path: Path) -> None:
    config = load_config({"db.backend": "sqlite", "sqlite.path": str(tmp_path / "s.db")}, environ={})
    with EventStore.open(config) as store:
        assert amqp_service(store, config) is None
        service = AmqpService(store, config)
        assert not service.enabled
        asyncio.run(service.start())
        asyncio.run(service.stop())
        assert not service.connected
        assert store.read_checkpoint(Names("photon").checkpoint) is None


def test_a_muon_url_that_is_not_amqp_is_a_config_error(tmp_path: Path) -> None:
    config = load_config({"db.backend": "memory", "muon.url": "http://localhost:5672"}, environ={})
    with EventStore.open(config) as store, pytest.raises(ConfigError, match=r"muon\.url"):
        AmqpService(store, config)


def test_muon_wait_must_be_a_number(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"muon\.wait"):
        load_config({"muon.wait": "soon"}, environ={})


def test_an_unreachable_broker_is_a_clear_error_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"amqp://user:secret@127.0.0.1:{free_port()}/%2F"
    config = load_config({"db.backend": "memory", "muon.url": url}, environ={})
    caplog.set_level(logging.DEBUG)
    with EventStore.open(config) as store:
        service = AmqpService(store, config)
        began = time.monotonic()
        with pytest.raises(BrokerUnavailable, match=r"muon\.url=amqp://user:\*\*\*\*@127\.0\.0\.1") as caught:
            asyncio.run(service.start())
        assert "secret" not in str(caught.value)
        assert "muon.wait" in str(caught.value)
        # The cause, which pika keeps only in the repr of its error's arguments.
        assert "Connection refused" in str(caught.value), caught.value
        # Pika's own seven ERROR lines and traceback for the one failed attempt are not logged.
        assert not [r for r in caplog.records if r.name.startswith("pika")]
        assert time.monotonic() - began < 10
        assert not service.connected


def test_the_server_log_holds_photons_broker_lines_not_pikas(broker: RabbitServer, tmp_path: Path) -> None:
    # pika logs each step of every connection at INFO; `photon serve` says "AMQP connected" once.
    name = f"log{uuid.uuid4().hex[:8]}"
    args = ["-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0", "-sqlite.path", str(tmp_path / "p.db")]
    server = ServerProcess(tmp_path, [*args, "-muon.url", broker.url, "-microservice.name", name])
    try:
        with AmqpClient(broker.url, service=name) as client:
            client.emit(event())
    finally:
        server.terminate()
    lines = server.output().splitlines()
    assert any("AMQP connected to" in line for line in lines)
    assert not [line for line in lines if " pika." in line], "\n".join(lines)


def test_a_refused_login_is_said_at_once_without_waiting(broker: RabbitServer) -> None:
    url = broker.url.replace("guest:guest@", "guest:wrong@")
    assert url != broker.url
    config = load_config({"db.backend": "memory", "muon.url": url, "muon.wait": "30"}, environ={})
    with EventStore.open(config) as store:
        began = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="ACCESS_REFUSED.*check the user and password in muon.url"):
            asyncio.run(AmqpService(store, config).start())
        assert time.monotonic() - began < 15  # a wrong password does not come right by waiting


def test_muon_wait_retries_until_the_deadline(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    config = load_config({"db.backend": "memory", "muon.url": url, "muon.wait": "2"}, environ={})
    caplog.set_level(logging.WARNING, "photon.amqp")
    with EventStore.open(config) as store:
        began = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="after waiting 2s"):
            asyncio.run(AmqpService(store, config).start())
        assert 1.5 <= time.monotonic() - began < 15
    assert any("not reachable yet" in record.getMessage() for record in caplog.records)


# -- emit ---------------------------------------------------------------------------------


def test_emit_one_event_and_a_list(photon: Photon) -> None:
    with photon.client() as client:
        [stored] = client.emit(event(n=1))
        assert stored["order-id"] == 1
        assert stored["stream-version"] == 1
        assert stored["payload"] == {"n": 1}
        batch = client.emit([event(n=2), event("users", "joined", who="ann")])
    assert [e["order-id"] for e in batch] == [2, 3]
    assert [e["stream-name"] for e in batch] == ["orders", "users"]
    in_store = [e.to_dict() for e in photon.store.read()]
    assert in_store == [stored, *batch]


def test_emit_with_expected_version(photon: Photon) -> None:
    with photon.client() as client:
        client.emit(event(n=1), expected_version="no-stream")
        client.emit(event(n=2), expected_version=1)
        with pytest.raises(VersionConflict, match="expected-version 1, but the stream is at version 2") as caught:
            client.emit([event(n=3), event(n=4)], expected_version=1)
        assert caught.value.current == 2
    assert photon.store.stream_version("orders") == 2
    assert message_count(photon.url, photon.names.dead_letter_queue) == 0  # a refusal is not dead-lettered


def test_emit_over_several_streams_and_with_a_condition(photon: Photon) -> None:
    with photon.client() as client:
        client.emit([event("a", tag="x"), {**event("b"), "tags": ["k:1"]}])
        moved = client.emit([event("a"), event("b")], expected_versions={"a": 1, "b": 1})
        assert [e["stream-version"] for e in moved] == [2, 2]
        with pytest.raises(VersionConflict):
            client.emit(event("a"), expected_versions={"a": 1})
        with pytest.raises(AppendConditionFailed) as caught:
            client.emit(event("c"), condition={"query": [{"tags": ["k:1"]}], "after": 0})
        assert (caught.value.order_id, caught.value.stream) == (2, "b")
        client.emit(event("c"), condition={"query": [{"tags": ["k:1"]}], "after": 2})
        with pytest.raises(ValidationError, match="list of query items"):
            client.emit(event("c"), condition={"query": "k:1"})
    assert photon.store.last_order_id() == 5
    assert message_count(photon.url, photon.names.dead_letter_queue) == 1  # only the malformed command


def test_emit_resent_with_the_same_ids_is_stored_once(photon: Photon) -> None:
    with photon.client() as client:
        first = client.emit([{**event(n=1), "id": "e-1"}, {**event(n=2), "id": "e-2"}])
        again = client.emit([{**event(n=1), "id": "e-1"}, {**event(n=2), "id": "e-2"}])
    assert again == first
    assert photon.store.last_order_id() == 2


def test_a_redelivered_command_with_a_message_id_is_stored_once(photon: Photon, raw: Raw) -> None:
    replies = raw.queue()
    body = orjson.dumps([event(n=1), event(n=2)])  # no ids: they come from the message id
    ids = [raw.request(body, replies, message_id="cmd-42") for _ in range(2)]
    got = raw.drain(replies, 2)
    bodies = {props.correlation_id: orjson.loads(body) for _, props, body in got}
    assert {props.type for _, props, _ in got} == {"emitted"}
    assert bodies[ids[0]] == bodies[ids[1]]
    assert [e["order-id"] for e in bodies[ids[0]]] == [1, 2]
    assert photon.store.last_order_id() == 2


def test_emit_envelope_and_header_forms(photon: Photon, raw: Raw) -> None:
    replies = raw.queue()
    raw.request(orjson.dumps({"events": [event(n=1)], "expected-version": "no-stream"}), replies)
    raw.request(orjson.dumps(event(n=2)), replies, headers={"expected-version": 1})
    raw.request(orjson.dumps(event(n=3)), replies, headers={"expected-version": 1})
    # The wrapper is read by the same code as HTTP's: its events may be one event, not only a list.
    raw.request(orjson.dumps({"events": event(n=4), "expected-version": 2}), replies)
    got = raw.drain(replies, 4)
    kinds = sorted(props.type for _, props, _ in got)
    assert kinds == ["emitted", "emitted", "emitted", "error"]
    assert photon.store.stream_version("orders") == 3


BAD_MESSAGES = [
    (b"{not json", "emit", "not valid JSON", None),
    (orjson.dumps({"stream-name": "orders", "event-type": "x"}), "emit", "missing required field 'payload'", "payload"),
    (orjson.dumps(event("__all__")), "emit", "internal", "stream-name"),
    (orjson.dumps([event(n=1), {"stream-name": "orders"}]), "emit", "event 1:", "event-type"),
    (orjson.dumps({"events": "x"}), "emit", "must be a list of events or one event", "events"),
    (orjson.dumps(event(n=1)), "frobnicate", "unknown message type 'frobnicate'", "type"),
    (orjson.dumps({"stream-type": "lukewarm"}), "replay", "'stream-type' must be one of", "stream-type"),
    (orjson.dumps({"from": -3}), "replay", "'from' must be a whole number", "from"),
    # The replay options are read by the core's request model, with the bounds HTTP has.
    (orjson.dumps({"from": 1 << 63}), "replay", "'from' must be at most 9223372036854775807", "from"),
    (orjson.dumps({"from-time": "5"}), "replay", "'from-time' must be a whole number", "from-time"),
    (orjson.dumps({"limit": 0}), "replay", "'limit' must be a whole number of at least 1", "limit"),
    (orjson.dumps({"to": True}), "replay", "'to' must be a whole number", "to"),
    (b'{"stream-name": "orders", "events": [], "n": 18446744073709551616}', "emit", "beyond 64 bits", None),
    (orjson.dumps({"stream-name": "orders", "colour": 1}), "replay", "unknown field 'colour'", "colour"),
]


def test_bad_messages_get_an_error_reply_are_not_stored_and_do_not_loop(photon: Photon, raw: Raw) -> None:
    replies = raw.queue()
    sent = {raw.request(body, replies, kind): (message, field) for body, kind, message, field in BAD_MESSAGES}
    got = raw.drain(replies, len(sent))
    assert len(got) == len(sent)
    for _, props, body in got:
        assert props.type == "error"
        reply = orjson.loads(body)
        message, field = sent[props.correlation_id]
        assert message in reply["error"]
        assert reply.get("field") == field
        # A refused event of a batch is named by its position too, for a client to point at it.
        assert reply.get("event-index") == (1 if message == "event 1:" else None)
        assert reply["kind"] in ("validation", "internal-stream")
    assert photon.store.last_order_id() == 0
    # Each rejected once, without requeue: all of them in the dead-letter queue, none left to loop.
    wait_until(lambda: message_count(photon.url, photon.names.dead_letter_queue) == len(sent), what="dead letters")
    time.sleep(0.3)
    assert message_count(photon.url, photon.names.dead_letter_queue) == len(sent)
    assert message_count(photon.url, photon.names.commands) == 0
    assert photon.store.last_order_id() == 0


def test_client_raises_the_core_errors(photon: Photon) -> None:
    with photon.client() as client:
        with pytest.raises(ValidationError, match="missing required field 'payload'") as caught:
            client.emit({"stream-name": "orders", "event-type": "x"})
        assert caught.value.field == "payload"
        assert caught.value.index is None
        with pytest.raises(ValidationError, match="event 1:") as caught:
            client.emit([event(n=1), {"stream-name": "orders", "payload": {}}])
        assert (caught.value.field, caught.value.index) == ("event-type", 1)
        with pytest.raises(InternalStreamError):
            client.emit(event("__config__"))
    assert photon.store.last_order_id() == 0


def test_client_names_a_missing_service(broker: RabbitServer) -> None:
    client = AmqpClient(broker.url, service=f"nobody-{uuid.uuid4().hex[:6]}", timeout=5)
    with client, pytest.raises(PhotonError, match="no Photon service listens on queue"):
        client.emit(event())
    # A replay (a live one would otherwise wait forever) and a group join say so at once too,
    # rather than after the client's time-out.
    with client:
        for stream_type in ("cold", "hot"):
            began = time.monotonic()
            with pytest.raises(PhotonError, match="no Photon service listens on queue"):
                list(client.replay("orders", stream_type))
            assert time.monotonic() - began < 4
        began = time.monotonic()
        with pytest.raises(PhotonError, match="no Photon service listens on queue"):
            client.join_group("billing")
        assert time.monotonic() - began < 4


def test_client_cannot_connect_is_a_clear_error() -> None:
    client = AmqpClient(f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F", retries=0)
    with pytest.raises(BrokerUnavailable, match="cannot connect to the AMQP broker"):
        client.emit(event())


def test_concurrent_emitters_each_get_their_own_events(photon: Photon) -> None:
    results: dict[int, list[int]] = {}

    def emitter(number: int) -> None:
        with photon.client() as client:
            results[number] = [client.emit(event(f"s{number}", n=i))[0]["stream-version"] for i in range(30)]

    threads = [threading.Thread(target=emitter, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == {n: list(range(1, 31)) for n in range(4)}
    assert photon.store.last_order_id() == 120


def test_emit_many_pipelines_commands(photon: Photon) -> None:
    with photon.client() as client:
        results = client.emit_many([event(n=i) for i in range(200)], window=50)
    assert len(results) == 200
    assert sorted(r[0]["order-id"] for r in results) == list(range(1, 201))
    assert photon.store.stream_version("orders") == 200


# -- live events ----------------------------------------------------------------------------


def test_every_stored_event_is_published_routed_by_stream(photon: Photon, raw: Raw) -> None:
    orders = raw.bind(photon.names.events, "orders")
    everything = raw.bind(photon.names.events, "#")
    with photon.client() as client:
        client.emit([event(n=1), event("users", "joined")])
    photon.store.append(event(n=2))  # stored by another way in: published too
    got = raw.drain(everything, 3)
    assert [orjson.loads(body)["order-id"] for _, _, body in got] == [1, 2, 3]
    method, props, body = got[0]
    assert method.routing_key == "orders"
    assert props.delivery_mode == 2
    assert props.type == "event"
    assert props.headers["order-id"] == 1
    assert props.headers["event-type"] == "placed"
    assert props.message_id == orjson.loads(body)["id"]
    assert [orjson.loads(b)["payload"] for _, _, b in raw.drain(orders, 2)] == [{"n": 1}, {"n": 2}]
    assert raw.drain(orders, 1, timeout=0.3) == []
    wait_until(lambda: photon.service.published == 3, what="confirms")
    wait_until(lambda: photon.store.read_checkpoint(photon.names.checkpoint) == {"order-id": 3}, what="checkpoint")


def test_a_first_start_publishes_from_now_and_a_restart_resumes_from_the_checkpoint(
    broker: RabbitServer, photon_factory: Callable[..., Photon], tmp_path: Path
) -> None:
    name = f"t{uuid.uuid4().hex[:10]}"
    raw = Raw(broker.url)
    try:
        raw.channel.exchange_declare(Names(name).events, "topic", durable=True)
        queue = raw.bind(Names(name).events, "#", name=f"{name}.audit", durable=True)
        path = tmp_path / "resume.db"
        photon = photon_factory(broker.url, name=name, path=path)
        photon.store.append([event(n=0), event(n=0)])  # history from before AMQP: not published
        photon.start()
        photon.store.append(event(n=1))
        wait_until(lambda: photon.service.published == 3, what="first publish")
        photon.stop()
        photon.store.append([event(n=2), event(n=3)])  # stored while AMQP is off
        photon.start()
        photon.store.append(event(n=4))
        got = raw.drain(queue, 4)
        assert [orjson.loads(body)["order-id"] for _, _, body in got] == [3, 4, 5, 6]
    finally:
        raw.channel.queue_delete(f"{name}.audit")
        raw.close()


# -- replay ---------------------------------------------------------------------------------


def test_cold_replay_streams_history_then_ends(photon: Photon) -> None:
    photon.store.append([event(n=i, kind="placed" if i % 2 else "paid") for i in range(1, 11)])
    photon.store.append(event("users", "joined"))
    with photon.client() as client:
        items = list(client.replay("orders", "cold"))
        assert [i["payload"]["n"] for i in items if isinstance(i, dict)] == list(range(1, 11))
        assert not any(isinstance(i, CaughtUp) for i in items)
        window = list(client.replay("orders", "cold", from_order_id=3, to_order_id=6, event_types=["paid"]))
        assert [e["order-id"] for e in window if isinstance(e, dict)] == [4, 6]
        assert len(list(client.replay(stream_type="cold"))) == 11  # __all__ by default
        assert [e["stream-version"] for e in client.replay("orders", "cold", from_version=9)] == [9, 10]  # type: ignore[index]
        assert len(list(client.replay("orders", "cold", limit=3))) == 3
        assert list(client.replay("nothing-here", "cold")) == []


def test_replay_messages_on_the_requesters_queue(photon: Photon, raw: Raw) -> None:
    photon.store.append([event(n=1), event(n=2)])
    replies = raw.queue()
    correlation_id = raw.request(orjson.dumps({"stream-name": "orders", "stream-type": "cold"}), replies, "replay")
    got = raw.drain(replies, 3)
    assert [props.type for _, props, _ in got] == ["event", "event", "end"]
    assert {props.correlation_id for _, props, _ in got} == {correlation_id}
    assert orjson.loads(got[0][2])["order-id"] == 1
    assert orjson.loads(got[2][2]) == {"count": 2, "order-id": 2}


def test_replay_errors_reach_the_client(photon: Photon) -> None:
    with photon.client() as client, pytest.raises(ValidationError, match="from-version applies to a stream"):
        list(client.replay("__all__", "cold", from_version=2))


def test_hot_cold_replay_catches_up_then_follows_live_events(photon: Photon) -> None:
    photon.store.append([event(n=1), event(n=2)])
    with photon.client() as client:
        replay = client.replay("orders", "hot-cold")
        assert [e["order-id"] for e in (next(replay), next(replay))] == [1, 2]  # type: ignore[index]
        assert next(replay) == CaughtUp(2)
        wait_until(lambda: photon.service.stats()["replays"] == 1, what="replay running")
        photon.store.append([event("users", "joined"), event(n=3)])
        live = next(replay)
        assert isinstance(live, dict) and live["payload"] == {"n": 3} and live["order-id"] == 4
        replay.close()  # cancels the replay on the server
        wait_until(lambda: photon.service.stats()["replays"] == 0, what="replay cancelled")


def test_a_replay_ends_when_its_queue_goes_away(photon: Photon, raw: Raw) -> None:
    replies = raw.queue(f"replies-{uuid.uuid4().hex[:6]}", auto_delete=False, exclusive=False)
    raw.request(orjson.dumps({"stream-name": "orders", "stream-type": "hot"}), replies, "replay")
    wait_until(lambda: photon.service.stats()["replays"] == 1, what="replay running")
    raw.channel.queue_delete(replies)
    photon.store.append(event(n=1))  # comes back unroutable
    wait_until(lambda: photon.service.stats()["replays"] == 0, what="replay ended")


def test_an_idle_replay_notices_its_queue_is_gone(photon: Photon, raw: Raw) -> None:
    replies = raw.queue(f"replies-{uuid.uuid4().hex[:6]}", auto_delete=False, exclusive=False)
    raw.request(orjson.dumps({"stream-name": "orders", "stream-type": "hot-cold"}), replies, "replay")
    wait_until(lambda: photon.service.stats()["replays"] == 1, what="replay running")
    raw.channel.queue_delete(replies)
    wait_until(lambda: photon.service.stats()["replays"] == 0, timeout=30, what="idle replay ended")


def test_stopping_the_service_ends_running_replays(photon: Photon, raw: Raw) -> None:
    replies = raw.queue()
    body = orjson.dumps({"stream-type": "hot-cold"})
    for _ in range(3):
        raw.request(body, replies, "replay")
    wait_until(lambda: photon.service.stats()["replays"] == 3, what="replays running")
    began = time.monotonic()
    photon.stop()
    assert time.monotonic() - began < 10
    assert photon.service.stats()["replays"] == 0
    assert [props.type for _, props, _ in raw.drain(replies, 3)] == ["caught-up"] * 3


def test_a_replay_request_needs_a_reply_queue(photon: Photon, raw: Raw) -> None:
    raw.channel.basic_publish("", photon.names.commands, b"{}", pika.BasicProperties(type="replay"))
    wait_until(lambda: message_count(photon.url, photon.names.dead_letter_queue) == 1, what="dead letter")


# -- projection updates -------------------------------------------------------------------


def test_projection_updates_are_published_routed_by_name(photon: Photon, raw: Raw) -> None:
    counts = raw.bind(photon.names.projections, "counts")
    everything = raw.bind(photon.names.projections, "#")
    assert photon.service.publish_projection_update("counts", {"projection-name": "counts", "current-value": 1})
    assert photon.service.publish_projection_update("totals", {"projection-name": "totals", "current-value": 9})

    async def updates() -> AsyncIterator[Any]:
        yield ("counts", {"projection-name": "counts", "current-value": 2})
        yield {"projection-name": "counts", "current-value": 3}

    async def add() -> None:
        photon.service.add_projection_source(updates())

    photon.loop.run(add())
    got = raw.drain(counts, 3)
    assert [orjson.loads(body)["current-value"] for _, _, body in got] == [1, 2, 3]
    assert got[0][1].headers == {"projection-name": "counts"}
    assert len(raw.drain(everything, 4)) == 4


def test_projection_source_given_at_construction(broker: RabbitServer, tmp_path: Path) -> None:
    name = f"t{uuid.uuid4().hex[:10]}"
    raw = Raw(broker.url)
    raw.channel.exchange_declare(Names(name).projections, "topic", durable=True)
    queue = raw.bind(Names(name).projections, "#")
    gate = asyncio.Event()

    async def updates() -> AsyncIterator[Any]:
        await gate.wait()
        yield ("p", {"v": 1})

    config = load_config({"db.backend": "memory", "muon.url": broker.url, "microservice.name": name}, environ={})
    loop = Loop()
    with EventStore.open(config) as store:
        service = AmqpService(store, config, projection_updates=updates())
        loop.run(service.start())
        try:
            loop.loop.call_soon_threadsafe(gate.set)
            assert [orjson.loads(body) for _, _, body in raw.drain(queue, 1)] == [{"v": 1}]
        finally:
            loop.run(service.stop())
            loop.close()
            raw.close()


# -- broker restarts (a broker of their own, stopped and started on the same data dir) ----------


@pytest.fixture(scope="module")
def private_broker() -> Iterator[RabbitServer]:
    server = RabbitServer()
    if not server.restartable:
        pytest.skip(f"{server.env_var} points at an external broker; not restarting it")
    server = start_broker()
    yield server
    server.close()


@pytest.mark.slow
def test_broker_restart_loses_no_acknowledged_emit_and_live_publishing_resumes(
    private_broker: RabbitServer, photon_factory: Callable[..., Photon]
) -> None:
    photon = photon_factory(private_broker.url).start()
    raw = Raw(private_broker.url)
    audit = raw.bind(photon.names.events, "#", name=f"{photon.name}.audit", durable=True)
    raw.close()

    acknowledged: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def emitter(number: int) -> None:
        with photon.client(retries=40, timeout=30) as client:
            sequence = 0
            while not stop.is_set():
                try:
                    [stored] = client.emit({**event(f"s{number}", n=sequence), "id": f"{number}-{sequence}"})
                except BaseException as exc:
                    failures.append(exc)
                    return
                acknowledged.append(stored)
                sequence += 1

    threads = [threading.Thread(target=emitter, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(acknowledged) >= 60, what="emits before the restart")
        private_broker.stop()
        photon.store.append([event("offline", n=i) for i in range(5)])  # stored while the broker is down
        before = len(acknowledged)
        private_broker.start()
        wait_until(lambda: len(acknowledged) >= before + 60, timeout=60, what="emits after the restart")
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert photon.service.stats()["connects"] >= 2

    # Every acknowledged emit is stored, exactly once, where its reply said.
    stored = {e.event_id: e for e in photon.store.read()}
    assert len(stored) == photon.store.last_order_id()
    for reply in acknowledged:
        assert stored[reply["id"]].order_id == reply["order-id"]
    for number in range(3):
        versions = [e.stream_version for e in photon.store.read(f"s{number}")]
        assert versions == list(range(1, len(versions) + 1))
        ids = [e.event_id for e in photon.store.read(f"s{number}")]
        assert ids == [f"{number}-{i}" for i in range(len(ids))]

    # Live publishing resumed from its checkpoint: the durable consumer has every order-id
    # (some possibly twice: at-least-once), including the events stored while the broker was down.
    last = photon.store.last_order_id()
    wait_until(lambda: photon.service.published == last, timeout=30, what="live publishing to catch up")
    raw = Raw(private_broker.url)
    try:
        got = raw.drain(audit, last, timeout=30)
        seen = {orjson.loads(body)["order-id"] for _, _, body in got}
        while len(seen) < last:
            more = raw.drain(audit, 1, timeout=2)
            if not more:
                break
            seen.add(orjson.loads(more[0][2])["order-id"])
        assert seen == set(range(1, last + 1))
        raw.channel.queue_delete(audit)
    finally:
        raw.close()


@pytest.mark.slow
def test_muon_wait_connects_once_the_broker_comes_up(
    private_broker: RabbitServer, photon_factory: Callable[..., Photon], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "photon.amqp")
    private_broker.stop()
    photon = photon_factory(private_broker.url, **{"muon.wait": "120"})
    started = threading.Thread(target=photon.start)
    started.start()
    time.sleep(1.0)
    assert started.is_alive()  # still waiting for the broker
    private_broker.start()
    started.join(120)
    assert photon.service.connected
    with photon.client() as client:
        assert client.emit(event())[0]["order-id"] == 1
    assert any("not reachable yet" in record.getMessage() for record in caplog.records)


SERVER_SCRIPT = """
import asyncio, sys
from photon.server.amqp import AmqpService
from photon.core.config import load_config
from photon.core.store import EventStore

keys = {"sqlite.path": sys.argv[1], "muon.url": sys.argv[2], "microservice.name": sys.argv[3]}
config = load_config(keys, environ={})
store = EventStore.open(config)
service = AmqpService(store, config)

async def main() -> None:
    await service.start()
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.mark.slow
def test_photon_killed_mid_emits_loses_no_acknowledged_emit(broker: RabbitServer, tmp_path: Path) -> None:
    name = f"t{uuid.uuid4().hex[:10]}"
    path = tmp_path / "crash.db"

    def launch() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVER_SCRIPT, str(path), broker.url, name], stdout=subprocess.PIPE
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        return process

    process = launch()
    acknowledged: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def emitter(number: int) -> None:
        with AmqpClient(broker.url, service=name, retries=40, timeout=5) as client:
            sequence = 0
            while not stop.is_set():
                try:
                    [stored] = client.emit({**event(f"s{number}", n=sequence), "id": f"{number}-{sequence}"})
                except TimeoutError:
                    continue  # no reply (the server was killed): send the same event again
                except BaseException as exc:
                    failures.append(exc)
                    return
                acknowledged.append(stored)
                sequence += 1

    threads = [threading.Thread(target=emitter, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(acknowledged) >= 60, what="emits before the kill")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        before = len(acknowledged)
        process = launch()  # the broker redelivers what the killed one had not acknowledged
        wait_until(lambda: len(acknowledged) >= before + 60, timeout=60, what="emits after the restart")
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert failures == []
    config = load_config({"sqlite.path": str(path)}, environ={})
    with EventStore.open(config, read_only=True) as store:
        stored = {e.event_id: e for e in store.read()}
        assert len(stored) == store.last_order_id()
        for reply in acknowledged:
            assert stored[reply["id"]].order_id == reply["order-id"]
        for number in range(3):
            ids = [e.event_id for e in store.read(f"s{number}")]
            assert ids == [f"{number}-{i}" for i in range(len(ids))]


def test_stream_metadata_and_deletes_over_amqp(photon: Photon) -> None:
    from photon.core.errors import NotFound, StreamDeleted

    with photon.client() as client:
        client.emit([event("m", n=i) for i in range(5)])
        assert client.stream_metadata("m") == {}
        assert client.stream_metadata("m", {"max-count": 2, "owner": "ops"}) == {"owner": "ops", "max-count": 2}
        assert [e.stream_version for e in photon.store.read("m")] == [4, 5]
        with pytest.raises(ValidationError, match="max-count"):
            client.stream_metadata("m", {"max-count": 0})
        assert client.delete_stream("m") == 5
        with pytest.raises(NotFound):
            client.delete_stream("m")
        assert client.emit(event("m"))[0]["stream-version"] == 6  # soft: the numbering goes on
        assert client.delete_stream("m", hard=True) == 6
        with pytest.raises(StreamDeleted):
            client.emit(event("m"))
        assert client.stream_metadata("m")["tombstone"] is True


def test_photon_client_over_amqp_reads_sets_and_deletes_streams(photon: Photon) -> None:
    from photon.client.amqp import AmqpTransport
    from photon.client.blocking import PhotonClient
    from photon.core.errors import NotFound

    with PhotonClient(transport=AmqpTransport(photon.url, service=photon.name)) as client:
        client.emit([event("p", n=i) for i in range(3)])
        assert client.set_stream_metadata("p", {"max-count": 1}) == {"max-count": 1}
        assert client.stream_metadata("p") == {"max-count": 1}
        assert [e.stream_version for e in photon.store.read("p")] == [3]
        with pytest.raises(ValidationError, match="max-count"):
            client.set_stream_metadata("p", {"max-count": -1})
        assert client.delete_stream("p") == 3
        with pytest.raises(NotFound):
            client.delete_stream("p")
        # What only the HTTP API serves says so.
        with pytest.raises(PhotonError, match="served over HTTP"):
            client.read("p")
        with pytest.raises(NotImplementedError, match="served over HTTP"):
            client.streams()
