"""The projection manager: the set of projections, the worker pool feeding them, checkpoints.

The set of projections is kept in `__config__`: every registration (`projection-registered`,
with the definition and its source) and deletion (`projection-deleted`) is an event there, and
start-up rebuilds the set by reading it, so a store restored from a backup of `__all__` brings
its projections back. Files in `projections.path` are registered through the same events.

Feeding: at start the manager notes the head of `__all__` (H) and subscribes to everything
after it; each worker gets the live events in batches, as their stored bytes: the manager takes
them from the committer's hand-off, never reads or decodes them, and each worker decodes what it
gets. (Workers reading live events from the store themselves, told only how far to read, was
measured and cost more: 4 to 5 µs of worker CPU an event instead of 2.7 to 3.2, for 0.5 µs less
in the manager; see docs/benchmarks.md.) A projection that is behind (new, resumed from a
checkpoint, or moved to a new worker) catches up to the last order-id already sent to its
worker: the worker reads the store itself (read-only) when the backend allows another process
to read it, otherwise the manager reads and sends the history. Either way the history reaches
the worker before any later live batch, so no event is folded twice or missed.

Every fold reply carries each projection's position and, when it changed, its state as JSON:
that is the projection's `current-value`, what is checkpointed and what update followers get.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from operator import attrgetter
from pathlib import Path
from typing import Any

import orjson

from photon.core.errors import BackendError, NotFound, StoreClosed, ValidationError
from photon.core.events import ALL_STREAM, CONFIG_STREAM, RecordedEvent, stream_category
from photon.core.store import EventStore
from photon.projections import worker as worker_module
from photon.projections.checking import Checked, Checker, check_here
from photon.projections.definition import (
    EXTENSIONS,
    DefinitionError,
    ProjectionSpec,
    cannot_run,
    spec_from_file,
    spec_from_template,
)
from photon.projections.offline import (
    DELETED,
    REGISTERED,
    STREAMS_PROJECTION,
    builtin_streams_spec,
    checkpoint_key,
    key_of,
    registered,
)
from photon.projections.pool import WorkerHandle
from photon.server.net import tcp_tls
from photon.server.projection_updates import ProjectionUpdatesServer
from photon.server.tokens import TokenSigner

#: The example projections shipped with Photon (the repository's `projections` folder links here).
EXAMPLES_FOLDER = Path(__file__).resolve().parent.parent / "examples" / "projections"

log = logging.getLogger("photon.projections")

BATCH = 5000
MAX_IN_FLIGHT = 4
UPDATE_QUEUE = 256


_DATA = attrgetter("data")  # RecordedEvent.data


@dataclass
class Projection:
    """The manager's view of one projection."""

    spec: ProjectionSpec
    slot: int
    stream_name: str = ALL_STREAM
    event_types: frozenset[str] | None = None
    initial_value: Any = None
    status: str = "running"
    last_error: str | None = None
    failed_at: int | None = None
    state_json: bytes = b"null"
    position: int = 0
    last_event: int = 0
    processed: int = 0
    fold_ns: int = 0
    folded: int = 0
    worker: WorkerHandle | None = None
    started_at: float = field(default_factory=time.monotonic)
    started_epoch_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    catch_up_target: int = 0
    catch_up_ms: float | None = None
    checkpointed_position: int = -1
    checkpointed_at: float = field(default_factory=time.monotonic)
    resumed_from: int = 0
    followers: set[asyncio.Queue[bytes | None]] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.spec.name

    def descriptor(self, *, with_value: bool = True) -> dict[str, Any]:
        avg_us = (self.fold_ns / self.folded / 1000) if self.folded else None
        out: dict[str, Any] = {
            "projection-name": self.name,
            "stream-name": self.stream_name,
            "language": self.spec.language,
            "event-types": sorted(self.event_types) if self.event_types is not None else None,
            "origin": self.spec.origin,
            "path": self.spec.path,
            "status": self.status,
            "processed": self.processed,
            "last-event": self.last_event,
            "position": self.position,
            "last-error": self.last_error,
            "failed-at": self.failed_at,
            "init-time": self.started_epoch_ms,
            "catch-up-ms": self.catch_up_ms,
            "resumed-from": self.resumed_from,
            "avg-time": avg_us,
            "initial-value": self.initial_value,
        }
        if with_value:
            out["reduction"] = self.spec.source
            out["current-value"] = orjson.loads(self.state_json)
        return out


@dataclass(frozen=True)
class _Snapshot:
    """A projection's checkpoint as taken on the event loop: its position and the value to store."""

    projection: Projection
    position: int
    value: dict[str, Any]


class ProjectionManager:
    """Runs every projection of a store. A service: ``ProjectionManager(store, config)``, ``await start()``."""

    def __init__(self, store: EventStore, config: Mapping[str, Any]) -> None:
        self.store = store
        self.config = config
        self.workers_wanted = int(config.get("parallel.projections") or 1)
        self.timeout = float(config.get("projections.timeout") or 10.0)
        self.checkpoint_events = int(config.get("projections.checkpoint.events") or 10_000)
        self.checkpoint_seconds = float(config.get("projections.checkpoint.seconds") or 5.0)
        path = config.get("projections.path")
        self.folder: Path | None = Path(path) if path else None
        self.watch = bool(config.get("projections.watch", True))
        self.projections: dict[str, Projection] = {}
        self.by_slot: dict[int, Projection] = {}
        self.workers: list[WorkerHandle] = []
        self.feed_position = 0
        self.started = False
        self.stopping = False
        self._next_slot = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: dict[int, asyncio.Future[None]] = {}
        self._all_followers: set[asyncio.Queue[bytes | None]] = set()
        self._changes = asyncio.Lock()
        self._watch_stop: asyncio.Event | None = None
        self._worker_store_config = self._store_config()
        self.replaced_workers = 0
        self.resyncs = 0
        """How often a worker that fell behind the live feed caught up from the store instead."""
        self._deaths: list[float] = []
        self.updates_server: ProjectionUpdatesServer | None = None
        self.checker = Checker(self.timeout)
        self._checkpoint_writes = threading.Lock()

    # -- life cycle --------------------------------------------------------------------------

    def _store_config(self) -> dict[str, str] | None:
        """What a worker needs to open the same store read-only, or None when it cannot."""
        backend = self.store.backend
        if backend.in_process:  # workers cannot open it themselves: the feed carries everything
            return None
        config = getattr(backend, "config", None) or self.config
        return {key: str(value) for key, value in config.items() if value is not None and "." in key}

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.workers = [self._new_worker(index) for index in range(self.workers_wanted)]
        try:
            await asyncio.gather(*(self._wait_ready(w) for w in self.workers))
        except BaseException:
            self.stopping = True
            for w in self.workers:
                w.kill()
            raise
        self.feed_position = self.store.last_order_id()
        for w in self.workers:
            w.sent_to = self.feed_position
        registered = await asyncio.to_thread(self._read_config)
        builtin = builtin_streams_spec()
        starting = [self._install(builtin, check_here(builtin), resume=True, schedule=False)]
        for spec in registered.values():
            starting.append(self._install(spec, await self.checker.check(spec), resume=True, schedule=False))
        for w in self.workers:
            await self._assign(w, [p for p in starting if p.worker is w])
        self.started = True
        self._tasks.append(asyncio.create_task(self._feed(), name="projections-feed"))
        self._tasks.append(asyncio.create_task(self._watchdog(), name="projections-watchdog"))
        self._tasks.append(asyncio.create_task(self._checkpointer(), name="projections-checkpoints"))
        port = self.config.get("projections.port")
        if port is not None:
            self.updates_server = ProjectionUpdatesServer(
                self,
                TokenSigner.from_config(self.config),
                str(self.config.get("rest.host") or "127.0.0.1"),
                port,
                tcp_tls(self.config),
            )
            await self.updates_server.start()
        self._report_folder()
        if self.folder is not None and self.folder.is_dir():
            await self.sync_folder()
            if self.watch:
                self._watch_stop = asyncio.Event()
                self._tasks.append(asyncio.create_task(self._watch_folder(), name="projections-watch"))

    async def stop(self) -> None:
        """Stop feeding, collect every worker's final states, checkpoint them, stop the workers."""
        if self.stopping:
            return
        self.stopping = True
        if self._watch_stop is not None:
            self._watch_stop.set()
        if self.updates_server is not None:
            await self.updates_server.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        loop = asyncio.get_running_loop()
        for w in self.workers:
            if w.alive:
                self._stopped[id(w)] = loop.create_future()
                w.send(("stop",))
        waits = [f for f in self._stopped.values() if not f.done()]
        if waits:
            await asyncio.wait(waits, timeout=10)
        await asyncio.gather(*(asyncio.to_thread(w.close, 2.0) for w in self.workers))
        await asyncio.to_thread(self.checker.close)
        if not self.store.closed:
            await asyncio.to_thread(self._write_checkpoints, self._snapshots(list(self.projections.values())))
        for projection in self.projections.values():
            if projection.status == "running":
                projection.status = "stopped"
            for queue in projection.followers:
                _offer(queue, None)
        for queue in self._all_followers:
            _offer(queue, None)

    # -- workers -------------------------------------------------------------------------------

    def _new_worker(self, index: int) -> WorkerHandle:
        assert self._loop is not None
        return WorkerHandle(index, self._worker_store_config, self._on_message, self._on_exit, self._loop)

    async def _wait_ready(self, w: WorkerHandle) -> None:
        deadline = time.monotonic() + 60
        while not w.ready.is_set():
            if not w.process.is_alive() and not w.ready.is_set():
                raise RuntimeError(f"projection worker {w.index} exited at start (exit code {w.process.exitcode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"projection worker {w.index} did not start within 60 s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(w.ready.wait(), timeout=0.1)

    def _pick_worker(self) -> WorkerHandle:
        # A dead worker's projections move to its replacement, so it may be picked too.
        alive = [w for w in self.workers if w.alive] or self.workers
        return min(alive, key=lambda w: len(w.slots))

    def _on_message(self, w: WorkerHandle, message: Any) -> None:
        kind = message[0]
        if kind == "folded":
            _, seq, reports, failures = message
            if seq is not None:
                w.in_flight -= 1
                if w.in_flight < MAX_IN_FLIGHT:
                    w.drained.set()
                if w.lagging and w.in_flight == 0 and not self.stopping:
                    asyncio.get_running_loop().create_task(self._resync(w))
            self._apply_reports(reports)
            for slot, order_id, error, snapshot in failures:
                projection = self.by_slot.get(slot)
                if projection is not None and projection.worker is w:
                    self._fail(projection, error, order_id, snapshot)
        elif kind == "ready":
            w.reads_store = bool(message[1])
            w.ready.set()
        elif kind == "added":
            _, slot, error = message
            projection = self.by_slot.get(slot)
            if error is not None and projection is not None:
                self._fail(projection, error, None, None)
        elif kind == "stopped":
            self._apply_reports(message[1])
            future = self._stopped.get(id(w))
            if future is not None and not future.done():
                future.set_result(None)

    def _apply_reports(self, reports: list[worker_module.Report]) -> None:
        for slot, position, last_event, processed, state, fold_ns, folded in reports:
            projection = self.by_slot.get(slot)
            if projection is None or projection.status == "failed":
                continue
            projection.position = position
            projection.last_event = last_event
            projection.processed = processed
            projection.fold_ns += fold_ns
            projection.folded += folded
            if projection.catch_up_ms is None and position >= projection.catch_up_target:
                projection.catch_up_ms = round((time.monotonic() - projection.started_at) * 1000, 1)
            if state is not None:
                projection.state_json = state
                self._publish(projection)

    def _on_exit(self, w: WorkerHandle) -> None:
        if self.stopping or w.replaced or w not in self.workers:
            return
        w.replaced = True
        w.alive = False
        log.warning("projection worker %d (pid %s) exited; starting a replacement", w.index, w.pid)
        asyncio.get_running_loop().create_task(self._replace(w))

    async def _replace(self, old: WorkerHandle) -> None:
        """Start a new worker in place of a dead one; its projections resume from their last state."""
        if self.stopping:
            return
        self.replaced_workers += 1
        # Back off when workers keep dying (a reduction that kills its process at every start).
        recent = [t for t in self._deaths if time.monotonic() - t < 60]
        self._deaths = [*recent, time.monotonic()]
        if len(recent) >= 3:
            await asyncio.sleep(min(30.0, 0.5 * 2 ** (len(recent) - 3)))
            if self.stopping:
                return
        new = self._new_worker(old.index)
        self.workers[self.workers.index(old)] = new
        new.sent_to = self.feed_position
        moving = [self.by_slot[slot] for slot in sorted(old.slots) if slot in self.by_slot]
        for projection in moving:
            projection.worker = new
            new.slots.add(projection.slot)
        try:
            await self._wait_ready(new)
        except RuntimeError as exc:
            log.error("%s", exc)
            return  # its own exit starts the next replacement, which takes these projections
        await self._assign(new, [p for p in moving if p.status == "running" and p.worker is new])

    async def _assign(self, w: WorkerHandle, projections: builtins.list[Projection]) -> None:
        """Start projections on their worker and bring them up to what that worker has been sent.

        All under the worker's lock, so no live batch slips in between. A worker that reads the
        store gets one catch-up for all of them (one read of the store); otherwise each
        projection's history follows its addition, before the next projection is added.
        """
        async with w.lock:
            target = w.sent_to
            try:
                await self._start_on(w, projections, target)
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
                self._on_exit(w)

    async def _start_on(self, w: WorkerHandle, projections: builtins.list[Projection], target: int) -> None:
        behind = False
        for projection in projections:
            projection.catch_up_target = target
            w.send(
                (
                    "add",
                    projection.slot,
                    projection.spec.to_payload(),
                    orjson.loads(projection.state_json),
                    projection.position,
                    projection.last_event,
                    projection.processed,
                )
            )
            if projection.position >= target:
                if projection.catch_up_ms is None:
                    projection.catch_up_ms = 0.0
                continue
            behind = True
            if not w.reads_store:
                await self._send_history(w, projection, target)
        if behind and w.reads_store:
            self._send_tracked(w, ("catchup", None, target))

    async def _send_history(self, w: WorkerHandle, projection: Projection, target: int) -> None:
        """Read a projection's history here and send it in batches (for in-process backends)."""
        stream = projection.stream_name
        start = projection.position + 1
        while start <= target:
            page = await asyncio.to_thread(_read_page, self.store, stream, start, target, BATCH)
            end = page[-1].order_id if len(page) == BATCH else target
            await self._wait_drained(w)
            self._send_tracked(w, ("fold", None, [e.data for e in page], end))
            start = end + 1

    def _send_tracked(self, w: WorkerHandle, message: tuple[Any, ...]) -> None:
        w.seq += 1
        w.in_flight += 1
        if w.in_flight >= MAX_IN_FLIGHT:
            w.drained.clear()
        w.send((message[0], w.seq, *message[2:]))

    async def _wait_drained(self, w: WorkerHandle) -> None:
        while w.alive and w.in_flight >= MAX_IN_FLIGHT:
            await w.drained.wait()

    async def _resync(self, w: WorkerHandle) -> None:
        """A worker that fell behind the live feed reads what it missed from the store."""
        async with w.lock:
            if not w.lagging or not w.alive:
                return
            w.lagging = False
            self.resyncs += 1
            w.sent_to = self.feed_position
            self._send_tracked(w, ("catchup", None, self.feed_position))

    # -- the live feed -----------------------------------------------------------------------

    async def _feed(self) -> None:
        subscription = self.store.subscribe(ALL_STREAM, "hot-cold", from_order_id=self.feed_position + 1)
        try:
            while True:
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
                    subscription = self.store.subscribe(ALL_STREAM, "hot-cold", from_order_id=self.feed_position + 1)
                    continue
                if batch is None:
                    return
                events = [item for item in batch if type(item) is RecordedEvent]  # without the markers
                for start in range(0, len(events), BATCH):
                    chunk = events[start : start + BATCH]
                    self.feed_position = chunk[-1].order_id
                    for w in list(self.workers):
                        await self._dispatch(w, chunk)
        finally:
            subscription.close()

    async def _dispatch(self, w: WorkerHandle, chunk: list[RecordedEvent]) -> None:
        end = chunk[-1].order_id
        async with w.lock:
            sent_to = w.sent_to
            if not w.alive or sent_to >= end or w.lagging:
                return
            streams = self._streams_of(w)
            if streams is not None and not streams:
                w.sent_to = end  # nothing here wants events
                return
            if w.in_flight >= MAX_IN_FLIGHT:
                if w.reads_store:
                    # Do not hold the others up: this worker reads what it missed from the store later.
                    w.lagging = True
                    return
                await self._wait_drained(w)
            if streams is None and chunk[0].order_id > sent_to:
                datas = list(map(_DATA, chunk))  # all of it (the usual case for `__all__` readers)
            else:
                datas = [
                    e.data for e in chunk if e.order_id > sent_to and (streams is None or e.stream_name in streams)
                ]
            self._send_tracked(w, ("fold", None, datas, end))
            w.sent_to = end

    def _streams_of(self, w: WorkerHandle) -> set[str] | None:
        """The streams a worker's running projections read; None when one reads `__all__`."""
        streams: set[str] = set()
        for slot in w.slots:
            projection = self.by_slot.get(slot)
            if projection is None or projection.status != "running":
                continue
            if projection.stream_name == ALL_STREAM or stream_category(projection.stream_name) is not None:
                return None
            streams.add(projection.stream_name)
        return streams

    # -- failures ------------------------------------------------------------------------------

    def _fail(self, projection: Projection, error: str, order_id: int | None, snapshot: bytes | None) -> None:
        projection.status = "failed"
        projection.failed_at = order_id
        where = f" at the event with order-id {order_id}" if order_id else ""
        projection.last_error = f"{error}{where}" if where and "order-id" not in error else error
        if snapshot is not None:
            projection.state_json = snapshot
        w = projection.worker
        if w is not None:
            w.slots.discard(projection.slot)
            if w.alive:
                w.send(("remove", projection.slot))
        log.warning("projection %r failed: %s", projection.name, projection.last_error)
        self._publish(projection)

    async def _watchdog(self) -> None:
        """Kill a worker whose reduction has been on one event for longer than the time limit."""
        interval = min(max(self.timeout / 4, 0.05), 1.0)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for w in list(self.workers):
                if not w.alive:
                    continue
                seen = (w.progress[0], w.progress[1])
                if seen != w.seen:
                    w.seen, w.seen_since = seen, now
                    continue
                slot, order_id = seen
                if slot == worker_module.IDLE or now - w.seen_since <= self.timeout:
                    continue
                projection = self.by_slot.get(slot)
                if projection is not None:
                    where = f"on the event with order-id {order_id}" if order_id else "while loading"
                    self._fail(
                        projection,
                        f"the reduction ran past the time limit of {self.timeout:g} s (projections.timeout) {where}",
                        order_id or None,
                        None,
                    )
                w.kill()
                self._on_exit(w)

    # -- checkpoints ---------------------------------------------------------------------------

    async def _checkpointer(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.checkpoint_seconds))
            now = time.monotonic()
            due = [
                p
                for p in self.projections.values()
                if p.position > p.checkpointed_position
                and (
                    p.position - p.checkpointed_position >= self.checkpoint_events
                    or now - p.checkpointed_at >= self.checkpoint_seconds
                )
            ]
            if due:
                await asyncio.to_thread(self._write_checkpoints, self._snapshots(due))

    def _snapshots(self, projections: builtins.list[Projection]) -> builtins.list[_Snapshot]:
        """What to checkpoint, taken here on the event loop, where the fold reports land: a
        thread reading a projection while a report moves it could pair a position with a state
        of another position (then events are folded twice or never after a restart)."""
        return [
            _Snapshot(
                p,
                p.position,
                {
                    "digest": p.spec.digest,
                    "order-id": p.position,
                    "last-event": p.last_event,
                    "processed": p.processed,
                    "state": orjson.Fragment(p.state_json),
                },
            )
            for p in projections
            if p.status == "running"  # a failed projection keeps its last good checkpoint
        ]

    def _write_checkpoints(self, snapshots: builtins.list[_Snapshot]) -> None:
        """Write checkpoints (in a thread), one writer at a time and never one older than the
        last written: a periodic write still under way when the manager stops must not land
        after the final one and leave the store with the older position."""
        with self._checkpoint_writes:
            now = time.monotonic()
            for snapshot in snapshots:
                p = snapshot.projection
                if snapshot.position <= p.checkpointed_position or self.projections.get(p.name) is not p:
                    continue  # written already, or the projection was removed or replaced since
                try:
                    self.store.write_checkpoint(checkpoint_key(p.name), snapshot.value)
                except Exception:
                    log.exception("could not checkpoint projection %r", p.name)
                    continue
                p.checkpointed_position = snapshot.position
                p.checkpointed_at = now

    def _clear_checkpoint(self, name: str) -> None:
        with self._checkpoint_writes:  # after any periodic write of the projection it replaces
            self.store.write_checkpoint(checkpoint_key(name), None)

    def _read_checkpoint(self, projection: Projection) -> None:
        try:
            saved = self.store.read_checkpoint(checkpoint_key(projection.name))
        except Exception:
            log.exception("could not read the checkpoint of projection %r", projection.name)
            return
        if not isinstance(saved, dict) or saved.get("digest") != projection.spec.digest:
            return  # none, or from another definition: fold from the start
        projection.state_json = orjson.dumps(saved.get("state"))
        projection.position = int(saved.get("order-id", 0))
        projection.last_event = int(saved.get("last-event", 0))
        projection.processed = int(saved.get("processed", 0))
        projection.checkpointed_position = projection.position
        projection.resumed_from = projection.position

    # -- the set of projections ---------------------------------------------------------------

    def _read_config(self) -> dict[str, ProjectionSpec]:
        """The projections `__config__` holds now (last registration wins; deletions remove)."""
        return registered(self.store)

    def _install(self, spec: ProjectionSpec, checked: Checked, *, resume: bool, schedule: bool = True) -> Projection:
        """Create the manager's record of a projection and start it on a worker."""
        self._next_slot += 1
        projection = Projection(spec=spec, slot=self._next_slot)
        self.projections[spec.name] = projection
        self.by_slot[projection.slot] = projection
        if checked.error is not None:
            # A projection that cannot run here at all (the Clojure Photon's) is stopped, not failed.
            projection.status = "stopped" if cannot_run(spec) is not None else "failed"
            projection.last_error = checked.error
            projection.stream_name = str(spec.fields.get("stream-name") or ALL_STREAM)
            projection.initial_value = spec.fields.get("initial-value")
            return projection
        projection.stream_name = checked.stream_name
        projection.event_types = checked.event_types
        projection.initial_value = checked.initial_value
        projection.state_json = orjson.dumps(checked.initial_value)
        if resume:
            self._read_checkpoint(projection)
        assert self._loop is not None
        w = self._pick_worker()
        projection.worker = w
        w.slots.add(projection.slot)
        if schedule:
            self._loop.create_task(self._assign(w, [projection]))
        return projection

    def _uninstall(self, name: str) -> Projection | None:
        projection = self.projections.pop(name, None)
        if projection is None:
            return None
        self.by_slot.pop(projection.slot, None)
        w = projection.worker
        if w is not None:
            w.slots.discard(projection.slot)
            if w.alive:
                w.send(("remove", projection.slot))
        if projection.status == "running":
            projection.status = "stopped"
        for queue in projection.followers:
            _offer(queue, None)
        return projection

    async def _register(self, spec: ProjectionSpec, checked: Checked) -> Projection:
        """Record a (re)registration in `__config__`, then (re)start the projection from the start."""
        await asyncio.to_thread(self.store.append_internal, CONFIG_STREAM, REGISTERED, spec.to_payload())
        followers = set()
        old = self._uninstall(spec.name)
        if old is not None:
            followers = old.followers
            old.followers = set()
        await asyncio.to_thread(self._clear_checkpoint, spec.name)
        projection = self._install(spec, checked, resume=False)
        projection.followers = followers
        return projection

    async def _unregister(self, name: str) -> None:
        await asyncio.to_thread(self.store.append_internal, CONFIG_STREAM, DELETED, {"projection-name": name})
        self._uninstall(name)
        await asyncio.to_thread(self._clear_checkpoint, name)

    # -- the API -------------------------------------------------------------------------------

    async def create(self, template: Any) -> dict[str, Any]:
        """Register (or replace) a projection from Photon's template; `DefinitionError` if it cannot load."""
        spec = spec_from_template(template)
        if spec.name == STREAMS_PROJECTION:
            raise DefinitionError(f"{STREAMS_PROJECTION!r} is built in and cannot be replaced", "projection-name")
        checked = await self.checker.check(spec)
        if checked.error is not None:
            raise DefinitionError(checked.error)  # refuse what would only fail: nothing is recorded
        async with self._changes:
            projection = await self._register(spec, checked)
        return projection.descriptor(with_value=False)

    async def delete(self, name: str) -> None:
        """Remove a projection (recorded in `__config__`); `NotFound` if there is none by that name."""
        if name == STREAMS_PROJECTION:
            raise ValidationError(f"{STREAMS_PROJECTION!r} is built in and cannot be deleted", "projection-name")
        async with self._changes:
            if name not in self.projections:
                raise NotFound(f"projection {name!r} does not exist")
            await self._unregister(name)

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every projection's descriptor without its current value, by name."""
        return [self.projections[name].descriptor(with_value=False) for name in sorted(self.projections)]

    def names(self) -> builtins.list[str]:
        return sorted(self.projections)

    def _get(self, name: str) -> Projection:
        projection = self.projections.get(name)
        if projection is None:
            raise NotFound(f"projection {name!r} does not exist")
        return projection

    def get(self, name: str) -> dict[str, Any]:
        """The full descriptor, `current-value` and `reduction` (the source) included."""
        return self._get(name).descriptor()

    def value(self, name: str) -> Any:
        """The projection's current value, decoded."""
        return orjson.loads(self._get(name).state_json)

    def get_key(self, name: str, key: str) -> Any:
        """One key of the current value (an index for an array); `NotFound` when it has none."""
        return key_of(name, self.value(name), key)

    async def subscribe_updates(self, name: str) -> AsyncIterator[Any]:
        """The projection's new states as they come (the current one first); ends when it is removed."""
        async for line in self._follow(name):
            yield orjson.loads(line)["current-value"]

    async def follow_raw(self, name: str | None = None) -> AsyncIterator[bytes]:
        """Update messages as JSON bytes (one projection, or all with None); used by TCP and SSE."""
        async for line in self._follow(name):
            yield line

    async def _follow(self, name: str | None) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(UPDATE_QUEUE)
        if name is None:
            followers = self._all_followers
        else:
            projection = self._get(name)
            followers = projection.followers
            _offer(queue, _update_message(projection))
        followers.add(queue)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item
        finally:
            followers.discard(queue)

    def current_messages(self) -> builtins.list[bytes]:
        """One update message per projection with its current state (what a new follower gets first)."""
        return [_update_message(self.projections[name]) for name in sorted(self.projections)]

    def _publish(self, projection: Projection) -> None:
        if not projection.followers and not self._all_followers:
            return
        message = _update_message(projection)
        for queue in projection.followers:
            _offer(queue, message)
        for queue in self._all_followers:
            _offer(queue, message)

    # -- the folder ----------------------------------------------------------------------------

    def _file_spec(self, path: Path) -> ProjectionSpec | None:
        if path.suffix not in EXTENSIONS or path.name.startswith((".", "_")) or not path.is_file():
            return None
        try:
            spec = spec_from_file(path)
        except (OSError, UnicodeDecodeError, DefinitionError) as exc:
            log.warning("cannot read projection file %s: %s", path, exc)
            return None
        return ProjectionSpec(spec.name, spec.language, spec.source, "file", path.name)

    async def sync_file(self, path: Path) -> None:
        """Bring one file's projection in line with the file: register, re-register or delete."""
        async with self._changes:
            spec = self._file_spec(path) if path.exists() else None
            checked: Checked | None = None
            if spec is not None:
                registered = [
                    p.spec for p in self.projections.values() if p.spec.origin == "file" and p.spec.path == path.name
                ]
                if registered and all(r.source == spec.source and r.language == spec.language for r in registered):
                    return  # unchanged: keep its state and checkpoint
                checked = await self.checker.check(spec)
                spec = replace(spec, name=checked.name)
            for projection in list(self.projections.values()):
                same_file = projection.spec.origin == "file" and projection.spec.path == path.name
                if same_file and (spec is None or projection.name != spec.name):
                    await self._unregister(projection.name)
            if spec is None or checked is None:
                return
            if spec.name == STREAMS_PROJECTION:
                log.warning("%s: %r is built in; the file is ignored", path, STREAMS_PROJECTION)
                return
            await self._register(spec, checked)

    def _report_folder(self) -> None:
        """Say which folder projection files are read from and what it holds: a server started
        elsewhere than the repository finds no `./projections` and would otherwise load nothing silently."""
        if self.folder is None:
            return
        where = self.folder.resolve()
        if not self.folder.is_dir():
            log.warning(
                "projections.path %s does not exist: no projection files loaded (Photon's examples are in %s; "
                "-projections.path %s loads them)",
                where,
                EXAMPLES_FOLDER,
                EXAMPLES_FOLDER,
            )
            return
        files = sorted(p.name for p in self.folder.iterdir() if p.suffix in EXTENSIONS)
        log.info(
            "projections.path %s: %d projection file%s%s",
            where,
            len(files),
            "" if len(files) == 1 else "s",
            f" ({', '.join(files)})" if files else "",
        )

    async def sync_folder(self) -> None:
        """Register new and changed files, remove the projections of files that are gone."""
        assert self.folder is not None
        present = {p.name for p in self.folder.iterdir()}
        for projection in list(self.projections.values()):
            if projection.spec.origin == "file" and projection.spec.path not in present:
                await self.sync_file(self.folder / str(projection.spec.path))
        for path in sorted(self.folder.iterdir()):
            await self.sync_file(path)

    async def _watch_folder(self) -> None:
        import watchfiles

        assert self.folder is not None and self._watch_stop is not None
        async for changes in watchfiles.awatch(
            self.folder, stop_event=self._watch_stop, debounce=200, step=50, recursive=False
        ):
            for name in sorted({Path(path).name for _, path in changes}):
                if Path(name).suffix in EXTENSIONS:
                    try:
                        await self.sync_file(self.folder / name)
                    except Exception:
                        log.exception("could not apply the change of %s", name)


def _offer(queue: asyncio.Queue[bytes | None], item: bytes | None) -> None:
    """Queue an update; a follower that lags loses its oldest updates (newer states supersede them)."""
    while True:
        try:
            queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()


def _update_message(projection: Projection) -> bytes:
    return orjson.dumps(
        {
            "projection-name": projection.name,
            "status": projection.status,
            "last-event": projection.last_event,
            "processed": projection.processed,
            "current-value": orjson.Fragment(projection.state_json),
        }
    )


def _read_page(store: EventStore, stream: str, start: int, end: int, limit: int) -> list[RecordedEvent]:
    return list(store.read(stream, from_order_id=start, to_order_id=end, limit=limit))
