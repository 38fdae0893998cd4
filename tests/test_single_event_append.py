"""An append of one event without options takes a short path (`EventStore.append`): the same
checks, errors and answers as the same event appended as a batch of one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from photon.core.errors import PhotonError, ReadOnlyStore, ValidationError
from photon.core.store import EventStore

GOOD = {"stream-name": "acct-1", "event-type": "Deposited", "payload": {"amount": 5}, "service-id": "svc"}
BAD: list[Any] = [
    {"stream-name": "acct-1", "event-type": "Deposited"},
    {"stream-name": "", "event-type": "Deposited", "payload": {}},
    {"stream-name": "__all__", "event-type": "Deposited", "payload": {}},
    {"stream-name": "acct-1", "event-type": 5, "payload": {}},
    {"stream-name": "acct-1", "event-type": "Deposited", "payload": []},
    {"stream-name": "acct-1", "event-type": "Deposited", "payload": {}, "id": ""},
    {"stream-name": "acct-1", "event-type": "Deposited", "payload": {}, "event-time": -1},
    {"stream-name": "acct-1", "event-type": "Deposited", "payload": {}, "tags": "x"},
    {"stream-name": "acct-1", "event-type": "Deposited", "payload": {}, "colour": "red"},
    {"stream-name": "acct-1", "event-type": "Deposited", "payload": {"x": object()}},
    {"stream-name": "acct-1", "event-type": "Deposited", "payload": {"x": "y" * 2000}},
]


def error_of(store: EventStore, events: Any) -> tuple[type[BaseException], str, str | None]:
    with pytest.raises(PhotonError) as caught:
        store.append(events)
    return type(caught.value), str(caught.value), getattr(caught.value, "field", None)


@pytest.mark.parametrize("event", BAD)
def test_one_event_is_refused_as_a_batch_of_one_is(event: dict[str, Any]) -> None:
    with EventStore.open({"db.backend": "memory", "payload.max.bytes": "1000"}) as store:
        assert error_of(store, event) == error_of(store, [event])
        assert store.last_order_id() == 0


def test_one_event_is_stored_as_a_batch_of_one_is() -> None:
    with EventStore.open({"db.backend": "memory"}) as store:
        event = dict(GOOD)
        (one,) = store.append(event)
        assert event == GOOD  # the caller's mapping is left as it was
        (other,) = store.append([dict(GOOD)])
        assert (one.order_id, one.stream_version, other.order_id, other.stream_version) == (1, 1, 2, 2)
        assert one.event_id != other.event_id and len(one.event_id) == 36
        assert one.event_type == other.event_type and one.payload == other.payload == {"amount": 5}
        chosen = store.append({**GOOD, "id": "mine", "event-time": 7})
        assert (chosen[0].event_id, chosen[0].event_time) == ("mine", 7)
        assert store.append({**GOOD, "id": "mine", "event-time": 7}) == chosen  # a retry: what is stored


def test_one_event_to_a_read_only_store_is_refused(tmp_path: Path) -> None:
    config = {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "s.db")}
    with EventStore.open(config) as store:
        store.append(dict(GOOD))
    with EventStore.open(config, read_only=True) as store:
        with pytest.raises(ReadOnlyStore):
            store.append(dict(GOOD))
        with pytest.raises(ReadOnlyStore):
            store.append({"stream-name": "acct-1"})  # refused for the store before the event is read


def test_one_event_with_options_takes_the_options_path() -> None:
    with EventStore.open({"db.backend": "memory"}) as store:
        store.append(dict(GOOD), expected_version="no-stream")
        with pytest.raises(PhotonError):
            store.append(dict(GOOD), expected_version="no-stream")
        with pytest.raises(ValidationError):
            store.append(dict(GOOD), expected_version=1, expected_versions={"acct-1": 1})
