"""A writer paused past its lease and taken over, on a real Cassandra server: its late rows lose.

The pause is made deterministic: the stale writer's lease thread is stopped (as the whole process
is when it is stopped), and the writer is held at the moment it is about to send its rows (or
its deletions) until another writer has taken the store over and committed. Then it goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pytest

from photon.core.append_request import QueryItem
from photon.core.backend import Query
from photon.core.errors import BackendUnavailable, StoreLocked
from photon.core.events import RecordedEvent
from photon.core.store import EventStore
from photon.testing.appends import tagged

from .test_backend_cassandra import cassandra_config  # noqa: F401  (the fixture)

pytestmark = pytest.mark.cassandra

LEASE = {"cassandra.lease.ms": "1000"}
KEPT_PARTS = "SELECT part FROM key_index_parts WHERE kind = 'c' AND key = 'kept'"
REFUSED = (StoreLocked, BackendUnavailable)
"""What the stale append gets: the backend's refusal, or the store's (it saw the head move on),
both naming the takeover."""


def _open_when_free(config: dict[str, Any]) -> EventStore:
    """Open the store for writing as soon as the stale writer's lease has expired (within a minute:
    each try opens a Cassandra session, seconds apiece on a loaded machine)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return EventStore.open(config)
        except StoreLocked:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _paused_before(backend: Any, sending: Callable[[Sequence[Any]], bool], meanwhile: Callable[[], None]) -> None:
    """Hold `backend` when it is about to send statements that `sending` picks out: its lease
    thread is stopped first (a stopped process renews nothing), and `meanwhile` runs while it waits."""
    backend._lease.stop()
    send = backend._concurrent
    done: list[bool] = []

    def held(items: Iterable[tuple[Any, Sequence[Any]]]) -> list[list[Any]]:
        items = list(items)
        if not done and sending(items):
            done.append(True)
            meanwhile()
        return list(send(items))

    backend._concurrent = held


def _rows_of_an_append(items: Sequence[Any]) -> bool:
    from cassandra.query import BatchStatement

    return any(isinstance(statement, BatchStatement) for statement, _ in items)


def _deletions(items: Sequence[Any]) -> bool:
    return any(str(getattr(statement, "query_string", "")).startswith("DELETE") for statement, _ in items)


def _committed(store: EventStore, events: list[dict[str, Any]]) -> list[RecordedEvent]:
    return list(store.append(events))


@pytest.fixture
def config(cassandra_config: dict[str, Any]) -> Iterator[dict[str, Any]]:  # noqa: F811
    yield dict(cassandra_config, **LEASE)


def _check_reads(config: dict[str, Any], acknowledged: list[RecordedEvent], stale_streams: set[str]) -> None:
    """Every acknowledged event reads back intact through every read path, and nothing of the
    stale writer's batch is visible."""
    with EventStore.open(config, read_only=True) as reader:
        backend: Any = reader.backend
        assert backend.read(Query()) == acknowledged
        for stream in {e.stream_name for e in acknowledged}:
            assert list(reader.read(stream)) == [e for e in acknowledged if e.stream_name == stream]
        for category in {e.stream_name.split("-")[0] for e in acknowledged} | {"stale"}:
            assert backend.read(Query(categories=frozenset({category}))) == [
                e for e in acknowledged if e.stream_name.split("-")[0] == category
            ]
        for event_type in {e.event_type for e in acknowledged} | {"Stale"}:
            assert backend.read(Query(event_types=frozenset({event_type}))) == [
                e for e in acknowledged if e.event_type == event_type
            ]
        for tag in ("kept", "stale"):
            assert backend.read_matching((QueryItem(tags=frozenset({tag})),), 0, 100) == [
                e for e in acknowledged if f'"{tag}"' in e.data.decode()
            ]
        for event in acknowledged:
            assert reader.get_event(event.event_id) == event
        for stream in stale_streams:
            assert reader.stream_version(stream) == 0
            assert list(reader.read(stream)) == []


def test_a_writer_paused_past_its_lease_cannot_overwrite_the_events_of_the_writer_that_took_over(
    config: dict[str, Any],
) -> None:
    """Writer A is held just before sending its batch's rows, past its lease; writer B takes the
    store over and commits events at the same order-ids; A's rows then arrive. A's append is
    refused, and every event B acknowledged reads back as B wrote it."""
    stale = EventStore.open(config)
    acknowledged: list[RecordedEvent] = []
    try:
        acknowledged += _committed(stale, [tagged("kept-1", "Kept", "kept")])

        def take_over() -> None:
            with _open_when_free(config) as taker:
                acknowledged.extend(
                    _committed(
                        taker,
                        [tagged("kept-1", "Kept", "kept", n=2)]
                        + [tagged(f"kept-{n}", "Kept", "kept", n=n) for n in range(2, 5)],
                    )
                )

        _paused_before(stale.backend, _rows_of_an_append, take_over)
        with pytest.raises(REFUSED, match="another writer took the store over"):
            stale.append([tagged(f"stale-{n}", "Stale", "stale", n=n) for n in range(4)])
    finally:
        stale.close()
    assert [e.order_id for e in acknowledged] == [1, 2, 3, 4, 5]
    _check_reads(config, acknowledged, {f"stale-{n}" for n in range(4)})


def test_rows_a_stale_writer_leaves_beyond_the_head_stay_invisible_and_the_next_writer_overwrites_them(
    config: dict[str, Any],
) -> None:
    """A's batch is longer than what B commits while A is held: A's rows above B's head are never
    read, and B's next append at those order-ids replaces them."""
    stale = EventStore.open(config)
    acknowledged: list[RecordedEvent] = []
    try:

        def take_over() -> None:
            with _open_when_free(config) as taker:
                acknowledged.extend(_committed(taker, [tagged("kept-1", "Kept", "kept")]))

        _paused_before(stale.backend, _rows_of_an_append, take_over)
        with pytest.raises(REFUSED, match="another writer took the store over"):
            stale.append([tagged(f"stale-{n}", "Stale", "stale", n=n) for n in range(6)])
    finally:
        stale.close()
    assert [e.order_id for e in acknowledged] == [1]
    _check_reads(config, acknowledged, {f"stale-{n}" for n in range(6)})
    with EventStore.open(config) as store:
        acknowledged += _committed(store, [tagged(f"kept-{n}", "Kept", "kept", n=n) for n in range(2, 5)])
        acknowledged += _committed(store, [tagged("other-1", "Other", "kept")])
    assert [e.order_id for e in acknowledged] == [1, 2, 3, 4, 5]
    _check_reads(config, acknowledged, {f"stale-{n}" for n in range(6)})


def test_a_deletion_by_a_writer_paused_past_its_lease_leaves_the_new_writers_events(config: dict[str, Any]) -> None:
    """A deletes a stream but is held just before its deletions go out; B appends to that stream
    meanwhile. A's deletions then remove only what was there before B's epoch."""
    stale = EventStore.open(config)
    acknowledged: list[RecordedEvent] = []
    try:
        (first,) = _committed(stale, [tagged("kept-1", "Kept", "kept")])

        def take_over() -> None:
            with _open_when_free(config) as taker:
                acknowledged.extend(_committed(taker, [tagged("kept-1", "Kept", "kept", n=2)]))

        _paused_before(stale.backend, _deletions, take_over)
        stale.backend.delete_stream("kept-1")
    finally:
        stale.close()
    assert [(e.order_id, e.stream_version) for e in acknowledged] == [(2, 2)]
    _check_reads(config, acknowledged, set())
    with EventStore.open(config, read_only=True) as reader:
        assert reader.get_event(first.event_id) is None
        assert reader.stream_version("kept-1") == 2


def test_write_stamps_rise_strictly_from_the_floor_and_stop_at_the_ceiling() -> None:
    from photon_backends._write_stamps import WriteStamps

    stamps = WriteStamps()
    assert stamps.next(100) is None  # nothing claimed: no timestamp at all
    stamps.claimed(floor=1_000, ceiling=1_003)
    assert [stamps.next(5), stamps.next(5), stamps.next(2_000)] == [1_000, 1_001, None]
    assert stamps.next(1_001) == 1_002  # a clock that went back: still rising
    assert stamps.next(0) is None
    stamps.raised(2_000)
    assert stamps.next(1_500) == 1_500


def _writetimes(backend: Any) -> dict[int, int]:
    rows = backend._session.execute("SELECT order_id, WRITETIME(data) AS at FROM events_all WHERE bucket = 0")
    return {int(r.order_id): int(r.at) for r in rows}


def test_each_writer_stamps_above_the_ceiling_the_one_before_left_and_raises_its_own(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer's rows carry timestamps below the ceiling the head names; the next writer's begin
    at that ceiling. A writer raises its ceiling as its clock reaches it, and one that lost the
    head cannot: it gets StoreLocked before it writes anything."""
    from photon_backends import _write_stamps

    monkeypatch.setattr(_write_stamps, "SPAN", 300_000)  # 0.3 s: raised within the test
    with EventStore.open(config) as store:
        backend: Any = store.backend
        store.append([tagged("kept-1", "Kept")])
        first_ceiling = int(backend._head_row(serial=True).stamp)
        time.sleep(0.4)
        store.append([tagged("kept-1", "Kept")])
        raised = int(backend._head_row(serial=True).stamp)
        assert raised > first_ceiling
        at = _writetimes(backend)
        assert at[1] < first_ceiling <= at[2] < raised
    with EventStore.open(config) as store:
        backend = store.backend
        assert int(backend._head_row(serial=True).stamp) > raised
        store.append([tagged("kept-1", "Kept")])
        assert _writetimes(backend)[3] >= raised > _writetimes(backend)[2]
        # Another writer takes the head (as the version before does: it leaves the ceiling).
        head = backend._head_row(serial=True)
        backend._session.execute(
            backend._ps["claim_head"], ("theirs", head.epoch + 1, "store", backend._token, head.last_order_id)
        )
        time.sleep(0.4)
        with pytest.raises(StoreLocked, match="another writer took the store over"):
            backend._stamp()


def test_a_part_a_stale_writer_begins_late_does_not_hide_the_new_writers_rows(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A's held batch fills its key's part (4 rows here) and begins the next one at order-id 5;
    that part row arrives after B's head passed 5, while B goes on writing the key's rows into
    the part before it. B's epoch proves the late part left over: readers pass it over, so B's
    rows of the key stay readable, and the next writer removes it."""
    from photon_backends import cassandra

    monkeypatch.setattr(cassandra, "PART_ENTRIES", 4)
    stale = EventStore.open(config)
    acknowledged: list[RecordedEvent] = []
    taker: list[EventStore] = []
    try:
        acknowledged += _committed(stale, [tagged("kept-1", "Kept", "kept")])

        def take_over() -> None:
            taker.append(_open_when_free(config))
            acknowledged.extend(_committed(taker[0], [tagged("kept-1", "Kept", "kept", n=2)]))
            acknowledged.extend(_committed(taker[0], [tagged(f"other-{n}", "Other", n=n) for n in range(4)]))

        _paused_before(stale.backend, _rows_of_an_append, take_over)
        with pytest.raises(REFUSED, match="another writer took the store over"):
            stale.append([tagged("kept-9", "Kept", "kept", n=n) for n in range(5)])
        session: Any = taker[0].backend._session  # type: ignore[attr-defined]
        assert {r.part for r in session.execute(KEPT_PARTS)} == {1, 5}
        # B writes on in the part it knows, the one before the late part.
        acknowledged += _committed(taker[0], [tagged("kept-1", "Kept", "kept", n=3)])
        _check_reads(config, acknowledged, {"kept-9"})
    finally:
        stale.close()
        for store in taker:
            store.close()
    with EventStore.open(config) as store:
        acknowledged += _committed(store, [tagged("kept-1", "Kept", "kept", n=4)])
        session = store.backend._session  # type: ignore[attr-defined]
        assert {r.part for r in session.execute(KEPT_PARTS)} == {1}
    assert [e.order_id for e in acknowledged] == [1, 2, 3, 4, 5, 6, 7, 8]
    _check_reads(config, acknowledged, {"kept-9"})


def test_a_part_is_left_over_only_where_a_later_claimed_epoch_began_below_it() -> None:
    from photon_backends._writer_epochs import Epoch, WriterEpochs

    epochs = WriterEpochs()
    epochs.load([Epoch(1, 0, "a"), Epoch(2, 10, "b"), Epoch(3, 10, ""), Epoch(4, 30, "c")])
    assert not epochs.left_over(10, 1) and epochs.left_over(11, 1)  # b claimed at head 10
    assert not epochs.left_over(30, 2) and epochs.left_over(31, 2)  # the marker (3) proves nothing: c's start
    assert not epochs.left_over(10**6, 4)  # the newest epoch
    assert not epochs.left_over(10**6, None) and not epochs.left_over(10**6, 7)  # no epoch, or unknown
