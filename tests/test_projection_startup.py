"""The pool's start: workers behind on the same source share one read of the store (the manager
reads each page once and sends it to each of them); the projections fold every event once, in
order, a failing one alone fails, and live events appended meanwhile come after the history."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from photon.core.errors import BackendError
from photon.core.store import EventStore
from photon.projections import feed as feed_module
from photon.projections import spool
from photon.projections.checkpoints import checkpoint_key
from photon.projections.messages import History, ToWorker
from photon.projections.pool import WorkerHandle

from .projection_helpers import caught_up, direct_fold, events, make_config, running

ORDER = {
    "projection-name": "order",
    "initial-value": [],
    "reduction": "def reduction(state, event):\n    return state + [event['order-id']]\n",
}
SUM = {
    "projection-name": "sum",
    "initial-value": 0,
    "reduction": "def reduction(state, event):\n    return state + event['payload'].get('n', 0)\n",
}
BREAKS = {
    "projection-name": "breaks",
    "initial-value": 0,
    "reduction": (
        "def reduction(state, event):\n"
        "    if event['payload'].get('n') == 777 and event['stream-name'] == 'a':\n"
        "        raise ValueError('seven hundred seventy-seven')\n"
        "    return state + 1\n"
    ),
}
SUM_B = {**SUM, "projection-name": "sum-b", "stream-name": "b"}


def _registered(store: EventStore, config: Any, templates: list[dict[str, Any]]) -> None:
    """Register `templates`, then drop their checkpoints: the next start folds them from the start."""

    async def register() -> None:
        async with running(store, config) as manager:
            for template in templates:
                await manager.create(template)
            await caught_up(manager)

    asyncio.run(register())
    for template in templates:
        store.write_checkpoint(checkpoint_key(template["projection-name"]), None)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """(worker index, message type) of every message sent to a worker."""
    record: list[tuple[int, str]] = []
    original = WorkerHandle.send

    def recording(self: WorkerHandle, message: ToWorker) -> None:
        kind = type(message).__name__
        if isinstance(message, History) and isinstance(message.page, str):
            kind = "History in a memory file"
        record.append((self.index, kind))
        original(self, message)

    monkeypatch.setattr(WorkerHandle, "send", recording)
    return record


@pytest.mark.parametrize("in_memory_files", [True, False], ids=["memory-files", "pipes"])
def test_workers_on_the_same_source_share_one_read_in_exact_order(
    tmp_path: Path, sent: list[tuple[int, str]], monkeypatch: pytest.MonkeyPatch, in_memory_files: bool
) -> None:
    if in_memory_files and not spool.available():
        pytest.skip("no memory files here (not Linux)")
    monkeypatch.setattr(spool, "available", lambda: in_memory_files)
    config = make_config(tmp_path, "sqlite", parallel_projections=2)
    store = EventStore.open(config)
    for start in range(0, 12_000, 3_000):  # two streams, interleaved
        store.append(events("a", 2_000, start=start))
        store.append(events("b", 1_000, start=start))
    templates = [ORDER, SUM, BREAKS]
    _registered(store, config, templates)
    sent.clear()

    async def scenario() -> None:
        async with running(store, config) as manager:
            on = {name: manager.projections[name].worker for name in ("order", "sum", "breaks")}
            assert len({w.index for w in on.values() if w is not None}) == 2  # both workers are behind
            # Live events appended while the history is being sent come after it, once each.
            for round_ in range(5):
                store.append(events("a", 300, start=20_000 + round_ * 300))
                await asyncio.sleep(0.01)
            await caught_up(manager)
            all_ids = [e.order_id for e in store.read()]
            assert manager.value("order") == all_ids
            assert manager.value("sum") == direct_fold(store, manager.projections["sum"].spec.to_payload())
            breaks = manager.get("breaks")
            assert breaks["status"] == "failed" and "seven hundred seventy-seven" in breaks["last-error"]
            failed_at = breaks["failed-at"]
            assert failed_at == next(e.order_id for e in store.read("a") if e.data and b'"n":777' in e.data)
            assert breaks["current-value"] == failed_at - 1  # every event before it, once
            assert manager.get("order")["status"] == manager.get("sum")["status"] == "running"

    try:
        asyncio.run(scenario())
    finally:
        store.close()
    # Read once by the manager, not by each worker: no worker read the store itself before its
    # history ended (a worker that the live feed found busy may read what it missed afterwards).
    paged = {kind for _, kind in sent if kind.startswith("History ")}
    assert paged == ({"History in a memory file"} if in_memory_files else set())
    for index in (0, 1):
        kinds = ["History" if kind.startswith("History") else kind for i, kind in sent if i == index]
        assert "History" in kinds
        last_history = len(kinds) - 1 - kinds[::-1].index("History")
        assert "CatchUp" not in kinds[:last_history]


def test_workers_on_different_sources_read_the_store_themselves(tmp_path: Path, sent: list[tuple[int, str]]) -> None:
    config = make_config(tmp_path, "sqlite", parallel_projections=2)
    store = EventStore.open(config)
    store.append(events("a", 500))
    store.append(events("b", 500))
    _registered(store, config, [ORDER, SUM_B])
    sent.clear()

    async def scenario() -> None:
        async with running(store, config) as manager:
            assert manager.projections["order"].worker is not manager.projections["sum-b"].worker
            await caught_up(manager)
            assert manager.value("order") == [e.order_id for e in store.read()]
            assert manager.value("sum-b") == sum(range(500))

    try:
        asyncio.run(scenario())
    finally:
        store.close()
    kinds = [kind for _, kind in sent]
    assert "History" not in kinds and kinds.count("CatchUp") == 2


def test_a_shared_read_that_fails_restarts_its_workers_which_catch_up_themselves(
    tmp_path: Path, sent: list[tuple[int, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path, "sqlite", parallel_projections=2)
    store = EventStore.open(config)
    store.append(events("a", 3_000))
    _registered(store, config, [ORDER, SUM])
    sent.clear()
    original = feed_module.read_data_arrays

    def failing(*args: Any, **kwargs: Any) -> Iterator[tuple[int, int, bytes]]:
        pages = original(*args, **kwargs)
        yield next(pages)
        raise BackendError("the disk went away")

    monkeypatch.setattr(feed_module, "read_data_arrays", failing)

    async def scenario() -> None:
        async with running(store, config) as manager:
            await caught_up(manager)
            assert manager.replaced_workers == 2
            assert manager.value("order") == [e.order_id for e in store.read()]
            assert manager.value("sum") == sum(range(3_000))

    try:
        asyncio.run(scenario())
    finally:
        store.close()
    kinds = [kind.split()[0] for _, kind in sent]
    assert "History" in kinds and kinds.count("CatchUp") == 2  # the replacements read for themselves


STUCK = {
    "projection-name": "stuck",
    "initial-value": 0,
    "reduction": (
        "def reduction(state, event):\n"
        "    while event['payload'].get('n') == 'forever':\n"
        "        pass\n"
        "    return state + 1\n"
    ),
}


def test_a_worker_killed_for_a_stuck_reduction_during_a_shared_read_holds_up_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared read waits for a worker with `MAX_IN_FLIGHT` pages unanswered; the watchdog
    kills it (its reduction never ends): the wait ends, and the other worker gets the rest of
    the history and the live events."""
    monkeypatch.setattr(feed_module, "BATCH", 100)  # many pages: the stuck worker's pipe fills up
    config = make_config(tmp_path, "sqlite", parallel_projections=2, projections_timeout=1.0)
    store = EventStore.open(config)
    _registered(store, config, [ORDER, STUCK])
    store.append([{"stream-name": "a", "event-type": "happened", "payload": {"n": "forever"}}])
    store.append(events("a", 1_500))

    async def scenario() -> None:
        async with running(store, config) as manager:
            assert manager.projections["order"].worker is not manager.projections["stuck"].worker
            await caught_up(manager, timeout=20)
            store.append(events("a", 10, start=5_000))
            await caught_up(manager, timeout=20)
            assert manager.value("order") == [e.order_id for e in store.read()]
            stuck = manager.get("stuck")
            assert stuck["status"] == "failed" and "time limit" in stuck["last-error"]
            assert manager.replaced_workers == 1

    try:
        asyncio.run(scenario())
    finally:
        store.close()
