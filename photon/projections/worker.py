"""The projection worker process: holds some projections and folds batches of events into them.

The manager talks to it with the named messages of `photon.projections.messages` on one pipe:
`Add` a projection (resuming from a state after an order-id), `Remove` one, `Fold` a batch of
events (their stored JSON bytes), fold a page of `History` the manager read for several workers
at once (one JSON array), `CatchUp` by reading the store directly (read-only; only when the
worker could open it), `Stop`. It answers `Ready`, `Added`, `Folded` (also part-way through
a long catch-up, with seq None) and `Stopped`.

A report carries a changed projection's whole state as JSON. A live projection whose state is
large (the built-in `__streams__` holds an entry per stream) reports again only once
`REPORT_COST_SHARE` times what its last serialization took has passed; its position and counters
wait with its state (a report is always one state and the position it holds), and a report
held back goes out when it is due, with the next batch or on its own (seq None).

Each event is decoded once per batch and handed to every projection that wants it; folding
runs projection by projection over the decoded batch, so the inner loop stays tight.

The worker publishes what it is folding in a shared array (`progress`: slot, order-id), so the
manager can tell a reduction stuck on one event and kill the worker.
"""

from __future__ import annotations

import gc
import os
import time
import traceback
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from photon.core.data_reads import read_data_arrays
from photon.core.events import category_of, stream_category
from photon.core.gc_pause import BATCH_THRESHOLD, collect_less_often, cycle_collection_paused
from photon.core.stream_metadata import within_bounds
from photon.projections import spool
from photon.projections.child_signals import ignore_stop_signals
from photon.projections.definition import Definition, ProjectionSpec, load
from photon.projections.messages import (
    Add,
    Added,
    CatchUp,
    Failure,
    Fold,
    Folded,
    History,
    Ready,
    Remove,
    Report,
    Stop,
    Stopped,
    ToWorker,
)

IDLE = -1
CATCHUP_PAGE = 5000
CATCHUP_REPORT_EVERY = 100_000
#: The cyclic collector's first threshold in a worker (`gc_pause.BATCH_THRESHOLD`). A batch makes
#: three containers per event (the event dict, its payload, the tuple around them) that reference
#: counting frees; at Python's default of 700 the collector runs every few hundred events and
#: walks the batch each time, which cost more than decoding and folding together (1.4 µs of 2.4 µs
#: an event).
GC_THRESHOLD = BATCH_THRESHOLD
REPORT_COST_SHARE = 60
"""A live report waits at least this many times its state's last serialization: serializing
stays about a sixtieth of a busy worker's time however large the state grows (it is sent whole
with each report). The server pays for each report too, on its event loop (reading the pipe and
unpickling the state, about as much again as the serialization), on the way of every request:
at a twentieth, a megabyte of `__streams__` cost the loop about a tenth of its time. A state of
a few KiB costs microseconds, so it still reports after every batch; a megabyte of state
(several thousand streams in `__streams__`) every several tens of milliseconds instead of after
each of the hundreds of batches a second a busy server feeds."""
MAX_REPORT_WAIT_NS = 1_000_000_000
"""The longest a changed projection's report is held back (1 s)."""


class Running:
    """One projection inside a worker."""

    __slots__ = (
        "category",
        "changed",
        "definition",
        "failed",
        "fold_ns",
        "folded",
        "held",
        "last_event",
        "position",
        "processed",
        "reduction",
        "report_due",
        "slot",
        "state",
        "stream",
        "types",
    )

    def __init__(self, slot: int, definition: Definition, state: Any, position: int, last_event: int, processed: int):
        self.slot = slot
        self.definition = definition
        self.reduction = definition.reduction
        self.stream = None if definition.stream_name == "__all__" else definition.stream_name
        # A category source (`__category__:<name>`) folds every stream of the category.
        self.category = stream_category(definition.stream_name)
        if self.category is not None:
            self.stream = None
        self.types = definition.event_types
        self.state = state
        self.position = position
        self.last_event = last_event
        self.processed = processed
        self.failed = False
        self.changed = True
        self.fold_ns = 0
        self.folded = 0
        self.report_due = 0
        """When a live report of a changed state may be made next (`time.perf_counter_ns`)."""
        self.held = False
        """Whether a live report was held back (until `report_due`)."""

    def report(self) -> Report:
        state = None
        if self.changed:
            # Its cost in this thread's CPU, not the wall clock: on a busy machine a preemption in
            # the middle of a small state's serialization would hold its next reports back as if
            # the state were large.
            started = time.thread_time_ns()
            state = orjson.dumps(self.state)
            cost = time.thread_time_ns() - started
            self.report_due = time.perf_counter_ns() + min(cost * REPORT_COST_SHARE, MAX_REPORT_WAIT_NS)
        report = Report(self.slot, self.position, self.last_event, self.processed, state, self.fold_ns, self.folded)
        self.changed = False
        self.held = False
        self.fold_ns = 0
        self.folded = 0
        return report


Decoded = list[dict[str, Any]]
"""Events as the reductions get them. Each projection's loop reads the order-id (and the stream
and type it filters on) from the dict itself: building a tuple of them per event first cost more
(0.2 µs an event) than the look-ups it saved a worker of two to four projections."""


def decode(datas: Sequence[bytes]) -> Decoded:
    """Decode stored events once."""
    return list(map(orjson.loads, datas))


def decode_page(page: bytes) -> Decoded:
    """Decode a page of stored events joined as one JSON array (`History`, `read_data_arrays`)."""
    events: Decoded = orjson.loads(page)
    return events


def fold(running: Running, events: Decoded, progress: Any) -> Failure | None:
    """Fold decoded events into one projection; returns a failure if its reduction raised."""
    reduction = running.reduction
    state = running.state
    position = running.position
    stream = running.stream
    category = running.category
    types = running.types
    count = 0
    last = running.last_event
    order_id = 0
    # The pair (slot, order-id) must change from one call to the next, or the watchdog would
    # take a projection whose filter skips every event of several batches for a stuck one.
    progress[1] = events[0]["order-id"] if events else 0
    progress[0] = running.slot
    started = time.perf_counter_ns()
    try:
        for event in events:
            order_id = event["order-id"]
            if order_id <= position:
                continue
            if stream is not None and event["stream-name"] != stream:
                continue
            if category is not None and category_of(event["stream-name"]) != category:
                continue
            if types is not None and event["event-type"] not in types:
                continue
            progress[1] = order_id
            state = reduction(state, event)
            count += 1
            last = order_id
    except Exception as exc:
        running.failed = True
        error = f"{type(exc).__name__}: {exc}"
        tb = traceback.extract_tb(exc.__traceback__)
        user_frames = [frame for frame in tb if not frame.filename.endswith("worker.py")]
        if user_frames:
            frame = user_frames[-1]
            error += f" (at {os.path.basename(frame.filename)}, line {frame.lineno})"
        return _account(running, state, count, last, started, failure=(order_id, error))
    finally:
        progress[0] = IDLE
    _account(running, state, count, last, started, failure=None)
    return None


def _account(
    running: Running, state: Any, count: int, last: int, started: int, failure: tuple[int, str] | None
) -> Failure | None:
    running.fold_ns += time.perf_counter_ns() - started
    running.folded += count
    running.processed += count
    if count:
        running.state = state
        running.last_event = last
        running.changed = True
        if failure is None:
            running.position = last
    if failure is None:
        return None
    order_id, error = failure
    running.position = order_id - 1
    try:
        snapshot: bytes | None = orjson.dumps(state)
    except TypeError:
        snapshot = None
    counters = (running.position, running.last_event, running.processed)
    return Failure(running.slot, order_id, error, snapshot, counters if snapshot is not None else None)


class Worker:
    def __init__(self, conn: Any, progress: Any, store_config: Mapping[str, Any] | None) -> None:
        self.conn = conn
        self.progress = progress
        self.projections: dict[int, Running] = {}
        self.pending: deque[ToWorker] = deque()
        self.store: Any = None
        if store_config is not None:
            from photon.core.store import EventStore

            try:
                self.store = EventStore.open(dict(store_config), read_only=True)
            except Exception:
                self.store = None

    def run(self) -> None:
        conn = self.conn
        conn.send(Ready(self.store is not None))
        while True:
            if self.pending:
                message = self.pending.popleft()
            else:
                try:
                    held = self.held_until()
                    if held is not None and not conn.poll(max(0, held - time.perf_counter_ns()) / 1e9):
                        conn.send(Folded(None, self.reports(due_only=True), []))  # what was held, now due
                        continue
                    message = conn.recv()
                except (EOFError, OSError):
                    return
            if isinstance(message, Fold):
                reports, failures = self.fold_batch(decode(message.datas), message.end_order_id)
                conn.send(Folded(message.seq, reports, failures, time.process_time_ns()))
            elif isinstance(message, History):
                page = message.page if isinstance(message.page, bytes) else spool.read(message.page)
                reports, failures = self.fold_history(decode_page(page), message.end_order_id)
                conn.send(Folded(message.seq, reports, failures, time.process_time_ns()))
            elif isinstance(message, CatchUp):
                self.catch_up_merged(message)
            elif isinstance(message, Add):
                conn.send(Added(message.slot, self.add(message)))
            elif isinstance(message, Remove):
                self.projections.pop(message.slot, None)
            elif isinstance(message, Stop):
                conn.send(Stopped(self.reports()))
                return

    def catch_up_merged(self, message: CatchUp) -> None:
        """Catch up, taking in the additions and catch-ups queued right behind this one first.

        Projections registered together (at start-up, from `__config__`) then share one read of
        the store instead of one each. Only consecutive additions and catch-ups are merged, so
        every message still takes effect in the order it was sent.
        """
        conn = self.conn
        seqs = [message.seq]
        to_order_id = message.to_order_id
        while not self.pending and conn.poll(0):
            follower = conn.recv()
            if isinstance(follower, Add):
                conn.send(Added(follower.slot, self.add(follower)))
            elif isinstance(follower, CatchUp):
                seqs.append(follower.seq)
                to_order_id = max(to_order_id, follower.to_order_id)
            else:
                self.pending.append(follower)  # handled after the catch-up, in order
        reports, failures = self.catch_up(to_order_id)
        for seq in seqs[:-1]:
            conn.send(Folded(seq, [], []))
        conn.send(Folded(seqs[-1], reports, failures, time.process_time_ns()))

    def add(self, message: Add) -> str | None:
        slot = message.slot
        # Loading runs the definition's code: the watchdog sees it as the projection at order-id 0.
        self.progress[1] = 0
        self.progress[0] = slot
        try:
            definition = load(ProjectionSpec.from_payload(message.spec))
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            self.progress[0] = IDLE
        try:
            # A checkpoint's state can be a million small containers (`__streams__` at 1M
            # streams): collections during the decode would walk them again and again (measured:
            # 25 s against 9 for 148 MiB). They are frozen before the collector runs again (with
            # what the definition loaded: both live as long as the worker): its first collection
            # would otherwise walk them all once more (0.35 s of CPU at 1M streams), and the
            # collections after them in the older generations.
            state_json = message.state_json
            with cycle_collection_paused():
                state = orjson.loads(state_json if isinstance(state_json, bytes) else spool.read(state_json))
                gc.freeze()
        except orjson.JSONDecodeError as exc:
            return f"its state is not JSON: {exc}"
        except OSError as exc:  # the manager closed the file: it is gone, or gave up on this worker
            return f"its state could not be read: {exc}"
        running = Running(slot, definition, state, message.position, message.last_event, message.processed)
        # A resumed state is the one the manager holds (it sent this JSON): reported back at once,
        # it would be serialized, sent and read again for nothing (the 148 MiB of `__streams__`
        # at 1M streams: about half a second of the worker, and the manager's loop reading it,
        # ahead of the next message, a `Stop` too). A new projection's first report is its
        # initial value.
        running.changed = message.position == 0
        self.projections[slot] = running
        return None

    def live(self) -> list[Running]:
        return [r for r in self.projections.values() if not r.failed]

    def fold_batch(self, events: Decoded, end_order_id: int) -> tuple[list[Report], list[Failure]]:
        failures: list[Failure] = []
        for running in self.live():
            failure = fold(running, events, self.progress)
            if failure is not None:
                failures.append(failure)
            elif running.position < end_order_id:
                running.position = end_order_id
        return self.reports(due_only=True), failures

    def fold_history(self, events: Decoded, end_order_id: int) -> tuple[list[Report], list[Failure]]:
        """Fold a page of history into the projections behind its end (the others are past it)."""
        behind = [r for r in self.live() if r.position < end_order_id]
        failures = self._fold_some(behind, events, self._stream_bounds(behind))
        for running in behind:
            if not running.failed and running.position < end_order_id:
                running.position = end_order_id
        return self.reports(due_only=True), failures

    def catch_up(self, to_order_id: int) -> tuple[list[Report], list[Failure]]:
        """Read history straight from the store for the projections behind `to_order_id`."""
        behind = [r for r in self.live() if r.position < to_order_id]
        failures: list[Failure] = []
        if not behind:
            return self.reports(), failures
        streams = {r.definition.stream_name for r in behind}
        stream = streams.pop() if len(streams) == 1 else "__all__"
        types = behind[0].types if len(behind) == 1 else None
        start = min(r.position for r in behind) + 1
        since_report = 0
        bounds = self._stream_bounds(behind)
        pages = read_data_arrays(
            self.store, stream, from_order_id=start, to_order_id=to_order_id, event_types=types, max_events=CATCHUP_PAGE
        )
        for count, _, page in pages:
            failures.extend(self._fold_some(behind, decode_page(page), bounds))
            since_report += count
            if since_report >= CATCHUP_REPORT_EVERY:
                since_report = 0
                self.conn.send(Folded(None, self.reports(), failures))
                failures = []
        for running in behind:
            if not running.failed and running.position < to_order_id:
                running.position = to_order_id
        return self.reports(), failures

    def _stream_bounds(self, runnings: list[Running]) -> dict[int, tuple[int | None, int | None]]:
        """The first version and event-time a read of its stream shows, for each of `runnings` over
        one stream whose metadata bounds its reads: history read for several projections at once
        (`__all__`) holds the events such metadata hides, which a projection over the stream does
        not fold, as no read of the stream returns them."""
        bounds: dict[int, tuple[int | None, int | None]] = {}
        if self.store is None:
            return bounds  # history comes from the manager, one projection's own stream at a time
        for running in runnings:
            if running.stream is not None:
                version, earliest = self.store.read_bounds(running.stream, None, None)
                if version is not None or earliest is not None:
                    bounds[running.slot] = (version, earliest)
        return bounds

    def _fold_some(
        self, runnings: list[Running], events: Decoded, bounds: dict[int, tuple[int | None, int | None]] | None = None
    ) -> list[Failure]:
        failures = []
        for running in runnings:
            if running.failed:
                continue
            shown = events
            bound = bounds.get(running.slot) if bounds else None
            if bound is not None:
                version, earliest = bound
                shown = [
                    e
                    for e in events
                    if e["stream-name"] == running.stream
                    and within_bounds(e["stream-version"], e["event-time"], version, earliest)
                ]
                if not shown:
                    continue  # nothing of its stream to show: its position moves past the page all the same
            failure = fold(running, shown, self.progress)
            if failure is not None:
                failures.append(failure)
        return failures

    def held_until(self) -> int | None:
        """When the first report held back is due (`time.perf_counter_ns`); None when none is held."""
        due = [r.report_due for r in self.projections.values() if r.held and not r.failed]
        return min(due) if due else None

    def reports(self, *, due_only: bool = False) -> list[Report]:
        """Every projection's report; with `due_only` (live folds), a changed projection's only
        when it is due (see `REPORT_COST_SHARE`), the others' held back until then."""
        out: list[Report] = []
        now = time.perf_counter_ns() if due_only else 0
        for running in self.projections.values():
            if running.failed:
                continue
            if due_only and running.changed and now < running.report_due:
                running.held = True
                continue
            try:
                out.append(running.report())
            except TypeError as exc:
                # The reduction returned something that is not JSON: fail it where it happened.
                running.failed = True
                failure = Failure(running.slot, running.last_event, f"the state is not JSON data: {exc}", None)
                self.conn.send(Folded(None, [], [failure]))
        return out


def main(conn: Any, progress: Any, store_config: Mapping[str, Any] | None) -> None:
    """Entry point of a worker process."""
    ignore_stop_signals()  # the manager stops its workers (child_signals)
    progress[0] = IDLE
    collect_less_often()
    worker = Worker(conn, progress, store_config)
    gc.freeze()  # modules and the store's connection stay for the worker's life
    worker.run()
