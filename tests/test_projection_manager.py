"""The projection manager with real worker processes: folding, failures, time limits, crashes, checkpoints."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from photon.core.errors import BackendUnavailable
from photon.core.events import CONFIG_STREAM
from photon.core.store import EventStore
from photon.projections.checkpoints import checkpoint_key
from photon.projections.definition import spec_from_template
from photon.projections.feed import BUSY_INTERVAL
from photon.projections.manager import ProjectionManager
from photon.server.projection_updates import ProjectionUpdatesService

from .projection_helpers import caught_up, direct_fold, events, make_config, running, wait_for

SUM_PY = {
    "projection-name": "sum-a",
    "language": "python",
    "stream-name": "a",
    "initial-value": {"sum": 0, "count": 0},
    "reduction": (
        "def reduction(state, event):\n"
        "    state['sum'] += event['payload']['n']\n"
        "    state['count'] += 1\n"
        "    return state\n"
    ),
}
TYPES_HY = {
    "projection-name": "types-hy",
    "language": "hy",
    "initial-value": {},
    "reduction": (
        '(fn [state event] (setv t (get event "event-type")) (setv (get state t) (+ (.get state t 0) 1)) state)'
    ),
}
ONLY_B_TICKS = {
    "projection-name": "b-ticks",
    "language": "python",
    "event-types": ["tick"],
    "initial-value": [],
    "reduction": "lambda state, event: (state + [event['order-id']])[-5:] if event['stream-name'] == 'b' else state",
}
TEMPLATES = (SUM_PY, TYPES_HY, ONLY_B_TICKS)


def fill(store: EventStore, start: int = 0, rounds: int = 3) -> None:
    for r in range(rounds):
        store.append(events("a", 500, "happened", start + r * 500))
        store.append(events("b", 200, "tick" if r % 2 == 0 else "tock", start + r * 200))


def expected(store: EventStore) -> dict[str, object]:
    return {t["projection-name"]: direct_fold(store, spec_from_template(t).to_payload()) for t in TEMPLATES}


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_folds_history_and_live_events_like_a_direct_fold(tmp_path: Path, backend: str) -> None:
    config = make_config(tmp_path, backend)
    store = EventStore.open(config)
    fill(store)

    async def scenario() -> None:
        async with running(store, config) as manager:
            if backend == "sqlite":
                assert all(w.reads_store for w in manager.workers)
            else:
                assert not any(w.reads_store for w in manager.workers)
            for template in TEMPLATES:
                await manager.create(template)
            await caught_up(manager)
            assert {name: manager.value(name) for name in expected(store)} == expected(store)
            fill(store, start=10_000, rounds=2)  # live
            await caught_up(manager)
            want = expected(store)
            assert {name: manager.value(name) for name in want} == want
            descriptor = manager.get("sum-a")
            assert descriptor["status"] == "running"
            assert descriptor["processed"] == want["sum-a"]["count"]  # type: ignore[index]
            assert descriptor["last-event"] == max(e.order_id for e in store.read("a"))
            assert descriptor["avg-time"] > 0
            streams = manager.value("__streams__")
            assert streams["a"]["total-events"] == 2500
            assert streams["b"]["schemas"]["__unversioned__"] == {"n": "number"}

    asyncio.run(scenario())
    store.close()


def test_a_raising_reduction_fails_only_its_projection(tmp_path: Path) -> None:
    config = make_config(tmp_path, parallel_projections=1)
    store = EventStore.open(config)
    store.append(events("a", 10))
    bad = {
        "projection-name": "bad",
        "initial-value": 0,
        "reduction": (
            "def reduction(state, event):\n"
            "    if event['payload']['n'] == 7:\n"
            "        raise ValueError('seven is not allowed')\n"
            "    return state + 1\n"
        ),
    }
    not_json = {"projection-name": "not-json", "initial-value": 0, "reduction": "lambda s, e: {1, 2}"}

    async def scenario() -> None:
        async with running(store, config) as manager:
            await manager.create(bad)
            await manager.create(not_json)
            await manager.create(SUM_PY)
            await wait_for(lambda: manager.get("bad")["status"] == "failed", what="bad to fail")
            failing_event = next(e for e in store.read("a") if e.to_dict()["payload"]["n"] == 7)
            descriptor = manager.get("bad")
            assert descriptor["failed-at"] == failing_event.order_id
            assert "ValueError: seven is not allowed" in descriptor["last-error"]
            assert f"order-id {failing_event.order_id}" in descriptor["last-error"]
            assert manager.value("bad") == 7  # the state before the failing event
            # ... and the counters are that state's: seven events folded, the last just before it
            assert descriptor["processed"] == 7
            assert descriptor["last-event"] == descriptor["position"] == failing_event.order_id - 1
            await wait_for(lambda: manager.get("not-json")["status"] == "failed", what="not-json to fail")
            assert "not JSON" in manager.get("not-json")["last-error"]
            store.append(events("a", 5, start=100))
            await caught_up(manager, ["sum-a"])
            assert manager.value("sum-a") == direct_fold(store, spec_from_template(SUM_PY).to_payload())
            assert manager.get("bad")["status"] == "failed"

    asyncio.run(scenario())
    store.close()


def test_a_reduction_past_the_time_limit_is_failed_and_the_others_resume(tmp_path: Path) -> None:
    config = make_config(tmp_path, parallel_projections=1, projections_timeout=2.0)
    store = EventStore.open(config)
    store.append(events("a", 20))
    slow = {
        "projection-name": "slow",
        "initial-value": 0,
        "reduction": (
            "import time\n"
            "def reduction(state, event):\n"
            "    if event['payload']['n'] == 12:\n"
            "        time.sleep(600)\n"
            "    return state + 1\n"
        ),
    }

    async def scenario() -> None:
        async with running(store, config) as manager:
            await manager.create(SUM_PY)
            await caught_up(manager, ["sum-a"])
            first_pid = manager.workers[0].pid
            await manager.create(slow)
            await wait_for(lambda: manager.get("slow")["status"] == "failed", timeout=30, what="slow to fail")
            stuck = next(e for e in store.read("a") if e.to_dict()["payload"]["n"] == 12)
            descriptor = manager.get("slow")
            assert "time limit" in descriptor["last-error"]
            assert descriptor["failed-at"] == stuck.order_id
            await wait_for(
                lambda: manager.workers[0].pid != first_pid and manager.workers[0].alive, what="a new worker"
            )
            assert manager.replaced_workers == 1
            store.append(events("a", 30, start=1000))
            await caught_up(manager, ["sum-a", "__streams__"])
            assert manager.value("sum-a") == direct_fold(store, spec_from_template(SUM_PY).to_payload())
            assert manager.get("sum-a")["status"] == "running"

    asyncio.run(scenario())
    store.close()


def test_a_reduction_that_kills_its_worker_again_on_resuming_is_failed_and_the_others_go_on(tmp_path: Path) -> None:
    """A worker may die for reasons of its own (the first death is resumed from); one that dies
    again in the same reduction on the same event is not replaced over and over."""
    config = make_config(tmp_path, parallel_projections=1)
    store = EventStore.open(config)
    store.append(events("a", 20))
    crashes = {
        "projection-name": "crashes",
        "initial-value": 0,
        "reduction": (
            "import os\n"
            "def reduction(state, event):\n"
            "    if event['payload']['n'] == 12:\n"
            "        os._exit(3)\n"
            "    return state + 1\n"
        ),
    }

    async def scenario() -> None:
        async with running(store, config) as manager:
            await manager.create(SUM_PY)
            await caught_up(manager, ["sum-a"])
            await manager.create(crashes)
            await wait_for(lambda: manager.get("crashes")["status"] == "failed", timeout=30, what="crashes to fail")
            fatal = next(e for e in store.read("a") if e.to_dict()["payload"]["n"] == 12)
            descriptor = manager.get("crashes")
            assert "worker process exited (exit code 3)" in descriptor["last-error"]
            assert f"order-id {fatal.order_id}" in descriptor["last-error"]
            assert descriptor["failed-at"] == fatal.order_id
            assert manager.replaced_workers == 2
            await wait_for(lambda: manager.workers[0].alive and manager.workers[0].ready.is_set(), what="a worker")
            store.append(events("a", 30, start=1000))
            await caught_up(manager, ["sum-a"])
            await asyncio.sleep(1)
            assert manager.replaced_workers == 2
            assert manager.value("sum-a") == direct_fold(store, spec_from_template(SUM_PY).to_payload())

    asyncio.run(scenario())
    store.close()


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_killed_worker_is_replaced_and_its_projections_resume(tmp_path: Path, backend: str) -> None:
    config = make_config(tmp_path, backend, parallel_projections=2)
    store = EventStore.open(config)
    fill(store)

    async def scenario() -> None:
        async with running(store, config) as manager:
            for template in TEMPLATES:
                await manager.create(template)
            await caught_up(manager)
            victim = manager.projections["sum-a"].worker
            assert victim is not None
            os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
            await wait_for(lambda: manager.replaced_workers == 1, what="the replacement")
            fill(store, start=5000, rounds=2)
            await caught_up(manager)
            want = expected(store)
            assert {name: manager.value(name) for name in want} == want
            assert all(manager.get(name)["status"] == "running" for name in want)

    asyncio.run(scenario())
    store.close()


def test_restart_resumes_from_checkpoints_and_equals_a_full_refold(tmp_path: Path) -> None:
    config = make_config(tmp_path, "sqlite", projections_checkpoint_events=500)
    store = EventStore.open(config)
    fill(store)

    async def first_run() -> None:
        async with running(store, config) as manager:
            for template in TEMPLATES:
                await manager.create(template)
            await caught_up(manager)

    asyncio.run(first_run())
    saved = store.read_checkpoint(checkpoint_key("sum-a"))
    assert saved["order-id"] == store.last_order_id()
    resumed_at = saved["order-id"]
    fill(store, start=20_000, rounds=2)  # written while no projection runs

    async def second_run() -> None:
        async with running(store, config) as manager:
            await caught_up(manager)
            for name in ("sum-a", "types-hy", "b-ticks", "__streams__"):
                assert manager.get(name)["resumed-from"] == resumed_at
            want = expected(store)
            assert {name: manager.value(name) for name in want} == want

    asyncio.run(second_run())

    # A checkpoint of another definition (or a tampered one) is ignored: the fold starts over.
    bogus = dict(store.read_checkpoint(checkpoint_key("sum-a")))
    bogus["digest"] = "0" * 64
    bogus["state"] = {"sum": -1, "count": -1}
    store.write_checkpoint(checkpoint_key("sum-a"), bogus)

    async def third_run() -> None:
        async with running(store, config) as manager:
            await caught_up(manager)
            assert manager.get("sum-a")["resumed-from"] == 0
            assert manager.value("sum-a") == expected(store)["sum-a"]

    asyncio.run(third_run())
    store.close()


def test_a_checkpoint_records_the_position_it_wrote_not_one_reached_meanwhile(tmp_path: Path) -> None:
    # A periodic checkpoint is taken at one position and written in a thread; the projection moves
    # on before the write ends. The manager must remember the position written, or it takes the
    # newer one as checkpointed and the final checkpoint at stop is never written.
    config = make_config(tmp_path, "sqlite", projections_checkpoint_seconds=3600, projections_checkpoint_events=10**9)
    store = EventStore.open(config)
    fill(store, rounds=1)

    async def scenario() -> None:
        async with running(store, config) as manager:
            await manager.create(SUM_PY)
            await caught_up(manager)
            projection = manager.projections["sum-a"]
            taken = manager.checkpoints.snapshots([projection])
            written_at = projection.position
            store.append(events("a", 3, start=50_000))  # folded while the write is under way
            await caught_up(manager)
            assert projection.position > written_at
            is_current = manager.registry.is_current
            await asyncio.to_thread(manager.checkpoints.write, taken, is_current)
            assert projection.checkpointed_position == written_at
            assert store.read_checkpoint(checkpoint_key("sum-a"))["order-id"] == written_at
            newer = manager.checkpoints.snapshots([projection])
            await asyncio.to_thread(manager.checkpoints.write, newer, is_current)
            await asyncio.to_thread(manager.checkpoints.write, taken, is_current)  # an older write ending late
            assert store.read_checkpoint(checkpoint_key("sum-a"))["order-id"] == projection.position
            store.append(events("a", 2, start=60_000))  # left for the final checkpoint at stop
            await caught_up(manager)

    asyncio.run(scenario())
    saved = store.read_checkpoint(checkpoint_key("sum-a"))
    assert saved["order-id"] == store.last_order_id()
    assert saved["state"] == expected(store)["sum-a"]
    store.close()


def test_history_that_cannot_be_read_restarts_the_worker_instead_of_folding_past_a_gap(tmp_path: Path) -> None:
    # The in-process backends have the manager read a new projection's history; when the store
    # cannot be read then (its server restarting), live events must not be folded after the gap.
    config = make_config(tmp_path, "memory", parallel_projections=1)
    store = EventStore.open(config)
    fill(store, rounds=1)
    read = store.read
    failures = []

    def read_failing_once(*args: object, **kwargs: object) -> object:
        if not failures:
            failures.append(1)
            raise BackendUnavailable("the server is restarting")
        return read(*args, **kwargs)  # type: ignore[arg-type]

    async def scenario() -> None:
        async with running(store, config) as manager:
            store.read = read_failing_once  # type: ignore[method-assign]
            await manager.create(SUM_PY)
            await wait_for(lambda: failures, what="the history read to fail")
            store.append(events("a", 5, start=90_000))  # live, after the gap
            await wait_for(lambda: manager.replaced_workers >= 1, what="the worker to be replaced")
            await caught_up(manager)
            assert manager.value("sum-a") == expected(store)["sum-a"]

    asyncio.run(scenario())
    store.close()


def test_the_set_of_projections_lives_in_config_and_survives_a_replay_of_all(tmp_path: Path) -> None:
    config = make_config(tmp_path, "sqlite")
    store = EventStore.open(config)
    fill(store, rounds=1)

    async def first_run() -> None:
        async with running(store, config) as manager:
            for template in TEMPLATES:
                await manager.create(template)
            await manager.delete("b-ticks")
            with pytest.raises(Exception, match="does not exist"):
                await manager.delete("b-ticks")

    asyncio.run(first_run())
    kinds = [(e.event_type, e.payload["projection-name"]) for e in store.read(CONFIG_STREAM)]
    assert kinds == [
        ("projection-registered", "sum-a"),
        ("projection-registered", "types-hy"),
        ("projection-registered", "b-ticks"),
        ("projection-deleted", "b-ticks"),
    ]
    registered = next(e.payload for e in store.read(CONFIG_STREAM))
    assert registered["source"] == SUM_PY["reduction"] and registered["language"] == "python"

    async def second_run(target: EventStore, target_config: object) -> dict[str, object]:
        async with running(target, target_config) as manager:  # type: ignore[arg-type]
            assert manager.names() == ["__streams__", "sum-a", "types-hy"]
            await caught_up(manager)
            return {name: manager.value(name) for name in ("sum-a", "types-hy")}

    values = asyncio.run(second_run(store, config))

    # Replay __all__ into an empty store: the projections come back with the same values.
    clone_config = make_config(tmp_path / "clone", "memory")
    clone = EventStore.open(clone_config)
    for event in store.read():
        data = event.to_dict()
        if event.stream_name.startswith("__"):
            clone.append_internal(event.stream_name, event.event_type, data["payload"])
        else:
            clone.append({k: v for k, v in data.items() if k not in ("order-id", "stream-version")})
    assert asyncio.run(second_run(clone, clone_config)) == values
    clone.close()
    store.close()


def test_updates_are_followed_in_process_and_over_tcp(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store = EventStore.open(config)
    store.append(events("a", 3))

    async def scenario() -> None:
        async with running(store, config) as manager:
            await manager.create(SUM_PY)
            await caught_up(manager)
            # The listener is a server service of its own, given the manager by the server.
            updates = ProjectionUpdatesService(store, config)
            updates.attach_projections(manager)
            await updates.start()
            try:
                await follow(manager, updates)
            finally:
                await updates.stop()

    async def follow(manager: ProjectionManager, updates: ProjectionUpdatesService) -> None:
        import orjson

        from photon.server.tokens import TokenSigner

        port = updates.port
        assert port is not None
        # No token, or a bad one: refused, and nothing of any projection is sent.
        for first_line in (b"\n", b'{"token":"forged"}\n', b"hello\n"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(first_line)
            assert await asyncio.wait_for(reader.read(), 10) == b'{"error":"Not authorized"}\n'
            writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(orjson.dumps({"token": TokenSigner.from_config(config).issue()}) + b"\n")

        snapshot = {}
        for _ in range(len(manager.projections)):
            line = orjson.loads(await asyncio.wait_for(reader.readline(), 10))
            snapshot[line["projection-name"]] = line["current-value"]
        assert snapshot["sum-a"] == {"sum": 3, "count": 3}

        states = manager.subscribe_updates("sum-a")
        assert await asyncio.wait_for(states.__anext__(), 10) == {"sum": 3, "count": 3}
        store.append(events("a", 1, start=10))
        assert await asyncio.wait_for(states.__anext__(), 10) == {"sum": 13, "count": 4}
        await states.aclose()

        while True:
            line = orjson.loads(await asyncio.wait_for(reader.readline(), 10))
            if line["projection-name"] == "sum-a":
                break
        assert line["current-value"] == {"sum": 13, "count": 4}
        assert line["last-event"] == store.last_order_id()
        writer.close()

    asyncio.run(scenario())
    store.close()


def test_a_worker_behind_the_live_feed_reads_what_it_missed_from_the_store(tmp_path: Path) -> None:
    config = make_config(tmp_path, "sqlite", parallel_projections=1)
    store = EventStore.open(config)
    slow = {
        "projection-name": "slow-sum",
        "initial-value": 0,
        "reduction": (
            "import time\n"
            "def reduction(state, event):\n"
            "    time.sleep(0.002)\n"
            "    return state + event['payload'].get('n', 0)\n"
        ),
    }

    async def scenario() -> None:
        async with running(store, config) as manager:
            await manager.create(slow)
            await caught_up(manager)
            for i in range(30):  # one live batch each, faster than the reduction folds them
                await asyncio.to_thread(store.append, events("a", 20, start=i * 20))
                # (Below the feed's BUSY_RATE, which would gather several commits in a batch.)
                await asyncio.sleep(BUSY_INTERVAL)
            await caught_up(manager, timeout=60)
            assert manager.resyncs >= 1
            assert manager.value("slow-sum") == direct_fold(store, spec_from_template(slow).to_payload())
            assert manager.get("slow-sum")["processed"] == store.last_order_id()  # every event, once

    asyncio.run(scenario())
    store.close()


def test_a_projection_folds_a_category(tmp_path: Path) -> None:
    config = make_config(tmp_path, parallel_projections=1)
    store = EventStore.open(config)
    store.append(events("cart-1", 3) + events("shop-1", 4) + events("cart", 2))
    template = {
        "projection-name": "carts",
        "stream-name": "__category__:cart",
        "initial-value": {},
        "reduction": "lambda s, e: {**s, e['stream-name']: s.get(e['stream-name'], 0) + 1}",
    }

    async def scenario() -> None:
        async with running(store, config) as manager:
            await manager.create(template)
            await caught_up(manager, ["carts"])
            assert manager.value("carts") == {"cart-1": 3, "cart": 2}
            store.append(events("cart-2", 1) + events("shop-2", 1))  # live
            await wait_for(lambda: manager.value("carts").get("cart-2") == 1, what="the live cart event")
            assert manager.value("carts") == {"cart-1": 3, "cart": 2, "cart-2": 1}

    asyncio.run(scenario())
    store.close()
