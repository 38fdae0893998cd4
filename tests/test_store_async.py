"""EventStore.append_async / append_validated_async: the async front ends' way in."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from photon.core.errors import StoreClosed, ValidationError, VersionConflict
from photon.core.store import INLINE_VALIDATION, EventStore


def event(n: int, stream: str = "s") -> dict[str, object]:
    return {"stream-name": stream, "event-type": "t", "payload": {"n": n}}


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    return EventStore.open({"db.backend": "sqlite", "sqlite.path": str(tmp_path / "a.db")})


def test_concurrent_async_appends_share_commits(store: EventStore) -> None:
    async def main() -> list[int]:
        results = await asyncio.gather(*(store.append_async(event(i)) for i in range(200)))
        return sorted(r[0].order_id for r in results)

    assert asyncio.run(main()) == list(range(1, 201))
    assert store.stats()["commits"] < 200
    store.close()


def test_appends_from_loops_in_two_threads_in_turn_each_wake_their_own_loop(store: EventStore) -> None:
    # The store keeps the waker of the loop that appended last at hand: a caller on another loop
    # must still be woken on its own loop (a wrong one would never resume it, or resume it in the
    # wrong thread), however the loops take turns.
    async def appends(first: int) -> list[int]:
        stored = []
        for n in range(first, first + 20):
            result = await asyncio.wait_for(store.append_async(event(n)), 10)
            stored.append(result[0].payload["n"])
            await asyncio.sleep(0)
        return stored

    results: dict[int, list[int]] = {}

    def run(first: int) -> None:
        results[first] = asyncio.run(appends(first))

    threads = [threading.Thread(target=run, args=(first,)) for first in (0, 100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    results[200] = asyncio.run(appends(200))
    assert results == {first: list(range(first, first + 20)) for first in (0, 100, 200)}
    assert len(list(store.read("s"))) == 60
    store.close()


def test_async_errors_are_the_sync_ones(store: EventStore) -> None:
    async def main() -> None:
        await store.append_async([event(1), event(2)])
        with pytest.raises(VersionConflict):
            await store.append_async(event(3), expected_version=1)
        with pytest.raises(ValidationError, match="event 1:"):
            await store.append_async([event(4), {"stream-name": "s"}])
        big = [event(i) for i in range(INLINE_VALIDATION + 1)]  # validated off the loop
        with pytest.raises(ValidationError, match=f"event {INLINE_VALIDATION}:"):
            await store.append_async([*big[:-1], {"stream-name": "s"}])
        assert len(await store.append_async(big)) == INLINE_VALIDATION + 1
        pending = [store.validate(event(5))]
        assert (await store.append_validated_async(pending))[0].stream_version == INLINE_VALIDATION + 4

    asyncio.run(main())
    assert store.stream_version("s") == INLINE_VALIDATION + 4
    store.close()


def test_a_cancelled_caller_does_not_cancel_its_append(store: EventStore) -> None:
    async def main() -> None:
        task = asyncio.create_task(store.append_async(event(1)))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    store.close()  # drains the committer
    reopened = EventStore.open({"db.backend": "sqlite", "sqlite.path": store.backend.config["sqlite.path"]})
    assert reopened.stream_version("s") == 1
    reopened.close()


def test_closed_store_refuses(store: EventStore) -> None:
    store.close()
    with pytest.raises(StoreClosed):
        asyncio.run(store.append_async(event(1)))


@pytest.mark.parametrize("read_only", [False, True])
def test_reads_on_a_closed_store_raise_store_closed(tmp_path: Path, read_only: bool) -> None:
    """Not the released driver's error (SQLAlchemy's engine is gone: an AttributeError on None)."""
    config = {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "closed.db")}
    with EventStore.open(config) as writer:
        writer.append(event(1))
    store = EventStore.open(config, read_only=read_only)
    store.close()
    store.close()  # twice: nothing more
    reads = {
        "read": lambda: list(store.read()),
        "read a stream": lambda: list(store.read("s")),
        "streams": store.streams,
        "stream_version": lambda: store.stream_version("s"),
        "get_event": lambda: store.get_event("x"),
        "categories": store.categories,
        "read_checkpoint": lambda: store.read_checkpoint("k"),
    }
    for name, read in reads.items():
        with pytest.raises(StoreClosed, match="the store is closed"):
            read()
            pytest.fail(f"{name} answered on a closed store")
    assert store.backend.describe().startswith("sqlite ")


def test_generated_ids_are_time_ordered_version_7_uuids() -> None:
    import uuid

    from photon.core.events import new_event_id

    ids = [new_event_id() for _ in range(5000)]
    assert len(set(ids)) == 5000
    assert ids == sorted(ids)  # creation order, so the unique id index grows at its end
    for value in ids[:500]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 7 and parsed.variant == uuid.RFC_4122
