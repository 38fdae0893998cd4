"""Where projections run: cheap ones are packed onto fewer workers and heavy ones spread, by
their measured cost (`photon.projections.balance`); a moved projection folds every event once,
in order, whichever worker it is on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from photon.core.store import EventStore
from photon.projections import ProjectionManager, balance
from photon.projections.balance import Window, plan
from photon.projections.definition import spec_from_template
from photon.projections.messages import Report
from photon.projections.registry import STREAMS_PROJECTION

from .projection_helpers import caught_up, direct_fold, events, make_config, running

ORDER = {
    "projection-name": "order",
    "initial-value": [],
    "reduction": "def reduction(state, event):\n    return state + [event['order-id']]\n",
}


def counting(name: str, language: str = "python") -> dict[str, Any]:
    if language == "hy":
        reduction = '(defn reduction [state event] (+ state (.get (get event "payload") "n" 0)))'
    else:
        reduction = "def reduction(state, event):\n    return state + event['payload'].get('n', 0)\n"
    return {"projection-name": name, "language": language, "initial-value": 0, "reduction": reduction}


def window(
    where: dict[int, int],
    fold_us: dict[int, float],
    cpu_us: dict[int, float],
    *,
    events: int = 100_000,
    seconds: float = 1.0,
    workers: tuple[int, ...] = (0, 1),
    pinned: frozenset[int] = frozenset(),
) -> Window:
    """A window of `events` over `seconds`, with each projection's folding and each worker's CPU
    given in µs per event."""
    return Window(
        seconds=seconds,
        events=events,
        cpu={index: us * events / 1e6 for index, us in cpu_us.items()},
        cpu_seconds=dict.fromkeys(cpu_us, seconds),
        fold={slot: us * events / 1e6 for slot, us in fold_us.items()},
        where=where,
        pinned=pinned,
        workers=workers,
    )


# -- the rules, on measured windows ------------------------------------------------------------


def test_cheap_projections_of_idle_workers_are_packed_onto_one() -> None:
    # 100k events/s; each worker 2.5 µs an event (a quarter of a core), of which folding 0.1 each.
    w = window({1: 0, 2: 0, 3: 1, 4: 1}, dict.fromkeys((1, 2, 3, 4), 0.1), {0: 2.5, 1: 2.5})
    assert plan(w) == {3: 0, 4: 0}


def test_cheap_projections_stay_spread_when_one_worker_would_be_busy() -> None:
    # 300k events/s: all on one worker would take 0.3 s * (2.3 + 0.4) ... = 0.81 of a core.
    w = window({1: 0, 2: 0, 3: 1, 4: 1}, dict.fromkeys((1, 2, 3, 4), 0.1), {0: 2.5, 1: 2.5}, events=300_000)
    assert plan(w) == {}


def test_heavy_projections_of_a_busy_worker_are_spread_over_an_idle_one() -> None:
    # One worker folds 4 heavy projections at 24 µs an event each, busy all the window.
    w = window({1: 0, 2: 0, 3: 0, 4: 0}, dict.fromkeys((1, 2, 3, 4), 24.0), {0: 100.0}, events=10_000)
    moves = plan(w)
    assert len(moves) == 2 and set(moves.values()) == {1}


def test_cheap_projections_of_a_busy_worker_stay_together() -> None:
    # Busy, but decoding is most of it: a second worker would decode every event again for
    # 0.2 µs of folding taken off.
    w = window({1: 0, 2: 0}, {1: 0.2, 2: 0.2}, {0: 9.0}, events=100_000)
    assert plan(w) == {}


def test_spread_heavy_projections_do_not_move_without_a_fifth_to_gain() -> None:
    w = window({1: 0, 2: 0, 3: 1, 4: 1}, {1: 20.0, 2: 22.0, 3: 21.0, 4: 20.0}, {0: 44.0, 1: 43.0}, events=20_000)
    assert plan(w) == {}


def test_uneven_heavy_projections_are_evened_out() -> None:
    w = window({1: 0, 2: 0, 3: 0, 4: 1}, {1: 20.0, 2: 20.0, 3: 20.0, 4: 20.0}, {0: 62.0, 1: 22.0}, events=15_000)
    moves = plan(w)
    assert len(moves) == 1 and next(iter(moves.values())) == 1


def test_a_projection_with_a_large_state_is_not_moved_the_others_join_it() -> None:
    w = window({1: 1, 2: 0, 3: 0}, dict.fromkeys((1, 2, 3), 0.1), {0: 2.5, 1: 2.5}, pinned=frozenset({1}))
    assert plan(w) == {2: 1, 3: 1}


def test_a_worker_without_a_cpu_reading_in_the_window_moves_nothing() -> None:
    w = window({1: 0, 2: 1}, {1: 0.1, 2: 0.1}, {0: 2.5})
    assert plan(w) == {}


# -- a running pool ----------------------------------------------------------------------------


def test_cheap_live_projections_end_on_one_worker_and_fold_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(balance, "MIN_EVENTS", 2_000)
    monkeypatch.setattr(balance, "MIN_SECONDS", 0.3)
    config = make_config(tmp_path, "sqlite", parallel_projections=2)
    store = EventStore.open(config)
    templates = [counting(f"count-{i}", "hy" if i % 2 else "python") for i in range(4)]

    async def scenario() -> None:
        async with running(store, config) as manager:
            for template in templates:
                await manager.create(template)
            await caught_up(manager)
            assert len({p.worker for p in manager.projections.values()}) == 2  # spread by count at first
            appended = 0
            while appended < 60_000 and not (
                manager.balancer.moves and len({p.worker for p in manager.projections.values()}) == 1
            ):
                await asyncio.to_thread(store.append, events(f"s-{appended % 7}", 250, start=appended))
                appended += 250
                await asyncio.sleep(0.002)
            await caught_up(manager)
            assert manager.balancer.moves >= 1
            assert len({p.worker for p in manager.projections.values()}) == 1
            for template in templates:
                name = template["projection-name"]
                assert manager.value(name) == direct_fold(store, manager.projections[name].spec.to_payload())
            assert all(p.status == "running" for p in manager.projections.values())

    try:
        asyncio.run(scenario())
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
def test_projections_moved_back_and_forth_while_events_arrive_fold_each_once_in_order(
    tmp_path: Path, backend: str
) -> None:
    # sqlite: the new worker reads what it missed from the store; memory: the manager sends it.
    config = make_config(tmp_path, backend, parallel_projections=2, projections_balance="false")
    store = EventStore.open(config)
    store.append(events("a", 100))
    templates = [ORDER, counting("count")]

    async def scenario() -> int:
        async with running(store, config) as manager:
            assert not any(task.get_name() == "projections-balance" for task in asyncio.all_tasks())
            for template in templates:
                await manager.create(template)
            await caught_up(manager)
            moved = 0
            for round_ in range(60):
                store.append(events("a" if round_ % 2 else "b", 1 + round_ % 5 * 20, start=round_ * 100))
                if round_ % 3 == 0:
                    moves = {}
                    for projection in manager.projections.values():
                        if projection.name != STREAMS_PROJECTION and projection.worker is not None:
                            moves[projection.slot] = 1 - projection.worker.index
                    await manager.balancer.move(moves)
                    moved += len(moves)
                await asyncio.sleep(0.005)
            await caught_up(manager)
            order = manager.value("order")
            ids = [e.order_id for e in store.read()]
            assert order == [i for i in ids if i >= order[0]]  # every order-id once, in order
            assert order[-1] == store.last_order_id()
            assert manager.value("count") == direct_fold(store, manager.projections["count"].spec.to_payload())
            return moved

    try:
        assert asyncio.run(scenario()) == 40
    finally:
        store.close()


def test_a_report_from_the_worker_a_projection_moved_away_from_is_not_applied(tmp_path: Path) -> None:
    # The old worker may answer a batch it was sent before the move after the new worker's first
    # report: applied, it would set the projection back to an older state and position.
    config = make_config(tmp_path, "memory", parallel_projections=2)
    store = EventStore.open(config)
    try:
        manager = ProjectionManager(store, config)
        projection = manager.registry.add(spec_from_template(counting("count")))
        old, new = object(), object()
        projection.worker = new  # type: ignore[assignment]
        manager._apply_reports(new, [Report(projection.slot, 10, 10, 10, b"55", 0, 10)])  # type: ignore[arg-type]
        manager._apply_reports(old, [Report(projection.slot, 7, 7, 7, b"28", 0, 7)])  # type: ignore[arg-type]
        assert (projection.position, projection.state_json) == (10, b"55")
    finally:
        store.close()
