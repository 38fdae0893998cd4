"""Event validation: every bad input gets an error naming the field, and nothing is stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from photon.core.errors import InternalStreamError, ValidationError
from photon.core.event_validation import parse_expected_version, validate_event
from photon.core.store import EventStore


def good(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"stream-name": "orders", "event-type": "Created", "payload": {"n": 1}}
    event.update(changes)
    return {k: v for k, v in event.items() if v is not ...}


BAD_EVENTS = [
    ("not an object", ["a list"], None, "must be a JSON object"),
    ("missing stream-name", good(**{"stream-name": ...}), "stream-name", "missing required field 'stream-name'"),
    ("stream-name not a string", good(**{"stream-name": 5}), "stream-name", "must be a string, got number"),
    ("empty stream-name", good(**{"stream-name": ""}), "stream-name", "1 to 256 characters"),
    ("long stream-name", good(**{"stream-name": "x" * 257}), "stream-name", "1 to 256 characters"),
    ("control character", good(**{"stream-name": "a\nb"}), "stream-name", "control characters"),
    ("wildcard", good(**{"stream-name": "a*"}), "stream-name", "reserved for wildcards"),
    ("dot segment", good(**{"stream-name": "."}), "stream-name", "must not be '.': URLs resolve it"),
    ("dot-dot segment", good(**{"stream-name": ".."}), "stream-name", "must not be '..': URLs resolve it"),
    ("missing event-type", good(**{"event-type": ...}), "event-type", "missing required field 'event-type'"),
    ("event-type not a string", good(**{"event-type": ["x"]}), "event-type", "got array"),
    ("missing payload", good(payload=...), "payload", "missing required field 'payload'"),
    ("payload not an object", good(payload=[1, 2]), "payload", "must be a JSON object, got array"),
    ("payload a string", good(payload="{}"), "payload", "got string"),
    ("service-id not a string", good(**{"service-id": 3}), "service-id", "must be a string"),
    ("caused-by not a string", good(**{"caused-by": {}}), "caused-by", "must be a string"),
    ("schema a list", good(schema=[1]), "schema", "string or an integer"),
    ("id empty", good(id=""), "id", "1 to 128 characters"),
    ("id a number", good(id=12), "id", "1 to 128 characters"),
    ("event-time negative", good(**{"event-time": -1}), "event-time", "non-negative integer"),
    ("event-time a string", good(**{"event-time": "2020"}), "event-time", "non-negative integer"),
    ("event-time a bool", good(**{"event-time": True}), "event-time", "non-negative integer"),
    ("order-id sent", good(**{"order-id": 4}), "order-id", "assigned by the store"),
    ("stream-version sent", good(**{"stream-version": 4}), "stream-version", "assigned by the store"),
    ("unknown field", good(colour="red"), "colour", "unknown field 'colour'"),
    ("non-JSON payload value", good(payload={"x": object()}), "payload", "not valid JSON data"),
]


@pytest.mark.parametrize(("case", "event", "field", "message"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
def test_bad_event_is_refused_naming_the_field(case: str, event: Any, field: str | None, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as error:
        validate_event(event)
    assert error.value.field == field


@pytest.fixture
def store() -> Iterator[EventStore]:
    with EventStore.open(db_backend="memory") as store:
        yield store


@pytest.mark.parametrize(("case", "event", "field", "message"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
def test_bad_event_stores_nothing(store: EventStore, case: str, event: Any, field: str | None, message: str) -> None:
    with pytest.raises(ValidationError):
        store.append([good(), event])
    assert store.last_order_id() == 0
    assert store.streams() == []


def test_internal_stream_names_are_refused() -> None:
    for name in ("__all__", "__config__", "__anything"):
        with pytest.raises(InternalStreamError, match="written only by Photon"):
            validate_event(good(**{"stream-name": name}))


def test_oversize_event_is_refused(store: EventStore) -> None:
    with EventStore.open(db_backend="memory", payload_max_bytes=1000) as small:
        with pytest.raises(ValidationError, match=r"over the limit of 1000 bytes \(payload.max.bytes\)"):
            small.append(good(payload={"blob": "x" * 1000}))
        small.append(good(payload={"blob": "x" * 800}))
        assert small.last_order_id() == 1


def test_empty_batch_is_refused(store: EventStore) -> None:
    with pytest.raises(ValidationError, match="no events"):
        store.append([])


def test_valid_event_keeps_optional_fields_and_gets_id_and_time() -> None:
    pending = validate_event(good(schema=2, **{"service-id": "svc", "caused-by-relation": "r"}), now=1234)
    assert pending.event_time == 1234 and len(pending.event_id) == 36 and not pending.client_id
    record = pending.record(7, 3).to_dict()
    assert record["order-id"] == 7 and record["stream-version"] == 3 and record["schema"] == 2
    assert record["service-id"] == "svc" and record["event-time"] == 1234


@pytest.mark.parametrize(
    ("value", "expected"), [(None, "any"), ("any", "any"), ("no-stream", "no-stream"), (0, 0), (5, 5), ("7", 7)]
)
def test_expected_version_forms(value: Any, expected: Any) -> None:
    assert parse_expected_version(value) == expected


@pytest.mark.parametrize("value", [-1, "soon", 1.5, True, [1]])
def test_bad_expected_version(value: Any) -> None:
    with pytest.raises(ValidationError, match="expected-version must be"):
        parse_expected_version(value)


def test_generated_ids_are_time_ordered_uuid7_and_distinct() -> None:
    import uuid

    from photon.core.events import new_event_id, new_event_ids

    ids = [new_event_id(), *new_event_ids(5000), new_event_id(), *new_event_ids(1)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # generated in order, so they sort in order (the id index grows at its end)
    for event_id in ids[:3] + ids[-3:]:
        parsed = uuid.UUID(event_id)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and str(parsed) == event_id


def test_generated_ids_stay_ordered_where_the_last_48_bits_start_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    from photon.core import events

    boundary = (0x2AB << 48) + (1 << 48)
    monkeypatch.setattr(events, "_id_next", boundary - 3)
    ids = events.new_event_ids(6)
    assert [i[-12:] for i in ids] == ["fffffffffffd", "fffffffffffe", "ffffffffffff", *(f"{n:012x}" for n in range(3))]
    assert ids == sorted(ids) and len(set(ids)) == 6
    assert all(uuid.UUID(i).version == 7 for i in ids)
    monkeypatch.setattr(events, "_id_next", (1 << 74) - 2)  # the whole counter starts again too
    wrapped = events.new_event_ids(4)
    assert len(set(wrapped)) == 4 and wrapped[2].endswith("-000000000000")


def test_one_id_at_a_time_is_what_a_list_of_one_would_be(monkeypatch: pytest.MonkeyPatch) -> None:
    # new_event_id has its own short path; across the points where the last 48 bits and the
    # whole counter start again it must give the ids new_event_ids gives.
    from photon.core import events

    monkeypatch.setattr(events.time, "time_ns", lambda: 1_700_000_000_123_456_789)
    for start in ((0x2AB << 48) + (1 << 48) - 3, (1 << 74) - 2, 12345):
        monkeypatch.setattr(events, "_id_next", start)
        one_by_one = [events.new_event_id() for _ in range(6)]
        monkeypatch.setattr(events, "_id_next", start)
        monkeypatch.setattr(events, "_id_head", (-1, -1, ""))
        assert one_by_one == events.new_event_ids(6)
    mixed = [events.new_event_id(), *events.new_event_ids(3), events.new_event_id()]
    assert mixed == sorted(mixed) and len(set(mixed)) == 5
    # A long run: every id the head and its own 12 digits.
    monkeypatch.setattr(events, "_id_next", (5 << 48) + 0xFFFF_0000_0000)
    many = events.new_event_ids(1000)
    head = many[0][:-12]
    assert many == [head + f"{n:012x}" for n in range(0xFFFF_0000_0000, 0xFFFF_0000_0000 + 1000)]


def test_a_batch_gives_each_event_without_an_id_its_own(store: EventStore) -> None:
    stored = store.append([good(), good(id="mine"), good(), good()])
    ids = [e.event_id for e in stored]
    assert ids[1] == "mine" and len(set(ids)) == 4
    assert [store.get_event(i) for i in ids] == stored


def test_a_name_the_core_wrote_is_still_refused_to_clients(store: EventStore) -> None:
    # Good names are remembered to skip their checks; internal ones must never be.
    store.append_internal("__config__", "noted", {})
    validate_event(good(**{"stream-name": "__config__"}), allow_internal=True)
    with pytest.raises(InternalStreamError):
        validate_event(good(**{"stream-name": "__config__"}))
    with pytest.raises(InternalStreamError):
        store.append(good(**{"stream-name": "__config__"}))
    store.append(good(**{"stream-name": "orders"}))  # remembered now
    with pytest.raises(ValidationError, match="wildcards"):
        validate_event(good(**{"stream-name": "orders*"}))
    with pytest.raises(ValidationError, match="must be a string"):
        validate_event(good(**{"stream-name": ["orders"]}))


def test_the_callers_event_is_left_as_it_was_unless_given_up() -> None:
    from photon.core.event_validation import prepare_event
    from photon.core.events import new_event_id

    event = good()
    before = dict(event)
    pending = validate_event(event, now=5)
    assert event == before  # id and event-time were filled in on a copy
    assert orjson.loads(b"{" + pending.body)["event-time"] == 5
    given_up = good()
    owned = prepare_event(given_up, 1 << 20, False, 5, new_event_id, True)
    assert given_up["id"] == owned.event_id and given_up["event-time"] == 5
