"""Batch validation (`prepare_batch`, and `prepare_plain` for small batches of plain events)
accepts and refuses exactly what event-by-event validation does, and gives the same stored form."""

from __future__ import annotations

import itertools
import random
import time
from collections import UserDict
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from photon.core import event_validation as events_module
from photon.core.append_prepare import BATCH_VALIDATION
from photon.core.errors import ValidationError
from photon.core.event_validation import prepare_batch, prepare_event, prepare_plain
from photon.core.events import PendingEvent
from photon.core.store import EventStore

NOW = 1_700_000_000_000
MAX_BYTES = 600


class Name(str):
    """A str subclass: refused as a name, like anything that is not exactly a string."""


@pytest.fixture(autouse=True)
def counted_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Both paths draw their ids from one counter, so runs compare equal."""
    counter = itertools.count(1)
    monkeypatch.setattr(events_module, "new_event_ids", lambda n: [f"gen-{next(counter)}" for _ in range(n)])
    yield


def restart_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = itertools.count(1)
    monkeypatch.setattr(events_module, "new_event_ids", lambda n: [f"gen-{next(counter)}" for _ in range(n)])


def one_by_one(batch: list[Any]) -> list[PendingEvent] | ValidationError:
    new_id = iter(events_module.new_event_ids(len(batch))).__next__
    try:
        return [prepare_event(event, MAX_BYTES, False, NOW, new_id) for event in batch]
    except ValidationError as exc:
        return exc


def base(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "stream-name": rng.choice(["orders", "orders-7", "Ünïcode stream", f"s-{rng.randrange(40)}"]),
        "event-type": rng.choice(["Created", "Paid", f"T{rng.randrange(5)}"]),
        "payload": {"n": i, "tags": ["a", rng.random()], "nested": {"x": None}},
    }


OPTIONAL = [
    ("service-id", ["billing", None]),
    ("caused-by", ["e-1"]),
    ("caused-by-relation", ["reply"]),
    ("schema", ["v2", 3]),
]

SPOILERS: list[tuple[str, Any]] = [
    ("stream-name", 5),
    ("stream-name", ""),
    ("stream-name", "x" * 257),
    ("stream-name", "a\nb"),
    ("stream-name", "a*"),
    ("stream-name", "__config__"),
    ("stream-name", Name("orders")),
    ("stream-name", ["orders"]),
    ("event-type", None),
    ("event-type", 1.5),
    ("event-type", "tab\there"),
    ("payload", [1]),
    ("payload", "{}"),
    ("payload", {"x": object()}),
    ("payload", {"big": "y" * MAX_BYTES}),
    ("payload", UserDict({"a": 1})),
    ("service-id", 3),
    ("caused-by", {}),
    ("schema", True),
    ("schema", 1.0),
    ("id", ""),
    ("id", 12),
    ("id", "i" * 129),
    ("event-time", -1),
    ("event-time", True),
    ("event-time", "2020"),
    ("order-id", 4),
    ("colour", "red"),
]


def random_batch(rng: random.Random) -> tuple[list[Any], bool]:
    """A batch, and whether it is one the batch path is meant to take."""
    size = rng.randrange(1, 40)
    ids = rng.choice(["none", "all", "some"])
    times = rng.choice(["none", "all", "some"])
    batch: list[Any] = []
    for i in range(size):
        event = base(rng, i)
        for field, values in OPTIONAL:
            if rng.random() < 0.4:
                event[field] = rng.choice(values)
        if ids == "all" or (ids == "some" and rng.random() < 0.5):
            event["id"] = f"client-{rng.randrange(10**9)}-{i}"
        if times == "all" or (times == "some" and rng.random() < 0.5):
            event["event-time"] = rng.randrange(0, 2 * NOW)
        batch.append(event)
    spoiled = rng.random() < 0.5
    if spoiled:
        target = rng.randrange(size)
        kind = rng.randrange(4)
        if kind == 0:
            field, value = rng.choice(SPOILERS)
            batch[target][field] = value
        elif kind == 1:
            del batch[target][rng.choice(["stream-name", "event-type", "payload"])]
        elif kind == 2:
            batch[target] = rng.choice([["a list"], "text", 7, UserDict(batch[target])])
        else:
            batch[target] = dict(reversed(list(batch[target].items())))  # same fields, other order
    return batch, not spoiled and ids != "some" and times != "some"


def test_batch_path_agrees_with_event_by_event(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    taken = 0
    for _ in range(3000):
        batch, usual = random_batch(rng)
        restart_ids(monkeypatch)
        fast = prepare_batch(batch, MAX_BYTES, NOW)
        restart_ids(monkeypatch)
        slow = one_by_one(batch)
        if fast is not None:
            taken += 1
            assert not isinstance(slow, ValidationError), f"batch path took a batch the other refuses: {slow}"
            assert fast == slow
            # From the lines TCP ingest parsed (each event as orjson writes it): the same events.
            restart_ids(monkeypatch)
            assert prepare_batch(batch, MAX_BYTES, NOW, [orjson.dumps(e) for e in batch]) == slow
        elif usual:
            pytest.fail(f"batch path declined a usual batch: {batch!r}")
    assert taken > 600


def test_batch_path_leaves_the_callers_events_as_they_were() -> None:
    batch = [{"stream-name": "orders", "event-type": "Created", "payload": {"n": i}} for i in range(20)]
    before = [dict(e) for e in batch]
    pending = prepare_batch(batch, MAX_BYTES, NOW)
    assert pending is not None and batch == before
    # By position: the batch path's events are plain tuples (see PendingEvent).
    assert [p[3] for p in pending] == [NOW] * 20 and not any(p[5] for p in pending)


@pytest.fixture
def store() -> Iterator[EventStore]:
    with EventStore.open(db_backend="memory") as store:
        yield store


@pytest.mark.parametrize(("field", "value"), SPOILERS, ids=[f"{f}={v!r}"[:40] for f, v in SPOILERS])
def test_a_bad_event_in_a_long_batch_is_named_and_nothing_is_stored(store: EventStore, field: str, value: Any) -> None:
    if field == "payload" and isinstance(value, dict) and "big" in value:
        value = {"big": "y" * (store.max_event_bytes + 1)}
    batch = [
        {"stream-name": "orders", "event-type": "Created", "payload": {"n": i}} for i in range(BATCH_VALIDATION * 2)
    ]
    store.append(batch)  # the names are known now: the next batch is a candidate for the batch path
    batch[21][field] = value
    with pytest.raises(ValidationError, match=r"^event 21: ") as error:
        store.append(batch)
    assert error.value.field == field
    assert error.value.index == 21
    assert store.last_order_id() == len(batch)


def test_the_size_limit_is_the_same_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    def event(pad: int) -> dict[str, Any]:
        return {"stream-name": "orders", "event-type": "Created", "payload": {"p": "x" * pad}, "id": "fixed"}

    outcomes = set()
    for pad in range(MAX_BYTES - 120, MAX_BYTES):
        batch = [event(1)] * (BATCH_VALIDATION - 1) + [event(pad)]
        size = len(prepare_event(event(pad), 1 << 20, False, NOW, str).body) + 1
        fast, slow = prepare_batch(batch, MAX_BYTES, NOW), one_by_one(batch)
        assert (fast is not None) == (not isinstance(slow, ValidationError)) == (size <= MAX_BYTES)
        outcomes.add(size - MAX_BYTES)
    assert {-1, 0, 1} <= outcomes


def plain_batch(rng: random.Random) -> tuple[list[Any], bool]:
    """A small batch of events of the three required fields, sometimes spoiled; and whether it
    is one the plain path is meant to take."""
    batch: list[Any] = []
    for i in range(rng.randrange(1, BATCH_VALIDATION)):
        event = base(rng, i)
        if rng.random() < 0.3:
            event["payload"] = {"state": {"amount": i, "text": "ü" * rng.randrange(3)}, "version": i}
        batch.append(event)
    spoiled = rng.random() < 0.6
    if spoiled:
        target = rng.randrange(len(batch))
        kind = rng.randrange(5)
        if kind == 0:
            field, value = rng.choice(SPOILERS)
            batch[target][field] = value
        elif kind == 1:
            del batch[target][rng.choice(["stream-name", "event-type", "payload"])]
        elif kind == 2:
            batch[target] = rng.choice([["a list"], "text", 7, UserDict(batch[target])])
        elif kind == 3:
            field, values = rng.choice(OPTIONAL)  # a fourth field: for the event-by-event path
            batch[target][field] = values[0]
        else:
            batch[target] = dict(reversed(list(batch[target].items())))  # same fields, other order
            spoiled = False
    return batch, not spoiled


def test_plain_path_agrees_with_event_by_event(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(11)
    taken = 0
    for _ in range(3000):
        batch, usual = plain_batch(rng)
        restart_ids(monkeypatch)
        fast = prepare_plain(batch, MAX_BYTES, NOW)
        restart_ids(monkeypatch)
        slow = one_by_one(batch)
        if fast is not None:
            taken += 1
            assert not isinstance(slow, ValidationError), f"plain path took a batch the other refuses: {slow}"
            assert fast == slow
        elif usual:
            pytest.fail(f"plain path declined a usual batch: {batch!r}")
    assert taken > 600


def test_the_size_limit_is_the_same_on_the_plain_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def event(pad: int) -> dict[str, Any]:
        return {"stream-name": "orders", "event-type": "Created", "payload": {"p": "x" * pad}}

    outcomes = set()
    for pad in range(MAX_BYTES - 120, MAX_BYTES):
        batch = [event(1), event(pad)]
        size = len(prepare_event(event(pad), 1 << 20, False, NOW, lambda: "gen-2").body) + 1
        restart_ids(monkeypatch)
        fast = prepare_plain(batch, MAX_BYTES, NOW)
        restart_ids(monkeypatch)
        slow = one_by_one(batch)
        assert (fast is not None) == (not isinstance(slow, ValidationError)) == (size <= MAX_BYTES)
        outcomes.add(size - MAX_BYTES)
    assert {-1, 0, 1} <= outcomes


@pytest.mark.parametrize(("field", "value"), SPOILERS, ids=[f"{f}={v!r}"[:40] for f, v in SPOILERS])
def test_a_bad_event_in_a_short_batch_is_named_and_nothing_is_stored(store: EventStore, field: str, value: Any) -> None:
    if field == "payload" and isinstance(value, dict) and "big" in value:
        value = {"big": "y" * (store.max_event_bytes + 1)}
    batch = [{"stream-name": "orders", "event-type": "Created", "payload": {"n": i}} for i in range(4)]
    store.append(batch)
    batch[2][field] = value
    with pytest.raises(ValidationError, match=r"^event 2: ") as error:
        store.append(batch)
    assert error.value.field == field
    assert error.value.index == 2
    assert store.last_order_id() == len(batch)


def test_the_plain_path_makes_no_ids_for_a_batch_it_leaves_to_the_other(monkeypatch: pytest.MonkeyPatch) -> None:
    # Events with a fourth field are the usual ones of many writers: ids made here would be
    # made again by the event-by-event path.
    made: list[int] = []
    monkeypatch.setattr(events_module, "new_event_ids", lambda n: made.append(n) or [f"gen-{i}" for i in range(n)])
    fourth = [{"stream-name": "orders", "event-type": "Created", "payload": {}, "service-id": "billing"}] * 3
    assert prepare_plain(fourth, MAX_BYTES, NOW) is None
    assert prepare_plain([{"stream-name": "orders"}, 7], MAX_BYTES, NOW) is None
    assert made == []
    assert prepare_plain([{"stream-name": "o", "event-type": "t", "payload": {}}], MAX_BYTES, NOW)
    assert made == [1]


@pytest.mark.parametrize(("field", "value"), SPOILERS, ids=[f"{f}={v!r}"[:40] for f, v in SPOILERS])
def test_a_single_event_is_refused_as_event_by_event_validation_refuses_it(
    store: EventStore, field: str, value: Any
) -> None:
    # One event goes straight to prepare_event: the same refusal, with no index in its message.
    if field == "payload" and isinstance(value, dict) and "big" in value:
        value = {"big": "y" * (store.max_event_bytes + 1)}
    event: dict[str, Any] = {"stream-name": "orders", "event-type": "Created", "payload": {"n": 1}, field: value}
    with pytest.raises(ValidationError) as expected:
        prepare_event(event, store.max_event_bytes, False, NOW, lambda: "0" * 36)  # an id of the store's length
    with pytest.raises(ValidationError) as error:
        store.append(event)
    assert (type(error.value), str(error.value), error.value.field) == (
        type(expected.value),
        str(expected.value),
        expected.value.field,
    )
    assert store.last_order_id() == 0


@pytest.mark.parametrize(
    "extra",
    [{}, {"service-id": "billing"}, {"id": "mine"}, {"event-time": 5}, {"schema": 2, "tags": ["a"]}],
)
def test_a_single_event_is_stored_as_a_batch_of_it_would_be(store: EventStore, extra: dict[str, Any]) -> None:
    event = {"stream-name": "orders", "event-type": "Created", "payload": {"n": "ü"}, **extra}
    alone = store.append(event)[0].to_dict()
    other = {**event, "stream-name": "other"} | ({"id": "theirs"} if "id" in extra else {})
    in_batch = store.append([event, other])[0].to_dict()
    if "id" in extra:  # the retry of a stored id is answered with the stored event
        assert in_batch == alone
        return
    for stored in (alone, in_batch):
        assert stored.pop("id")  # (the batch path draws from this module's counter)
        if "event-time" not in extra:
            assert abs(stored.pop("event-time") - time.time() * 1000) < 60_000
    assert alone.pop("order-id") == 1 and in_batch.pop("order-id") == 2
    assert alone.pop("stream-version") == 1 and in_batch.pop("stream-version") == 2
    assert list(alone.items()) == list(in_batch.items())  # the same fields, in the same order


def test_a_single_event_with_both_kinds_of_expected_version_is_refused(store: EventStore) -> None:
    event = {"stream-name": "orders", "event-type": "Created", "payload": {}}
    with pytest.raises(ValidationError, match="not both"):
        store.append(event, expected_version=0, expected_versions={"orders": 0})
    assert store.append(event, expected_version="no-stream")[0].stream_version == 1
