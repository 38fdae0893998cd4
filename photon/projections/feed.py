"""The projections' feed: live events to every worker, history to the projections behind, flow control.

At start the feed notes the head of `__all__` and subscribes to everything after it; each
worker gets the live events in batches, as their stored bytes: the feed takes them from the
committer's hand-off, never reads or decodes them, and each worker decodes what it gets.
(Workers reading live events from the store themselves, told only how far to read, was measured
and cost more: 4 to 5 µs of worker CPU an event instead of 2.7 to 3.2, for 0.5 µs less in the
manager; see docs/benchmarks.md.)

A projection that is behind (new, resumed from a checkpoint, or moved to a new worker) catches
up to the last order-id already sent to its worker: the worker reads the store itself
(read-only) when the backend allows another process to read it, otherwise the feed reads and
sends the history. At start, workers behind on the same source share one read: the feed reads
each page once and sends it to each of them (`assign_all`). Either way the history reaches the
worker before any later live batch, so no event is folded twice or missed.

Live events are sent at most every `LIVE_INTERVAL`: the events of the commits that come in the
meantime wait in the feed's subscription and go in the next batch together. A server taking one
small commit at a time (an application saving one aggregate per request) would otherwise send
each worker a message per commit, and its answer back, whose cost per message (the pipe, the
worker's wake-up, its reports) was most of what the projections cost per commit. A busy store
(`BUSY_RATE` events a second or more since the last batch) is fed every `BUSY_INTERVAL`
instead: the cost per message is then paid per more events, on a machine whose cores the
requests need, while a quieter store's projections still follow within `LIVE_INTERVAL`.

Flow control: a worker has at most `MAX_IN_FLIGHT` batches unanswered. The feed waits for one
that cannot read the store; one that can is marked lagging instead, skipped, and later reads
what it missed from the store, so a slow projection does not hold the others up.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterator
from operator import attrgetter

from photon.core.data_reads import read_data_arrays
from photon.core.errors import BackendError, StoreClosed
from photon.core.events import ALL_STREAM, RecordedEvent, stream_category
from photon.core.store import EventStore
from photon.projections import spool
from photon.projections.messages import Add, CatchUp, Fold, History
from photon.projections.pool import WorkerHandle
from photon.projections.registry import Projection, Registry

log = logging.getLogger("photon.projections")

BATCH = 5000
MAX_IN_FLIGHT = 4
LIVE_INTERVAL = 0.005
"""Seconds at least between two live batches: the most a live event waits for the commits after it."""
BUSY_RATE = 2000
"""Events a second, counted over the time since the last live batch, from which the store is busy."""
BUSY_INTERVAL = 0.02
"""Seconds at least between two live batches while the store is busy (see `BUSY_RATE`). With
single-event emits from 32 HTTP clients (about 7,000 a second), batches every 5 ms cost the
projection worker 8 to 11 µs of CPU per event and every 20 ms 4 to 5 (`benchmarks.emit_groups
--threads`): its wake-up, the pipe, its report and the report's read on the event loop are paid
once per batch, on the same two cores as the requests."""
HAND_STATE = 1 << 20
"""Bytes of JSON from which a projection's state goes to its worker in a memory file (`spool.hand`)
rather than in its `Add` through the pipe."""
SPOOL_SECONDS = 10.0
"""How long the pages of a shared read stopped part-way stay readable (the workers' time to stop)."""

_DATA = attrgetter("data")  # RecordedEvent.data


class Flow:
    """What the feed has sent one worker: how far, and how many batches are still unanswered."""

    __slots__ = ("drained", "in_flight", "lagging", "lock", "sent_to", "seq")

    def __init__(self, sent_to: int) -> None:
        self.sent_to = sent_to
        """The last order-id covered by the batches sent to the worker."""
        self.seq = 0
        self.in_flight = 0
        self.lagging = False
        """Skipped by the live feed while too far behind; it reads what it missed from the store."""
        self.drained = asyncio.Event()
        self.drained.set()
        self.lock = asyncio.Lock()
        """Held while sending, so that no live batch slips in between a projection's history."""

    def track(self) -> int:
        """Count one more batch unanswered; the sequence number it is sent with."""
        self.seq += 1
        self.in_flight += 1
        if self.in_flight >= MAX_IN_FLIGHT:
            self.drained.clear()
        return self.seq

    def answered(self) -> bool:
        """Count a batch answered; whether the worker should now read what it missed."""
        self.in_flight -= 1
        if self.in_flight < MAX_IN_FLIGHT:
            self.drained.set()
        return self.lagging and self.in_flight == 0


class Feed:
    """Feeds the workers of `workers` (a list kept by the supervisor) the events of `store`."""

    def __init__(
        self,
        store: EventStore,
        registry: Registry,
        workers: list[WorkerHandle],
        broken: Callable[[WorkerHandle], None],
    ) -> None:
        self.store = store
        self.registry = registry
        self.workers = workers
        self._broken = broken
        """Called with a worker whose projections could not be brought up (it is killed then)."""
        self.flows: dict[WorkerHandle, Flow] = {}
        self.position = 0
        """The last order-id handed to the workers."""
        self.resyncs = 0
        """How often a worker that fell behind the live feed caught up from the store instead."""
        self.spool = spool.available()
        """Whether shared history and large states go to the workers in memory files (else
        through their pipes)."""
        self.handed: dict[int, tuple[WorkerHandle, int]] = {}
        """The memory files of the states handed to workers and not taken yet: by slot, the
        worker and the file's descriptor (closed by `taken`, or when the worker goes)."""

    def attach(self, w: WorkerHandle) -> None:
        """A new worker: it is sent the live events after the feed's position."""
        self.flows[w] = Flow(self.position)

    def detach(self, w: WorkerHandle) -> None:
        """A worker is gone: whatever waits for it to answer batches (`_drained`) stops waiting.

        A worker killed with `MAX_IN_FLIGHT` batches unanswered never answers them; a shared read
        of history waiting for it held the other workers' locks, so they got neither the rest of
        their history nor any live event."""
        flow = self.flows.pop(w, None)
        if flow is not None:
            flow.drained.set()
        for slot in [slot for slot, (to, _) in self.handed.items() if to is w]:
            self.taken(slot, w)

    def taken(self, slot: int, w: WorkerHandle) -> None:
        """Worker `w` has answered the `Add` of `slot` (or is gone): the file its state was
        handed in goes."""
        handed = self.handed.get(slot)
        if handed is not None and handed[0] is w:
            del self.handed[slot]
            os.close(handed[1])

    def close(self) -> None:
        """Close the files of the states not taken (the workers are stopped)."""
        for slot, (w, _) in list(self.handed.items()):
            self.taken(slot, w)

    def lagging(self) -> bool:
        """Whether a worker is behind the live feed (it reads what it missed from the store)."""
        return any(flow.lagging for flow in self.flows.values())

    def answered(self, w: WorkerHandle) -> bool:
        """A batch sent to `w` was answered; whether it should now read what it missed."""
        flow = self.flows.get(w)
        return flow is not None and flow.answered()

    # -- bringing projections up ---------------------------------------------------------------

    async def assign(self, w: WorkerHandle, projections: list[Projection]) -> None:
        """Start projections on their worker and bring them up to what that worker has been sent.

        All under the worker's lock, so no live batch slips in between. A worker that reads the
        store gets one catch-up for all of them (one read of the store); otherwise each
        projection's history follows its addition, before the next projection is added.
        """
        flow = self.flows.get(w)
        if flow is None:
            return  # the worker died and was replaced since: its replacement took the projections
        async with flow.lock:
            target = flow.sent_to
            try:
                await self._start_on(w, flow, projections, target)
            except Exception as exc:
                # The history did not reach the worker (the store could not be read): the live
                # batches that follow would be folded after a gap. The worker goes, and its
                # replacement starts every projection again from its last reported position.
                log.warning(
                    "projection worker %d: could not bring its projections up to order-id %d (%s); restarting it",
                    w.index,
                    target,
                    exc,
                )
                w.kill()
                self._broken(w)

    async def _start_on(self, w: WorkerHandle, flow: Flow, projections: list[Projection], target: int) -> None:
        if w.reads_store:
            if self._add(w, projections, target):
                w.send(CatchUp(flow.track(), target))
            return
        # Each projection's history follows its addition, before the next projection is added:
        # a batch of history moves every projection of the worker past its end.
        for projection in projections:
            for behind in self._add(w, [projection], target):
                await self._send_history(w, flow, behind, target)

    def _add(self, w: WorkerHandle, projections: list[Projection], target: int) -> list[Projection]:
        """Send `w` its projections; returns those behind `target`, which must catch up to it."""
        behind = []
        for projection in projections:
            projection.catch_up_target = target
            w.send(
                Add(
                    projection.slot,
                    projection.spec.to_payload(),
                    self._state_for(w, projection),
                    projection.position,
                    projection.last_event,
                    projection.processed,
                )
            )
            if projection.position >= target:
                if projection.catch_up_ms is None:
                    projection.catch_up_ms = 0.0
                continue
            behind.append(projection)
        return behind

    def _state_for(self, w: WorkerHandle, projection: Projection) -> bytes | str:
        """A projection's state for its `Add`: the JSON, or a large one's memory file."""
        state = projection.state_json
        if not self.spool or len(state) < HAND_STATE:
            return state
        previous = self.handed.get(projection.slot)
        if previous is not None:  # handed to a worker that went before it took it
            self.taken(projection.slot, previous[0])
        fd, path = spool.hand(state)
        self.handed[projection.slot] = (w, fd)
        return path

    async def assign_all(self, assignments: dict[WorkerHandle, list[Projection]]) -> list[asyncio.Task[None]]:
        """`assign` for several workers at once (the whole pool, at start): workers behind on the
        same source share one read of the store.

        Each worker that reads the store would read and decode every event of its projections'
        source itself: with two workers on `__all__` that is the same history read twice, about
        half of each worker's catch-up (0.85 µs an event to read, 1 µs to decode, 0.2 µs a simple
        projection's fold). Instead the feed reads it once and sends each page to each of them as
        one JSON array (`History`): the workers decode and fold, and the pages come as fast as
        the slowest takes them. A worker alone on its source reads it itself, as in `assign`.
        Returns the tasks sending the shared history (they hold the workers' locks until done).
        """
        groups: dict[tuple[str, int], list[tuple[WorkerHandle, list[Projection]]]] = {}
        for w, projections in assignments.items():
            flow = self.flows.get(w)
            if flow is None:
                continue
            behind = [p for p in projections if p.position < flow.sent_to]
            if not w.reads_store or not behind:
                await self.assign(w, projections)
                continue
            groups.setdefault((_source(behind), flow.sent_to), []).append((w, projections))
        tasks = []
        for (source, target), members in groups.items():
            if len(members) < 2:
                for w, projections in members:
                    await self.assign(w, projections)
                continue
            # Taken here, before any live batch can be sent (an unheld lock is taken at once).
            flows = [self.flows[w] for w, _ in members]
            for flow in flows:
                await flow.lock.acquire()
            readers = []
            for w, projections in members:
                behind = self._add(w, projections, target)
                readers.append((w, self.flows[w], min(p.position for p in behind)))
            types = _common_types([p for _, projections in members for p in projections if p.position < target])
            tasks.append(
                asyncio.create_task(
                    self._share_history(source, target, types, readers), name=f"projections-history-{source}"
                )
            )
        return tasks

    async def _share_history(
        self, source: str, target: int, types: frozenset[str] | None, readers: list[tuple[WorkerHandle, Flow, int]]
    ) -> None:
        """Read `source` up to `target` once and send each page to every reader past its start,
        in a memory file where there are (`spool`); then release the readers' locks (taken by
        `assign_all`)."""
        # One slot more than a reader may have unanswered: see `keep_last` below.
        shared = spool.Spool(MAX_IN_FLIGHT + 1) if self.spool else None
        try:
            start = min(position for _, _, position in readers) + 1
            pages = read_data_arrays(
                self.store, source, from_order_id=start, to_order_id=target, event_types=types, max_events=BATCH
            )
            # A page goes into the slot of the page MAX_IN_FLIGHT + 1 before it, which every
            # reader it was sent to has answered: each had at most MAX_IN_FLIGHT - 1 pages
            # unanswered when it was sent the page before this one (readers skipped for a page
            # were skipped for every page before it too).
            while (page := await asyncio.to_thread(_next_page, pages, shared)) is not None:
                last, joined = page
                for w, flow, position in readers:
                    if last > position and w.alive:
                        await _drained(w, flow)
                        w.send(History(flow.track(), joined, last))
            for w, flow, _ in readers:  # every projection behind is at the target now, events or not
                w.send(History(flow.track(), b"[]", target))
            if shared is not None:
                for w, flow, _ in readers:
                    while w.alive and flow.in_flight:
                        await asyncio.sleep(0.005)
                shared.close()
        except Exception as exc:
            # As in `assign`: a worker that did not get its whole history goes, and its
            # replacement starts its projections again from their last reported positions.
            log.warning("projection workers: could not read their history up to order-id %d (%s)", target, exc)
            for w, _, _ in readers:
                w.kill()
                self._broken(w)
        finally:
            for _, flow, _ in readers:
                flow.lock.release()
            if shared is not None and not shared.closed:
                # Stopped part-way: the workers may still read the pages sent, until they stop.
                asyncio.get_running_loop().call_later(SPOOL_SECONDS, shared.close)

    async def _send_history(self, w: WorkerHandle, flow: Flow, projection: Projection, target: int) -> None:
        """Read a projection's history here and send it in batches (for in-process backends)."""
        stream = projection.stream_name
        start = projection.position + 1
        while start <= target:
            page = await asyncio.to_thread(_read_page, self.store, stream, start, target, BATCH)
            end = page[-1].order_id if len(page) == BATCH else target
            await _drained(w, flow)
            w.send(Fold(flow.track(), [e.data for e in page], end))
            start = end + 1

    async def resync(self, w: WorkerHandle) -> None:
        """A worker that fell behind the live feed reads what it missed from the store."""
        flow = self.flows.get(w)
        if flow is None:
            return
        async with flow.lock:
            if not flow.lagging or not w.alive:
                return
            flow.lagging = False
            self.resyncs += 1
            flow.sent_to = self.position
            w.send(CatchUp(flow.track(), self.position))

    # -- the live feed -----------------------------------------------------------------------

    async def run(self) -> None:
        """Hand every event after the feed's position to the workers, until the store closes."""
        subscription = self.store.subscribe(ALL_STREAM, "hot-cold", from_order_id=self.position + 1)
        loop = asyncio.get_running_loop()
        next_send = last_sent = 0.0
        try:
            while True:
                pause = next_send - loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)  # the commits meanwhile go in one batch
                try:
                    batch = await subscription.next_batch(timeout=1.0)
                except StoreClosed:
                    return
                except BackendError as exc:
                    # The replay gave up on a store it could not read for long: start it again
                    # right after the last event handed to the workers, rather than stop feeding.
                    log.warning("the projections' live feed cannot read the store (%s); trying again", exc)
                    subscription.close()
                    await asyncio.sleep(1.0)
                    subscription = self.store.subscribe(ALL_STREAM, "hot-cold", from_order_id=self.position + 1)
                    continue
                if batch is None:
                    return
                events = [item for item in batch if type(item) is RecordedEvent]  # without the markers
                if events:
                    now = loop.time()
                    busy = len(events) >= BUSY_RATE * (now - last_sent)
                    next_send = now + (BUSY_INTERVAL if busy else LIVE_INTERVAL)
                    last_sent = now
                    # The writer woke the loop for this commit's callers too: their answers go
                    # out first, the batch after them.
                    await asyncio.sleep(0)
                for start in range(0, len(events), BATCH):
                    chunk = events[start : start + BATCH]
                    self.position = chunk[-1].order_id
                    for w in list(self.workers):
                        await self._dispatch(w, chunk)
        finally:
            subscription.close()

    async def _dispatch(self, w: WorkerHandle, chunk: list[RecordedEvent]) -> None:
        end = chunk[-1].order_id
        flow = self.flows.get(w)
        if flow is None:
            return
        async with flow.lock:
            sent_to = flow.sent_to
            if not w.alive or sent_to >= end or flow.lagging:
                return
            streams = self._streams_of(w)
            if streams is not None and not streams:
                flow.sent_to = end  # nothing here wants events
                return
            if flow.in_flight >= MAX_IN_FLIGHT:
                if w.reads_store:
                    # Do not hold the others up: this worker reads what it missed from the store later.
                    flow.lagging = True
                    return
                await _drained(w, flow)
            if streams is None and chunk[0].order_id > sent_to:
                datas = list(map(_DATA, chunk))  # all of it (the usual case for `__all__` readers)
            else:
                datas = [
                    e.data for e in chunk if e.order_id > sent_to and (streams is None or e.stream_name in streams)
                ]
            w.send(Fold(flow.track(), datas, end))
            flow.sent_to = end

    def _streams_of(self, w: WorkerHandle) -> set[str] | None:
        """The streams a worker's running projections read; None when one reads `__all__`."""
        streams: set[str] = set()
        by_slot = self.registry.by_slot
        for slot in w.slots:
            projection = by_slot.get(slot)
            if projection is None or not projection.status.on_worker:
                continue
            if projection.stream_name == ALL_STREAM or stream_category(projection.stream_name) is not None:
                return None
            streams.add(projection.stream_name)
        return streams


async def _drained(w: WorkerHandle, flow: Flow) -> None:
    while w.alive and flow.in_flight >= MAX_IN_FLIGHT:
        await flow.drained.wait()


def _source(behind: list[Projection]) -> str:
    """What a worker reads for the projections `behind` (as the worker's own catch-up does):
    their stream when they share one, else `__all__` (each projection filters its events)."""
    streams = {p.stream_name for p in behind}
    return streams.pop() if len(streams) == 1 else ALL_STREAM


def _common_types(behind: list[Projection]) -> frozenset[str] | None:
    """The event types to read for `behind`: theirs when they all have the same, else every type."""
    kinds = {p.event_types for p in behind}
    return kinds.pop() if len(kinds) == 1 else None


def _next_page(pages: Iterator[tuple[int, int, bytes]], shared: spool.Spool | None) -> tuple[int, bytes | str] | None:
    """The next page of history: its last order-id, and the page or (with a spool) its path."""
    page = next(pages, None)
    if page is None:
        return None
    _, last, joined = page
    return last, joined if shared is None else shared.put(joined)


def _read_page(store: EventStore, stream: str, start: int, end: int, limit: int) -> list[RecordedEvent]:
    return list(store.read(stream, from_order_id=start, to_order_id=end, limit=limit))
