"""One stream out and in: export as JSON lines, import as a new stream (renamed when taken)."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from photon.core.errors import InternalStreamError, NotFound, ValidationError
from photon.core.store import EventStore
from photon.ops.transfer import PAGE, export_stream, import_stream


@pytest.fixture
def store() -> Iterator[EventStore]:
    with EventStore.open(db_backend="memory") as store:
        store.append([{"stream-name": "orders", "event-type": "Placed", "payload": {"n": n}} for n in range(12)])
        store.append({"stream-name": "other", "event-type": "x", "payload": {}})
        store.append(
            {
                "stream-name": "orders",
                "event-type": "Paid",
                "payload": {"n": 12},
                "service-id": "till",
                "caused-by": "abc",
                "caused-by-relation": "reply",
                "schema": "v2",
                "event-time": 1234,
            }
        )
        yield store


def export(store: EventStore, name: str) -> bytes:
    return b"".join(export_stream(store, name))


def test_export_is_the_streams_stored_json_lines(store: EventStore) -> None:
    data = export(store, "orders")
    assert data == b"".join(e.data + b"\n" for e in store.read("orders"))
    assert data.count(b"\n") == 13


def test_export_of_a_missing_stream_is_not_found(store: EventStore) -> None:
    with pytest.raises(NotFound, match="stream 'nope' does not exist"):
        export_stream(store, "nope")


def test_export_pages_through_long_streams() -> None:
    with EventStore.open(db_backend="memory") as store:
        for _ in range(3):
            store.append([{"stream-name": "long", "event-type": "x", "payload": {}}] * 4000)
        chunks = list(export_stream(store, "long"))
        # Pages of at most PAGE events (the first ones small, until the events' size is known).
        sizes = [chunk.count(b"\n") for chunk in chunks]
        assert len(sizes) > 3 and max(sizes) == PAGE
        assert sum(sizes) == 12_000
        versions = [orjson.loads(line)["stream-version"] for chunk in chunks for line in chunk.splitlines()]
        assert versions == list(range(1, 12_001))


def test_import_into_another_store_keeps_content_with_new_positions(store: EventStore) -> None:
    data = export(store, "orders")
    originals = [e.to_dict() for e in store.read("orders")]
    with EventStore.open(db_backend="memory") as other:
        other.append({"stream-name": "first", "event-type": "x", "payload": {}})
        assert import_stream(other, data.splitlines()) == ("orders", 13)
        imported = [e.to_dict() for e in other.read("orders")]
    assert [e["stream-version"] for e in imported] == list(range(1, 14))
    assert [e["order-id"] for e in imported] == list(range(2, 15))
    for old, new in zip(originals, imported, strict=True):
        assert new["id"] != old["id"]
        for field in ("event-type", "payload", "event-time", "stream-name"):
            assert new[field] == old[field]
    assert imported[-1]["service-id"] == "till" and imported[-1]["schema"] == "v2"
    assert imported[-1]["caused-by"] == "abc" and imported[-1]["caused-by-relation"] == "reply"


def test_a_taken_name_is_renamed_dash_0_then_dash_1(store: EventStore) -> None:
    data = export(store, "orders").splitlines()
    assert import_stream(store, data) == ("orders-0", 13)
    assert import_stream(store, data) == ("orders-1", 13)
    assert import_stream(store, data, name="fresh") == ("fresh", 13)
    assert import_stream(store, data, name="other") == ("other-0", 13)
    assert store.stream_version("orders") == 13
    assert [e.payload["n"] for e in store.read("orders-1")] == list(range(13))


def test_bad_lines_store_nothing(store: EventStore) -> None:
    lines = export(store, "orders").splitlines()
    before = store.last_order_id()
    broken = [*lines[:5], b"{not json", *lines[5:]]
    with pytest.raises(ValidationError, match="line 6: not valid JSON"):
        import_stream(store, broken)
    mixed = [*lines[:3], orjson.dumps({"stream-name": "else", "event-type": "x", "payload": {}})]
    with pytest.raises(ValidationError, match="line 4: an event of stream 'else' in a file of stream 'orders'"):
        import_stream(store, mixed)
    no_payload = [*lines[:2], orjson.dumps({"stream-name": "orders", "event-type": "x"})]
    with pytest.raises(ValidationError, match="line 3: missing required field 'payload'"):
        import_stream(store, no_payload)
    with pytest.raises(ValidationError, match="holds no events"):
        import_stream(store, [b"", b'{"caught-up": 3}'])
    with pytest.raises(InternalStreamError, match="line 1: stream '__config__' is internal"):
        import_stream(store, lines, name="__config__")
    assert store.last_order_id() == before
    assert store.stream_version("orders-0") == 0
