"""A server answers while its projections load their checkpoints: they resume in the background.

The projection's status is shown `loading` until its checkpoint is read and its worker has it
(`Status.LOADING`, then `Status.RESUMING`); reads of its value answer 503 while the checkpoint
is read (its value is not known yet), and the events appended during the load are folded after
the checkpoint's position, once each, in order.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from photon.core.store import EventStore
from photon.projections import spool
from photon.projections.checkpoints import Checkpoint, StateJSON, checkpoint_key
from photon.projections.feed import HAND_STATE
from photon.projections.registry import Status
from photon.server.http.errors import EXCEPTION_HANDLERS
from photon.server.http.projection_routes import projection_routes

from .projection_helpers import caught_up, events, make_config, running, wait_for
from .test_projection_routes import allow_all, serve

ORDER = {
    "projection-name": "order",
    "language": "python",
    "stream-name": "a",
    "initial-value": [],
    "reduction": "def reduction(state, event):\n    return state + [event['payload']['n']]\n",
}


def test_the_server_answers_while_a_checkpoint_loads_and_appends_meanwhile_are_folded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path, "sqlite")
    store = EventStore.open(config)
    store.append(events("a", 200))

    async def first_run() -> None:
        async with running(store, config) as manager:
            await manager.create(ORDER)
            await caught_up(manager)

    asyncio.run(first_run())
    resumed_at = store.read_checkpoint(checkpoint_key("order"))["order-id"]
    assert resumed_at == store.last_order_id()

    gate = threading.Event()
    reading = threading.Event()
    read = EventStore.read_checkpoint_json

    def slow_read(self: EventStore, key: str) -> bytes | None:
        if key == checkpoint_key("order"):
            reading.set()
            gate.wait(30)
        return read(self, key)

    monkeypatch.setattr(EventStore, "read_checkpoint_json", slow_read)

    async def second_run() -> None:
        async with running(store, config) as manager:
            server, task, base = await serve(
                Starlette(routes=projection_routes(manager, allow_all), exception_handlers=EXCEPTION_HANDLERS)
            )
            try:
                async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                    await wait_for(reading.is_set, what="the checkpoint read to begin")
                    listed = (await client.get("/api/projections")).json()
                    assert {p["projection-name"]: p["status"] for p in listed}["order"] == "loading"
                    answer = await client.get("/api/projection/order")
                    assert answer.status_code == 503 and "loading" in answer.json()["error"]
                    assert (await client.get("/api/projection/order/state")).status_code == 503
                    assert not manager.loaded.is_set()
                    # Appended while the checkpoint loads: folded after it, once each.
                    for start in (200, 300):
                        await asyncio.to_thread(store.append, events("a", 100, start=start))
                        await asyncio.sleep(0.05)
                    gate.set()
                    await asyncio.wait_for(manager.loaded.wait(), 30)
                    await caught_up(manager)
                    descriptor = (await client.get("/api/projection/order")).json()
                assert descriptor["status"] == "running"
                assert descriptor["resumed-from"] == resumed_at
                assert descriptor["current-value"] == list(range(400))
                assert descriptor["processed"] == 400
            finally:
                gate.set()
                server.should_exit = True
                await task

    try:
        asyncio.run(second_run())
    finally:
        store.close()


def test_a_checkpoint_is_read_with_its_state_left_as_json() -> None:
    checkpoint = Checkpoint("d" * 64, 7, 6, 5, {"s": [1, 2, {"state": ',"state":'}]})
    raw = b"".join(checkpoint.to_parts())
    read = Checkpoint.from_json(raw)
    assert read is not None and isinstance(read.state, StateJSON)
    assert (read.digest, read.order_id, read.last_event, read.processed) == ("d" * 64, 7, 6, 5)
    assert orjson.loads(read.state.json) == checkpoint.state
    # Another layout (a backend that stores JSON its own way) is decoded whole.
    spaced: dict[str, Any] = {"state": checkpoint.state, "processed": 5, "order-id": 7, "digest": "d" * 64}
    other = Checkpoint.from_json(orjson.dumps(spaced, option=orjson.OPT_INDENT_2))
    assert other is not None and other.order_id == 7 and other.last_event == 0
    assert isinstance(other.state, StateJSON) and orjson.loads(other.state.json) == checkpoint.state


def test_a_projection_is_shown_loading_until_its_worker_has_taken_its_state() -> None:
    from photon.projections.definition import ProjectionSpec
    from photon.projections.registry import Projection
    from photon.projections.updates import update_message

    projection = Projection(spec=ProjectionSpec("p", "python", "def reduction(s, e):\n    return s\n"), slot=1)
    shown = {
        Status.LOADING: "loading",
        Status.RESUMING: "loading",  # sent to its worker, which is still decoding the state
        Status.RUNNING: "running",  # its worker's `Added`
        Status.FAILED: "failed",
        Status.STOPPED: "stopped",
    }
    for status, name in shown.items():
        projection.status = status
        assert projection.descriptor(with_value=False)["status"] == name
        assert orjson.loads(update_message(projection))["status"] == name
    assert {s for s in Status if s.on_worker} == {Status.RESUMING, Status.RUNNING}
    assert {s for s in Status if s.live} == {Status.LOADING, Status.RESUMING, Status.RUNNING}


def test_a_resuming_projections_value_reads_and_a_loading_ones_answers_not_ready(tmp_path: Path) -> None:
    from photon.core.errors import NotReady
    from photon.projections.manager import ProjectionManager
    from photon.projections.registry import builtin_streams_spec

    config = make_config(tmp_path, "memory")
    store = EventStore.open(config)
    manager = ProjectionManager(store, config)
    try:
        projection = manager.registry.add(builtin_streams_spec())
        projection.state_json = b'{"s":1}'
        projection.status = Status.LOADING  # its checkpoint is being read: its value is not known
        with pytest.raises(NotReady):
            manager.value(projection.name)
        assert manager.current_messages() == []
        projection.status = Status.RESUMING  # the checkpoint's value, its worker decoding it
        assert manager.value(projection.name) == {"s": 1}
        assert manager.get(projection.name)["status"] == "loading"
        assert [orjson.loads(m)["status"] for m in manager.current_messages()] == ["loading"]
    finally:
        store.close()


def test_a_worker_decodes_a_resumed_state_with_the_cycle_collector_paused(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    import multiprocessing

    from photon.projections import worker as worker_module
    from photon.projections.definition import ProjectionSpec
    from photon.projections.messages import Add

    seen: list[bool] = []
    loads = orjson.loads

    state = b'{"s-1":{"total-events":3}}'

    def watched(data: Any) -> Any:
        if data == state:
            seen.append(gc.isenabled())
        return loads(data)

    monkeypatch.setattr(worker_module.orjson, "loads", watched)
    _, worker_end = multiprocessing.Pipe()
    worker = worker_module.Worker(worker_end, [0, 0], None)
    spec = ProjectionSpec("p", "python", "def reduction(s, e):\n    return s\n").to_payload()
    assert gc.isenabled()
    assert worker.add(Add(1, spec, state, 3, 3, 3)) is None
    assert seen == [False] and gc.isenabled()
    assert worker.projections[1].state == {"s-1": {"total-events": 3}}


BIG = {
    "projection-name": "big",
    "language": "python",
    "stream-name": "b",
    "initial-value": {},
    "reduction": "def reduction(state, event):\n"
    "    state[str(event['payload']['n'])] = 'x' * 10_000\n"
    "    return state\n",
}


@pytest.mark.skipif(not spool.available(), reason="no memory files here (not Linux)")
def test_a_large_resumed_state_goes_to_its_worker_in_a_memory_file_closed_once_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path, "sqlite")
    store = EventStore.open(config)
    store.append(events("b", 150))
    expected = {str(n): "x" * 10_000 for n in range(150)}

    async def first_run() -> None:
        async with running(store, config) as manager:
            await manager.create(BIG)
            await caught_up(manager)

    handed: list[int] = []
    hand = spool.hand

    def counted(data: bytes) -> tuple[int, str]:
        handed.append(len(data))
        return hand(data)

    async def second_run() -> None:
        async with running(store, config) as manager:
            await asyncio.wait_for(manager.loaded.wait(), 30)
            await wait_for(lambda: manager.projections["big"].status is Status.RUNNING, what="its worker's Added")
            assert manager.feed.handed == {}  # its file is closed once its worker has read it
            store.append(events("b", 1, start=150))
            await caught_up(manager)
            assert manager.value("big") == {**expected, "150": "x" * 10_000}
            assert manager.get("big")["resumed-from"] == resumed_at

    try:
        asyncio.run(first_run())
        assert len(store.read_checkpoint_json(checkpoint_key("big")) or b"") > HAND_STATE
        resumed_at = store.read_checkpoint(checkpoint_key("big"))["order-id"]
        monkeypatch.setattr(spool, "hand", counted)
        asyncio.run(second_run())
    finally:
        store.close()
    assert len(handed) == 1 and handed[0] > HAND_STATE  # the `__streams__` state is small: in its `Add`


@pytest.mark.skipif(not spool.available(), reason="no memory files here (not Linux)")
def test_a_worker_decodes_a_state_from_a_memory_file_and_says_when_it_cannot_read_it() -> None:
    import multiprocessing
    import os

    from photon.projections import worker as worker_module
    from photon.projections.definition import ProjectionSpec
    from photon.projections.messages import Add

    _, worker_end = multiprocessing.Pipe()
    worker = worker_module.Worker(worker_end, [0, 0], None)
    spec = ProjectionSpec("p", "python", "def reduction(s, e):\n    return s\n").to_payload()
    fd, path = spool.hand(b'{"s-1":{"total-events":3}}')
    try:
        assert worker.add(Add(1, spec, path, 3, 3, 3)) is None
        assert worker.projections[1].state == {"s-1": {"total-events": 3}}
    finally:
        os.close(fd)
    error = worker.add(Add(2, spec, path, 3, 3, 3))  # the manager closed it: gone
    assert error is not None and "could not be read" in error and 2 not in worker.projections


def test_a_worker_does_not_report_back_the_state_it_resumed_from() -> None:
    import multiprocessing

    from photon.projections import worker as worker_module
    from photon.projections.definition import ProjectionSpec
    from photon.projections.messages import Add

    _, worker_end = multiprocessing.Pipe()
    worker = worker_module.Worker(worker_end, [0, 0], None)
    spec = ProjectionSpec("p", "python", "def reduction(s, e):\n    return s + 1\n").to_payload()
    assert worker.add(Add(1, spec, b"41", 7, 7, 7)) is None  # resumed: the manager holds this state
    assert worker.add(Add(2, spec, b"0", 0, 0, 0)) is None  # new: its initial value is reported
    reports = {r.slot: r for r in worker.reports()}
    assert reports[1].state is None and reports[1].position == 7
    assert reports[2].state == b"0"
    event = orjson.dumps({"order-id": 8, "stream-name": "a", "event-type": "t", "payload": {}})
    folded, _ = worker.fold_batch(worker_module.decode([event]), 8)
    states = {r.slot: r.state for r in folded}
    states.update({r.slot: r.state for r in worker.reports() if r.slot not in states})  # held back
    assert states == {1: b"42", 2: b"1"}


def test_a_resumed_state_is_frozen_before_the_cycle_collector_runs_again() -> None:
    """Decoded with the collector paused, a large state must not be walked by the collection
    that the next allocation would start (the decode's containers count towards it)."""
    import gc
    import multiprocessing

    from photon.projections import worker as worker_module
    from photon.projections.definition import ProjectionSpec
    from photon.projections.messages import Add

    _, worker_end = multiprocessing.Pipe()
    worker = worker_module.Worker(worker_end, [0, 0], None)
    spec = ProjectionSpec("p", "python", "def reduction(s, e):\n    return s\n").to_payload()
    state = orjson.dumps({f"s-{n}": {"total-events": n, "schemas": {}} for n in range(20_000)})
    collections: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    threshold = gc.get_threshold()
    gc.set_threshold(700, *threshold[1:])
    gc.collect()
    gc.callbacks.append(seen)
    try:
        assert worker.add(Add(1, spec, state, 3, 3, 3)) is None
    finally:
        gc.callbacks.remove(seen)
        gc.set_threshold(*threshold)
        gc.unfreeze()
    assert collections == []
    assert len(worker.projections[1].state) == 20_000
