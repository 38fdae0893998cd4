"""Streams over their lifetime over Photon's AMQP protocol, against a real RabbitMQ: scavenging,
redaction and reads by query through `AmqpClient` and through `PhotonClient` on the AMQP
transport (stream metadata, deletes, multi-stream and conditional appends with them), and bad
requests answered with an error naming the problem, with nothing stored."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from photon.client.amqp import AmqpTransport
from photon.client.blocking import PhotonClient
from photon.core.errors import AppendConditionFailed, NotFound, StreamDeleted, ValidationError, VersionConflict

from .servers import RabbitServer
from .test_amqp import Photon, Raw, event, message_count, start_broker, wait_until

pytestmark = pytest.mark.rabbitmq


@pytest.fixture(scope="module")
def broker() -> Iterator[RabbitServer]:
    server = start_broker()
    yield server
    server.close()


@pytest.fixture
def photon(broker: RabbitServer, tmp_path: Path) -> Iterator[Photon]:
    started = Photon(tmp_path / "store.db", broker.url, f"t{uuid.uuid4().hex[:10]}").start()
    yield started
    started.close()


@pytest.fixture
def raw(photon: Photon) -> Iterator[Raw]:
    connection = Raw(photon.url)
    connection._commands = photon.names.commands
    yield connection
    connection.close()


def test_scavenge_redact_and_read_matching_with_the_amqp_client(photon: Photon) -> None:
    with photon.client() as client:
        stored = client.emit([event("m", n=i) for i in range(5)])
        client.stream_metadata("m", {"max-count": 2})
        report = client.scavenge()
        assert report["removed-events"] == 3 and set(report) >= {"streams", "reclaim-steps", "seconds"}
        assert [e.stream_version for e in photon.store.read("m")] == [4, 5]

        assert client.redact(event_ids=[stored[3]["id"]], reason="erasure") == 1
        assert photon.store.get_event(stored[3]["id"]).payload["redacted"] is True  # type: ignore[union-attr]
        assert photon.store.get_event(stored[4]["id"]).payload == {"n": 4}  # type: ignore[union-attr]
        assert client.redact(stream="m") == 2
        assert photon.store.get_event(stored[4]["id"]).payload["redacted"] is True  # type: ignore[union-attr]
        with pytest.raises(NotFound, match="no event with id 'nope'"):
            client.redact(event_ids=["nope"])
        with pytest.raises(ValidationError, match="one of the two"):
            client.redact(stream="m", event_ids=[stored[4]["id"]])
        with pytest.raises(ValidationError, match="internal"):
            client.redact(stream="__config__")

        client.emit([{**event("seat-1", "Booked"), "tags": ["seat:1A"]}, {**event("seat-2", "Booked"), "tags": ["x"]}])
        page = client.read_matching({"query": [{"event-types": ["Booked"], "tags": ["seat:1A"]}]})
        assert [e["stream-name"] for e in page["results"]] == ["seat-1"]
        assert page["next"] is None and page["head"] == photon.store.last_order_id()
        first = client.read_matching({"query": [{"event-types": ["Booked"]}], "limit": 1})
        assert len(first["results"]) == 1 and first["next"] == first["results"][0]["order-id"]
        rest = client.read_matching({"query": [{"event-types": ["Booked"]}], "after": first["next"]})
        assert [e["stream-name"] for e in rest["results"]] == ["seat-2"]
        with pytest.raises(ValidationError, match="limit"):
            client.read_matching({"limit": 0})


def test_photon_client_over_the_amqp_transport(photon: Photon) -> None:
    client = PhotonClient(transport=AmqpTransport(photon.url, service=photon.name))
    try:
        client.emit([event("a"), event("b")])
        moved = client.emit([event("a"), event("b")], expected_versions={"a": 1, "b": 1})
        assert [(e.stream_name, e.stream_version) for e in moved] == [("a", 2), ("b", 2)]
        with pytest.raises(VersionConflict):
            client.emit([event("a"), event("b")], expected_versions={"a": 2, "b": 1})
        booked = client.emit({**event("seat-1", "Booked"), "tags": ["seat:1A"]})
        query = [{"event-types": ["Booked"], "tags": ["seat:1A"]}]
        with pytest.raises(AppendConditionFailed) as caught:
            client.emit(event("seat-1", "Booked"), condition={"query": query, "after": 0})
        assert caught.value.order_id == booked.order_id
        assert [e.order_id for e in client.read_matching(query)] == [booked.order_id]
        assert client.emit(event("x"), condition={"query": query, "after": booked.order_id}).stream_name == "x"

        assert client.set_stream_metadata("a", {"max-count": 1, "owner": "ops"}) == {"max-count": 1, "owner": "ops"}
        assert client.stream_metadata("a")["owner"] == "ops"
        assert client.scavenge()["removed-events"] == 1
        assert client.delete_stream("b") == 2
        assert client.delete_stream("a", hard=True) == 2
        with pytest.raises(StreamDeleted):
            client.emit(event("a"))
        assert client.redact(stream="seat-1", reason="erasure") == 1
        assert photon.store.get_event(booked.event_id).payload["reason"] == "erasure"  # type: ignore[union-attr]
    finally:
        client.close()


BAD_REQUESTS: list[tuple[str, bytes, str, str | None]] = [
    ("scavenge", b'{"now": true}', "unknown field 'now' in a scavenge request", "now"),
    ("scavenge", b"[]", "a scavenge request is a JSON object", None),
    ("redact", b"{}", "one of the two", "stream-name"),
    ("redact", b'{"stream-name": "m", "why": 1}', "unknown field 'why' in a redact request", "why"),
    ("redact", b'{"ids": "x"}', "field 'ids' must be a list of event ids", "ids"),
    ("redact", b'{"stream-name": 5}', "stream-name must be a stream name", "stream-name"),
    ("redact", b'{"stream-name": "m", "reason": 7}', "reason must be a string", "reason"),
    ("redact", b"{not json", "not valid JSON", None),
    ("read-matching", b'{"query": "Booked"}', "must be a list of query items", "query"),
    ("read-matching", b'{"after": -1}', "after", "after"),
    ("read-matching", b'{"limit": 0}', "limit", "limit"),
    ("read-matching", b'{"from": 3}', "unknown field 'from' in a read-matching request", "from"),
]


def test_bad_requests_get_an_error_naming_the_problem_and_change_nothing(photon: Photon, raw: Raw) -> None:
    with photon.client() as client:
        stored = client.emit([event("m", n=i) for i in range(3)])
    before = [e.data for e in photon.store.read()]
    replies = raw.queue()
    sent = {raw.request(body, replies, kind): (kind, message, field) for kind, body, message, field in BAD_REQUESTS}
    got = raw.drain(replies, len(sent))
    assert len(got) == len(sent)
    for _, props, body in got:
        kind, message, field = sent[props.correlation_id]
        reply = orjson.loads(body)
        assert props.type == "error", (kind, reply)
        assert message in reply["error"], (kind, reply)
        assert reply.get("field") == field, (kind, reply)
        assert reply["kind"] == "validation"
    # Nothing was redacted, scavenged or stored; each bad command went to the dead letters once.
    assert [e.data for e in photon.store.read()] == before
    assert photon.store.get_event(stored[0]["id"]).payload == {"n": 0}  # type: ignore[union-attr]
    wait_until(lambda: message_count(photon.url, photon.names.dead_letter_queue) == len(sent), what="dead letters")
    time.sleep(0.2)
    assert message_count(photon.url, photon.names.commands) == 0


def test_an_unknown_request_type_lists_the_lifetime_requests(photon: Photon, raw: Raw) -> None:
    replies = raw.queue()
    raw.request(b"{}", replies, "vacuum")
    [(_, props, body)] = raw.drain(replies, 1)
    assert props.type == "error"
    message = orjson.loads(body)["error"]
    for kind in ("stream-metadata", "delete-stream", "scavenge", "redact", "read-matching"):
        assert kind in message
