"""Live subscriptions: cold, hot and hot-cold replay with an exact hand-over.

How the hand-over is exact: a subscriber first registers with the `Broadcaster`, which
answers with the last order-id it has published (H). Every event after H will reach the
subscriber's queue; every event up to H is already committed, so it is read from the store
with the bound `order-id <= H`. History and live never overlap and leave no hole.

How memory stays bounded, in bytes: each subscriber's queue of live events holds at most
`buffer_bytes` of event data (and `buffer` events). A subscriber that falls further behind is
dropped from the broadcaster (its queue freed), is told so (a `FellBehind` item, where the
subscriber asked for it) and goes back to reading from the store from its last delivered
order-id, then registers again: the same hand-over as at the start. History is read in pages
of about `page_bytes` (see `photon.core.paging`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Literal, NamedTuple

from photon.core import memory
from photon.core.broadcaster import Broadcaster, Listener
from photon.core.errors import BackendUnavailable, StoreClosed, ValidationError
from photon.core.events import RecordedEvent
from photon.core.paging import HistoryPages

log = logging.getLogger("photon.subscriptions")

HISTORY_RETRY_SECONDS = 60.0
"""How long an asynchronous replay waits for an unreachable store before it gives up."""

DEFAULT_BUFFER_BYTES = 8 << 20
"""`subscription.buffer.bytes`: live event data held for one subscriber."""
DEFAULT_PAGE_BYTES = 4 << 20
"""`replay.page.bytes`: event data in one page of history."""

StreamType = Literal["cold", "hot", "hot-cold"]
STREAM_TYPES: tuple[str, ...] = ("cold", "hot", "hot-cold")


def check_stream_type(stream_type: str) -> None:
    """Raise `ValidationError` unless `stream_type` is one of `STREAM_TYPES`."""
    if stream_type not in STREAM_TYPES:
        raise ValidationError(
            f"stream-type must be one of {', '.join(STREAM_TYPES)}, got {stream_type!r}", "stream-type"
        )


class CaughtUp(NamedTuple):
    """Marker: history is delivered up to `order_id`; what follows is live."""

    order_id: int


class FellBehind(NamedTuple):
    """Marker: the subscriber read too slowly for its live buffer; after `order_id` (the last event
    delivered) its events come from the store again, until it has caught up once more."""

    order_id: int


Item = RecordedEvent | CaughtUp | FellBehind


class Subscription:
    """An iterator over a replay: events, with one `CaughtUp` marker between history and live.

    Synchronous use: ``for item in store.subscribe(...)``, or `get(timeout)`.
    Asynchronous use: ``async for item in subscription`` (history is read in a worker thread).
    Close it when done (it is also a context manager).
    """

    def __init__(
        self,
        history: HistoryPages,
        live: Broadcaster,
        stream: str,
        stream_type: StreamType = "hot-cold",
        *,
        last_order_id: Callable[[], int],
        is_closed: Callable[[], bool],
        from_order_id: int | None = None,
        to_order_id: int | None = None,
        limit: int | None = None,
        buffer: int = 10_000,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        tell_fell_behind: bool = False,
    ) -> None:
        """Made by `EventStore.subscribe`: `history` reads the store (through the read's filter and
        bounds), `live` gives the writer's events, `last_order_id` is the store's last durable
        order-id (a cold replay's end) and `is_closed` tells whether the store closed."""
        check_stream_type(stream_type)
        self.stream = stream
        self.stream_type = stream_type
        self._history = history
        self._live = live
        self._is_closed = is_closed
        plan = history.plan
        self._plan = plan
        self._stream_filter = plan.stream
        self.event_types = plan.event_types
        self.from_time = history.from_time
        self.to_order_id = to_order_id
        self.remaining = limit
        self.buffer = buffer
        self.buffer_bytes = buffer_bytes
        self.tell_fell_behind = tell_fell_behind
        """Whether a `FellBehind` item tells the subscriber when it falls back to the store."""
        self._held_bytes = False  # whether this replay ever held much memory (then give it back at the end)
        self._next_order_id = from_order_id or 1
        self._listener: Listener | None = None
        self._hand_over = 0  # read history up to here, then go live
        self._history_done = False
        self._caught_up_sent = False
        self._pending: deque[Item] = deque()
        self._finished = False
        self._signal = threading.Event()
        self.position = 0
        """Order-id of the last event delivered (0 before any)."""

        if stream_type == "cold":
            self._hand_over = last_order_id()
        else:
            self._register()
            if stream_type == "hot":
                # Live only: nothing to replay, so the subscriber is caught up at once.
                self._next_order_id = self._hand_over + 1
                self._history_done = True
                self._caught_up_sent = True
                self._pending.append(CaughtUp(self._hand_over))
        if to_order_id is not None:
            self._hand_over = min(self._hand_over, to_order_id)

    # -- the state machine ---------------------------------------------------------------

    def _register(self) -> None:
        listener = Listener(self._stream_filter, self.event_types, self.buffer, self._plan.check, self.buffer_bytes)
        listener.add_waker(self._signal.set)
        self._listener = listener
        self._hand_over = self._live.register(listener)
        self._history_done = False

    @property
    def in_history(self) -> bool:
        """True while the next items come from the store (blocking reads)."""
        return not self._history_done

    def poll(self) -> list[Item]:
        """The next items available without waiting for new events; [] when none are (yet).

        May read from the store (blocking) while history is being replayed.
        Raises StopIteration when the replay has ended.
        """
        if self._pending:
            items = list(self._pending)
            self._pending.clear()
            return items
        if self._finished:
            raise StopIteration
        if not self._history_done:
            items = self._read_history()
            if items:
                return items
            if self._finished:
                raise StopIteration
            # History ended on an empty page: go straight on to the live queue, whose events
            # may already have signalled (a wake-up consumed before this poll).
        listener = self._listener
        if listener is None or listener.closed:
            raise StoreClosed("the store was closed")
        if listener.overflowed:
            # Fell behind: catch up from the store, then hand over again.
            log.warning(
                "a subscriber of %s read too slowly: its live buffer passed %d events or %d bytes "
                "(subscription.buffer, subscription.buffer.bytes); it reads from the store again after order-id %d",
                self.stream,
                self.buffer,
                self.buffer_bytes,
                self._next_order_id - 1,
            )
            self._held_bytes = True
            self._register()
            if self.tell_fell_behind:
                self._caught_up_sent = False  # it is told again when it has caught up
            # The history is read by the next call, not here: an asynchronous replay reads it in a
            # thread that asks the store again while it cannot be reached, where an error here would
            # end the replay (and with it, e.g., the projections' live feed).
            return [FellBehind(self._next_order_id - 1)] if self.tell_fell_behind else []
        if not listener.queue:
            return []
        live: list[Item] = []
        queue = listener.queue
        while queue:
            event = queue.popleft()
            listener.queued_bytes -= len(event.data)
            if event.order_id < self._next_order_id:
                continue  # guard; the hand-over already excludes these
            if self.from_time is not None and event.event_time < self.from_time:
                continue
            live.append(event)
            self._next_order_id = event.order_id + 1
            if self._reached_end(event):
                break
        return live

    def _reached_end(self, event: RecordedEvent) -> bool:
        if self.remaining is not None:
            self.remaining -= 1
            if self.remaining <= 0:
                self._finish()
                return True
        if self.to_order_id is not None and event.order_id >= self.to_order_id:
            self._finish()
            return True
        return False

    def _read_history(self) -> list[Item]:
        bound = self._hand_over
        events: list[RecordedEvent] = []
        exhausted = True
        if self._next_order_id <= bound and (self.remaining is None or self.remaining > 0):
            events, self._next_order_id, exhausted = self._history.next_page(self._next_order_id, bound, self.remaining)
        if events:
            self._held_bytes = True
        items: list[Item] = list(events)
        if events and self.remaining is not None:
            self.remaining -= len(events)
            if self.remaining <= 0:
                self._finish()
                return items
        if exhausted:
            # History is delivered up to the hand-over point.
            self._next_order_id = max(self._next_order_id, bound + 1)
            self._history_done = True
            if self.stream_type == "cold" or (self.to_order_id is not None and bound >= self.to_order_id):
                self._finish()
            elif not self._caught_up_sent:
                self._caught_up_sent = True
                items.append(CaughtUp(bound))
        return items

    def _finish(self) -> None:
        self._finished = True
        self._history_done = True
        if self._listener is not None:
            self._live.unregister(self._listener)
            self._listener = None

    # -- synchronous iteration --------------------------------------------------------------

    def get(self, timeout: float | None = None) -> Item | None:
        """The next item, waiting up to `timeout` seconds for a live event (None on time-out).

        Raises StopIteration at the end of a cold replay, and `StoreClosed` if the store closes.
        """
        while True:
            if not self._pending:
                self._signal.clear()
                items = self.poll()
                if not items:
                    if self.in_history:
                        continue  # it fell behind: its history is read next
                    if self._is_closed():
                        raise StoreClosed("the store was closed")
                    if not self._signal.wait(timeout):
                        return None
                    continue
                self._pending.extend(items)
            item = self._pending.popleft()
            if isinstance(item, RecordedEvent):
                self.position = item.order_id
            return item

    def __iter__(self) -> Iterator[Item]:
        return self

    def __next__(self) -> Item:
        item = self.get(None)
        assert item is not None
        return item

    # -- asynchronous iteration --------------------------------------------------------------

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Item:
        batch = await self.next_batch()
        if batch is None:
            raise StopAsyncIteration
        while not batch:
            batch = await self.next_batch()
            if batch is None:
                raise StopAsyncIteration
        first, rest = batch[0], batch[1:]
        self._pending.extendleft(reversed(rest))
        return first

    async def next_batch(self, timeout: float | None = None) -> list[Item] | None:
        """The next items as a list (efficient for streaming); [] on time-out, None at the end."""
        loop = asyncio.get_running_loop()
        # Woken through a plain future with a timer rather than `asyncio.wait_for` on an
        # `asyncio.Event`, which makes a task, a timer and a future at every wait: a live
        # follower waits once per commit it is handed.
        ready: asyncio.Future[bool] = loop.create_future()

        def wake_here() -> None:
            if not ready.done():
                ready.set_result(True)

        def time_out(waiting: asyncio.Future[bool]) -> None:
            if not waiting.done():
                waiting.set_result(False)

        def waker() -> None:
            loop.call_soon_threadsafe(wake_here)

        registered: Listener | None = None
        try:
            while True:
                if self._pending:
                    items = self._poll_or_end()
                elif self.in_history:
                    items = await self._read_history_async()
                else:
                    # Clear, make sure this loop is woken by the current listener, then look:
                    # an event pushed after this point sets `ready` again.
                    if ready.done():
                        ready = loop.create_future()
                    if self._listener is not None and registered is not self._listener:
                        if registered is not None:
                            registered.remove_waker(waker)
                        self._listener.add_waker(waker)
                        registered = self._listener
                    items = self._poll_or_end()
                if items is None:
                    return None
                if items:
                    for item in reversed(items):
                        if isinstance(item, RecordedEvent):
                            self.position = item.order_id
                            break
                    return items
                if self._is_closed():
                    raise StoreClosed("the store was closed")
                if self.in_history or registered is not self._listener:
                    continue  # the replay just moved on (to live, or to a new listener): look again
                if timeout is None:
                    await ready
                    continue
                waiting = ready
                timer = loop.call_later(timeout, time_out, waiting)
                try:
                    woken = await waiting
                finally:
                    timer.cancel()
                if not woken:
                    return []
        finally:
            if registered is not None:
                registered.remove_waker(waker)

    async def _read_history_async(self) -> list[Item] | None:
        """`_poll_or_end` in a worker thread. A store that cannot be reached for a moment (its
        server restarting) is asked again for up to `HISTORY_RETRY_SECONDS`: the replay keeps
        its place, so a live follower that fell back to the store does not end over a blip."""
        deadline = time.monotonic() + HISTORY_RETRY_SECONDS
        while True:
            try:
                return await asyncio.to_thread(self._poll_or_end)
            except BackendUnavailable as exc:
                if time.monotonic() >= deadline or self._is_closed():
                    raise
                log.warning("replay of %s: cannot read the store (%s); trying again", self.stream, exc)
                await asyncio.sleep(0.5)

    def _poll_or_end(self) -> list[Item] | None:
        """`poll`, with the end of the replay as None (StopIteration cannot cross a thread's future)."""
        try:
            return self.poll()
        except StopIteration:
            return None

    # -- life cycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._finish()
        self._pending.clear()
        if self._held_bytes:
            self._held_bytes = False
            memory.give_back()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
