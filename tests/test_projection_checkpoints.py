"""One checkpoint format, read and written by one module: what the server's manager writes is what
`photon projections` on a store resumes from; and the worker messages stay cheap named tuples."""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path

import pytest

from photon.core.store import EventStore
from photon.projections import checkpoints, messages
from photon.projections.checkpoints import (
    LARGE_STATE,
    WRITE_SHARE,
    Checkpoint,
    Checkpointer,
    checkpoint_key,
    read_checkpoint,
    write_checkpoint,
)
from photon.projections.definition import spec_from_template
from photon.projections.offline import fold
from photon.projections.registry import Projection

from .projection_helpers import caught_up, direct_fold, events, make_config, running, wait_for

SUM = {
    "projection-name": "sum",
    "stream-name": "a",
    "initial-value": 0,
    "reduction": "def reduction(state, event):\n    return state + event['payload']['n']\n",
}


def test_the_servers_checkpoint_is_what_a_direct_read_resumes_from(tmp_path: Path) -> None:
    config = make_config(tmp_path, "sqlite")
    store = EventStore.open(config)
    store.append(events("a", 20))
    spec = spec_from_template(SUM)

    async def scenario() -> None:
        async with running(store, config) as manager:
            await manager.create(SUM)
            await caught_up(manager)

    asyncio.run(scenario())  # the stop writes the checkpoint
    head = store.last_order_id()  # the registration in __config__ came after the events of "a"
    last = max(e.order_id for e in store.read("a"))
    # The stored format, as the server has always written it.
    saved = store.read_checkpoint(checkpoint_key("sum"))
    assert saved == {"digest": spec.digest, "order-id": head, "last-event": last, "processed": 20, "state": 190}
    assert read_checkpoint(store, "sum", spec.digest) == Checkpoint(spec.digest, head, last, 20, 190)

    store.append(events("a", 2, start=100))
    folded = fold(store, spec)
    assert folded.resumed_from == head and folded.position == store.last_order_id()
    assert folded.value == direct_fold(store, spec.to_payload()) == 190 + 100 + 101

    # A checkpoint another definition made is not resumed from (but it is listed as it is).
    write_checkpoint(store, "sum", Checkpoint("0" * 64, head, last, 20, -1))
    assert read_checkpoint(store, "sum", spec.digest) is None
    assert read_checkpoint(store, "sum") == Checkpoint("0" * 64, head, last, 20, -1)
    assert fold(store, spec).resumed_from == 0
    assert fold(store, spec).value == 391
    store.close()


def test_worker_messages_are_named_tuples_that_pickle_as_small_as_plain_ones() -> None:
    datas = [b'{"order-id":%d}' % i for i in range(100)]
    report = messages.Report(3, 10, 9, 8, b"{}", 1234, 5)
    samples = [
        (messages.Fold(7, datas, 99), ("fold", 7, datas, 99)),
        (messages.Folded(7, [report], []), ("folded", 7, [tuple(report)], [])),
        (messages.Add(1, {"n": "p"}, b'{"x":1}', 5, 4, 3), ("add", 1, {"n": "p"}, b'{"x":1}', 5, 4, 3)),
    ]
    for message, plain in samples:
        assert isinstance(message, tuple)
        encoded = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        assert pickle.loads(encoded) == message and type(pickle.loads(encoded)) is type(message)
        # The class is named once per message (and per report): no field names, no per-object dict.
        assert len(encoded) <= len(pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL)) + 120


def _record(position: int, checkpointed_position: int, checkpointed_at: float, write_seconds: float) -> Projection:
    spec = spec_from_template({"projection-name": "n", "reduction": "(fn [s e] s)", "initial-value": 0})
    return Projection(
        spec,
        slot=1,
        position=position,
        checkpointed_position=checkpointed_position,
        checkpointed_at=checkpointed_at,
        checkpoint_seconds=write_seconds,
    )


def test_a_checkpoint_that_took_long_to_write_spaces_the_next_by_ten_times_as_long() -> None:
    """A state of an entry per stream takes seconds to write: while it catches up (past
    `every_events` at every look) it must not be written again and again beside its fold."""
    checkpointer = Checkpointer(store=None, every_events=10_000, every_seconds=5.0)  # type: ignore[arg-type]
    slow = _record(position=500_000, checkpointed_position=100_000, checkpointed_at=100.0, write_seconds=3.0)
    assert WRITE_SHARE == 10
    assert checkpointer.due([slow], now=129.0) == []  # 400k events on, but 29 s < 10 x 3 s
    assert checkpointer.due([slow], now=130.0) == [slow]
    quick = _record(position=20_000, checkpointed_position=5_000, checkpointed_at=100.0, write_seconds=0.002)
    assert checkpointer.due([quick], now=100.1) == [quick]  # a small state keeps the configured pace
    idle = _record(position=5_000, checkpointed_position=5_000, checkpointed_at=0.0, write_seconds=0.0)
    assert checkpointer.due([idle], now=1_000.0) == []  # nothing new to write


def test_a_write_records_how_long_it_took(tmp_path: Path) -> None:
    store = EventStore.open(make_config(tmp_path))
    try:
        checkpointer = Checkpointer(store, every_events=10_000, every_seconds=5.0)
        record = _record(position=7, checkpointed_position=-1, checkpointed_at=0.0, write_seconds=0.0)
        snapshot = checkpointer.snapshots([record])
        checkpointer.write(snapshot, lambda p: True)
        assert record.checkpointed_position == 7
        assert 0.0 < record.checkpoint_seconds < 60.0
        assert read_checkpoint(store, "n") is not None
    finally:
        store.close()


def test_a_stop_writes_a_large_state_only_when_it_folded_enough_since_its_last_checkpoint() -> None:
    checkpointer = Checkpointer(store=None, every_events=10_000, every_seconds=5.0)  # type: ignore[arg-type]

    def record(position: int, checkpointed: int, last_event: int, size: int) -> Projection:
        p = _record(position=position, checkpointed_position=checkpointed, checkpointed_at=0.0, write_seconds=9.0)
        p.last_event = last_event
        p.state_json = b"[" + b"1," * (size // 2) + b"1]"
        return p

    small = record(100_005, 100_000, 100_005, 1000)
    large = LARGE_STATE + 10
    behind_a_little = record(109_999, 100_000, 109_999, large)
    behind_a_lot = record(110_000, 100_000, 110_000, large)
    none_folded = record(500_000, 100_000, 99_999, large)
    never_checkpointed = record(5, -1, 5, large)
    everyone = [small, behind_a_little, behind_a_lot, none_folded, never_checkpointed]
    assert checkpointer.at_stop(everyone) == [small, behind_a_lot, never_checkpointed]


def test_a_large_state_a_few_events_past_its_checkpoint_is_not_written_at_stop_and_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "LARGE_STATE", 1000)
    config = make_config(tmp_path, "sqlite", projections_checkpoint_events=20)  # 5 events is few
    store = EventStore.open(config)
    listing = {
        "projection-name": "listing",
        "language": "python",
        "stream-name": "a",
        "initial-value": [],
        "reduction": "def reduction(state, event):\n    return state + [event['payload']['n']] * 10\n",
    }
    store.append(events("a", 50))

    def checkpointed() -> int:
        return int(store.read_checkpoint(checkpoint_key("listing"))["order-id"])

    async def first_run() -> int:
        async with running(store, config) as manager:
            await manager.create(listing)
            await caught_up(manager)
            await wait_for(lambda: manager.projections["listing"].checkpointed_position == store.last_order_id())
            at = checkpointed()
            await asyncio.to_thread(store.append, events("a", 5, start=50))
            await caught_up(manager)
            assert len(manager.projections["listing"].state_json) > 1000
        return at

    async def second_run() -> list[int]:
        async with running(store, config) as manager:
            await asyncio.wait_for(manager.loaded.wait(), 30)
            await caught_up(manager)
            assert manager.get("listing")["processed"] == 55
            value: list[int] = manager.value("listing")
            return value

    try:
        at = asyncio.run(first_run())
        assert checkpointed() == at < store.last_order_id()  # the stop left the checkpoint before the 5
        assert asyncio.run(second_run()) == direct_fold(store, spec_from_template(listing).to_payload())
    finally:
        store.close()


def test_a_large_state_not_yet_written_this_run_is_due_by_events_not_by_seconds() -> None:
    """Resumed from its checkpoint, a large state's write time is not known: a few events must not
    have it written seconds later, at every start."""
    checkpointer = Checkpointer(store=None, every_events=10_000, every_seconds=5.0)  # type: ignore[arg-type]
    large = b"[" + b"1," * (LARGE_STATE // 2) + b"1]"
    resumed = _record(position=100_100, checkpointed_position=100_000, checkpointed_at=0.0, write_seconds=0.0)
    resumed.state_json = large
    assert checkpointer.due([resumed], now=1_000.0) == []  # 100 events on, long after: not due
    resumed.position = 110_000
    assert checkpointer.due([resumed], now=1.0) == [resumed]  # `every_events` on: due
    timed = _record(position=100_100, checkpointed_position=100_000, checkpointed_at=0.0, write_seconds=3.0)
    timed.state_json = large
    assert checkpointer.due([timed], now=29.0) == [] and checkpointer.due([timed], now=30.0) == [timed]
    small = _record(position=100_100, checkpointed_position=100_000, checkpointed_at=0.0, write_seconds=0.0)
    assert checkpointer.due([small], now=5.0) == [small]  # a small one keeps the configured pace
