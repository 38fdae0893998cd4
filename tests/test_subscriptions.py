"""Replay and live subscriptions: cold, hot, hot-cold; the exact hand-over; bounded memory."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from photon.core.errors import BackendUnavailable, StoreClosed, ValidationError
from photon.core.events import RecordedEvent
from photon.core.store import EventStore
from photon.core.subscriptions import CaughtUp, Item, Subscription


def ev(stream: str, n: int, event_type: str = "E") -> dict[str, Any]:
    return {"stream-name": stream, "event-type": event_type, "payload": {"n": n}}


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    config = {"db.backend": request.param, "sqlite.path": str(tmp_path / "s.db"), "subscription.buffer": "50"}
    with EventStore.open(config) as store:
        yield store


def drain(subscription: Subscription, count: int, timeout: float = 10) -> list[Item]:
    items: list[Item] = []
    while len([i for i in items if isinstance(i, RecordedEvent)]) < count:
        item = subscription.get(timeout)
        assert item is not None, f"timed out after {len(items)} items"
        items.append(item)
    return items


def writers(store: EventStore, threads: int, per_thread: int, streams: int = 3) -> list[threading.Thread]:
    def write(index: int) -> None:
        for n in range(per_thread):
            store.append(ev(f"s{(index + n) % streams}", index * per_thread + n, "A" if n % 3 else "B"))

    started = [threading.Thread(target=write, args=(i,)) for i in range(threads)]
    for thread in started:
        thread.start()
    return started


def test_cold_replay_ends_at_the_head_it_started_with(store: EventStore) -> None:
    store.append([ev("a", i) for i in range(5)])
    subscription = store.subscribe("__all__", "cold")
    first = subscription.get(1)
    store.append(ev("a", 99))
    rest = list(subscription)
    assert [e.order_id for e in [first, *rest] if isinstance(e, RecordedEvent)] == [1, 2, 3, 4, 5]


def test_hot_delivers_only_new_events(store: EventStore) -> None:
    store.append([ev("a", i) for i in range(5)])
    with store.subscribe("a", "hot") as subscription:
        assert subscription.get(1) == CaughtUp(5)
        assert subscription.get(0.05) is None
        store.append([ev("b", 1), ev("a", 2)])
        item = subscription.get(5)
        assert isinstance(item, RecordedEvent) and item.stream_name == "a" and item.order_id == 7


def test_hot_cold_hand_over_is_exact_on_all_while_writers_run(store: EventStore) -> None:
    store.append([ev("pre", i) for i in range(100)])
    running = writers(store, threads=6, per_thread=150)
    subscription = store.subscribe("__all__", "hot-cold", from_order_id=50)
    items = drain(subscription, 100 - 49 + 6 * 150)
    for thread in running:
        thread.join()
    events = [i for i in items if isinstance(i, RecordedEvent)]
    assert [e.order_id for e in events] == list(range(50, 1001))
    markers = [i for i in items if isinstance(i, CaughtUp)]
    assert len(markers) == 1
    position = items.index(markers[0])
    assert all(e.order_id <= markers[0].order_id for e in items[:position] if isinstance(e, RecordedEvent))
    assert all(e.order_id > markers[0].order_id for e in items[position:] if isinstance(e, RecordedEvent))
    subscription.close()


def test_slow_subscriber_keeps_memory_bounded_and_misses_nothing(store: EventStore) -> None:
    """With a buffer of 50 events, 3000 unread live events must not pile up in memory."""
    subscription = store.subscribe("__all__", "hot-cold")
    assert subscription.get(1) == CaughtUp(0)
    largest = 0
    for start in range(0, 3000, 100):
        store.append([ev("fast", start + i) for i in range(100)])
        listener = subscription._listener
        if listener is not None:
            largest = max(largest, len(listener.queue))
    assert largest <= 50
    events = [i for i in drain(subscription, 3000) if isinstance(i, RecordedEvent)]
    assert [e.order_id for e in events] == list(range(1, 3001))
    store.append(ev("fast", 3000))
    item = subscription.get(5)
    assert isinstance(item, RecordedEvent) and item.order_id == 3001
    subscription.close()


def test_stream_subscription_with_event_type_filter_across_the_hand_over(store: EventStore) -> None:
    store.append([ev("s0", i, "A" if i % 2 else "B") for i in range(20)])
    subscription = store.subscribe("s0", "hot-cold", event_types=["B"], from_version=5)
    store.append([ev("s0", i, "A" if i % 2 else "B") for i in range(20, 40)] + [ev("s1", 0, "B")])
    items = drain(subscription, 18)
    payloads = [e.payload["n"] for e in items if isinstance(e, RecordedEvent)]
    assert payloads == list(range(4, 40, 2))
    subscription.close()


def test_limit_and_to_bound_a_replay(store: EventStore) -> None:
    store.append([ev("a", i) for i in range(30)])
    limited = [e for e in store.subscribe("a", "hot-cold", limit=7) if isinstance(e, RecordedEvent)]
    assert [e.order_id for e in limited] == list(range(1, 8))
    bounded = store.subscribe("__all__", "hot-cold", from_order_id=25, to_order_id=33)
    store.append([ev("a", i) for i in range(30, 40)])
    events = [e for e in bounded if isinstance(e, RecordedEvent)]
    assert [e.order_id for e in events] == list(range(25, 34))


def test_from_time_applies_to_history_and_live(store: EventStore) -> None:
    store.append([dict(ev("a", i), **{"event-time": 1000 + i}) for i in range(10)])
    subscription = store.subscribe("a", "hot-cold", from_time=1007)
    store.append([dict(ev("a", 10), **{"event-time": 5}), dict(ev("a", 11), **{"event-time": 2000})])
    events = [e for e in drain(subscription, 4) if isinstance(e, RecordedEvent)]
    assert [e.payload["n"] for e in events] == [7, 8, 9, 11]
    subscription.close()


def test_async_iteration_goes_live(store: EventStore) -> None:
    store.append([ev("a", i) for i in range(3)])

    async def consume() -> list[Any]:
        seen: list[Any] = []
        subscription = store.subscribe("a", "hot-cold")
        async for item in subscription:
            seen.append(item if isinstance(item, CaughtUp) else item.payload["n"])
            if isinstance(item, CaughtUp):
                await asyncio.to_thread(store.append, [ev("a", 3), ev("a", 4)])
            if len(seen) == 6:
                break
        subscription.close()
        return seen

    assert asyncio.run(asyncio.wait_for(consume(), 10)) == [0, 1, 2, CaughtUp(3), 3, 4]


def test_closing_the_store_ends_a_waiting_subscriber(tmp_path: Path) -> None:
    store = EventStore.open(db_backend="memory")
    subscription = store.subscribe("__all__", "hot")
    assert subscription.get(1) == CaughtUp(0)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            subscription.get(10)
        except StoreClosed as exc:
            errors.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    store.close()
    thread.join(5)
    assert not thread.is_alive() and errors


def test_bad_replay_options(store: EventStore) -> None:
    with pytest.raises(ValidationError, match="stream-type must be one of cold, hot, hot-cold"):
        store.subscribe("a", "warm")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="from-version applies to a stream"):
        store.subscribe("__all__", "cold", from_version=3)


@pytest.mark.parametrize("count", [0, 1000, 2000])
def test_cold_replay_ending_on_a_page_boundary_ends(store: EventStore, count: int) -> None:
    if count:
        store.append([ev("a", i) for i in range(count)])
    subscription = store.subscribe("__all__", "cold")
    subscription.page_size = 500
    events = [i for i in subscription if isinstance(i, RecordedEvent)]
    assert len(events) == count


def test_an_async_replay_that_fell_behind_waits_out_a_store_it_cannot_read_for_a_moment() -> None:
    # A live subscriber that falls behind reads from the store again; if the store's server is
    # restarting just then, the replay asks again instead of ending (the projections' live feed is one).
    store = EventStore.open(db_backend="memory", subscription_buffer=10)
    subscription = store.subscribe("__all__", "hot-cold")
    backend = store.backend
    read = backend.read
    failures: list[int] = []

    def read_failing_twice(query: Any) -> Any:
        if len(failures) < 2:
            failures.append(1)
            raise BackendUnavailable("the server is restarting")
        return read(query)

    async def scenario() -> list[int]:
        assert await subscription.next_batch(timeout=1) == [CaughtUp(0)]
        store.append([{"stream-name": "s", "event-type": "T", "payload": {"n": i}} for i in range(50)])
        backend.read = read_failing_twice  # type: ignore[method-assign]
        got: list[int] = []
        while len(got) < 50:
            batch = await subscription.next_batch(timeout=5)
            assert batch is not None
            got += [item.order_id for item in batch if isinstance(item, RecordedEvent)]
        return got

    try:
        assert asyncio.run(scenario()) == list(range(1, 51))
        assert len(failures) == 2
    finally:
        subscription.close()
        store.close()


def test_a_subscription_is_made_of_a_history_read_and_a_broadcaster() -> None:
    # What a Subscription needs comes as arguments: a paging read of the store's history, and
    # the broadcaster that hands it live events (here fed by hand, not by a writer).
    from photon.core.broadcaster import Broadcaster
    from photon.core.filtered_reads import plan_read
    from photon.core.paging import HistoryPages

    with EventStore.open(db_backend="memory") as source:
        stored = source.append([ev("s", n) for n in range(1, 5)])
        backend = source.backend
        live = Broadcaster(head=3)  # what the writer had published when the replay began
        history = HistoryPages(backend, plan_read(backend, "s", None, None), max_events=2, max_bytes=1 << 20)
        closed = False
        subscription = Subscription(history, live, "s", "hot-cold", last_order_id=lambda: 3, is_closed=lambda: closed)
        items = [subscription.get(1) for _ in range(4)]
        assert [i.payload["n"] if isinstance(i, RecordedEvent) else i for i in items] == [1, 2, 3, CaughtUp(3)]
        live.publish([stored[3]])
        fourth = subscription.get(1)
        assert isinstance(fourth, RecordedEvent) and fourth.order_id == 4
        assert subscription.get(0.05) is None  # nothing more, and nothing read from the store again
        closed = True
        live.close()
        with pytest.raises(StoreClosed):
            subscription.get(1)
        subscription.close()
