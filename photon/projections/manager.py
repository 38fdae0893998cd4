"""The projection manager: the service that runs every projection of a store, made of small parts.

- `registry`: which projections exist (recorded in `__config__`) and the running set's records;
- `checkpoints`: the checkpoint format, resumed from at start and written periodically and at stop;
- `feed`: live events and history to the workers, with flow control;
- `supervisor`: the worker processes' life and the watchdog (`pool` and `worker` are the processes);
- `balance`: which worker each projection runs on, by what it costs while it runs live;
- `folder`: the projection files of `projections.path`;
- `updates`: followers of the projections' new states;
- `redactions`: which projections fold again after a redaction.

The manager wires them together, answers the workers' messages (`messages`), and offers the API
the front ends use (create, delete, list, get, follow). Every fold reply carries each
projection's position and, when it changed, its state as JSON: that is the projection's
`current-value`, what is checkpointed and what update followers get.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from photon.core.errors import BackendError, NotFound, NotReady, StoreClosed, ValidationError
from photon.core.events import ALL_STREAM, CONFIG_STREAM, RecordedEvent
from photon.core.redaction import REDACTED
from photon.core.store import EventStore
from photon.projections.balance import Balancer
from photon.projections.checking import Checked, Checker, check_here
from photon.projections.checkpoints import Checkpointer
from photon.projections.definition import DefinitionError, ProjectionSpec, cannot_run, spec_from_template
from photon.projections.feed import Feed
from photon.projections.folder import FolderWatcher
from photon.projections.messages import Added, Folded, FromWorker, Ready, Remove, Report, Stopped
from photon.projections.offline import key_of
from photon.projections.pool import WorkerHandle, preload, store_modules
from photon.projections.redactions import Redaction, recorded, stale
from photon.projections.registry import (
    STREAMS_PROJECTION,
    Projection,
    Registry,
    Status,
    builtin_streams_spec,
    record_deletion,
    record_registration,
    registered,
)
from photon.projections.supervisor import Supervisor
from photon.projections.updates import Updates, update_message

log = logging.getLogger("photon.projections")


class ProjectionManager:
    """Runs every projection of a store. A service: ``ProjectionManager(store, config)``, ``await start()``."""

    def __init__(self, store: EventStore, config: Mapping[str, Any]) -> None:
        self.store = store
        self.config = config
        self.timeout = float(config.get("projections.timeout") or 10.0)
        self.registry = Registry()
        self.checker = Checker(self.timeout)
        self.checkpoints = Checkpointer(
            store,
            int(config.get("projections.checkpoint.events") or 10_000),
            float(config.get("projections.checkpoint.seconds") or 5.0),
        )
        self.updates = Updates()
        self.supervisor: Supervisor[builtins.list[Projection]] = Supervisor(
            int(config.get("parallel.projections") or 1),
            self._store_config(),
            self.timeout,
            self._on_message,
            self._adopt,
            self._resume,
            self._culprit,
        )
        self.feed = Feed(store, self.registry, self.supervisor.workers, self.supervisor.lost)
        self.balancer = Balancer(self.registry, self.feed, lambda: self.supervisor.replaced_workers)
        self._changes = asyncio.Lock()
        """Held by every change to the set of projections (API and folder alike)."""
        path = config.get("projections.path")
        self.folder = FolderWatcher(
            Path(path) if path else None,
            bool(config.get("projections.watch", True)),
            self.registry,
            self.checker,
            self._changes,
            self._register,
            self._unregister,
        )
        self.started = False
        self.loaded = asyncio.Event()
        """Set once every projection of the store at start has resumed (see `start`)."""
        self._tasks: list[asyncio.Task[Any]] = []
        self._redactions: builtins.list[Redaction] = []
        """The redactions recorded when the manager started (stale checkpoints are not resumed)."""
        self.refolds = 0
        """How often a projection folded again from the start because events it folded were redacted."""

    @property
    def projections(self) -> dict[str, Projection]:
        """The records of the running projections, by name."""
        return self.registry.projections

    @property
    def workers(self) -> builtins.list[WorkerHandle]:
        return self.supervisor.workers

    @property
    def stopping(self) -> bool:
        return self.supervisor.stopping

    @property
    def replaced_workers(self) -> int:
        return self.supervisor.replaced_workers

    @property
    def resyncs(self) -> int:
        """How often a worker that fell behind the live feed caught up from the store instead."""
        return self.feed.resyncs

    def _store_config(self) -> dict[str, str] | None:
        """What a worker needs to open the same store read-only, or None when it cannot."""
        backend = self.store.backend
        if backend.in_process:  # workers cannot open it themselves: the feed carries everything
            return None
        preload(store_modules(backend))
        config = getattr(backend, "config", None) or self.config
        return {key: str(value) for key, value in config.items() if value is not None and "." in key}

    # -- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the workers and the feed; the projections resume in the background (`loaded`).

        The server answers meanwhile: a projection is `LOADING` while its checkpoint is read,
        then `RESUMING` until its worker has taken it (`registry.Status`; reading and handing over
        an entry per stream at 1M streams took 18 s). The feed's live batches pass it by until
        it is on its worker; its catch-up reads the store from
        its checkpoint up to what its worker was sent, so appends during the load are folded
        once, in order, as for a projection registered while the server runs.
        """
        await self.supervisor.start()
        self.feed.position = self.store.last_order_id()
        for w in self.workers:
            self.feed.attach(w)
        specs = await asyncio.to_thread(registered, self.store)
        self._redactions = await asyncio.to_thread(recorded, self.store)
        builtin = builtin_streams_spec()
        starting = [self._install(builtin, check_here(builtin), resume=True)]
        for spec in specs.values():
            starting.append(self._install(spec, await self.checker.check(spec), resume=True))
        self.started = True
        registry = self.registry
        self._tasks.append(asyncio.create_task(self._resume_all(starting), name="projections-resume"))
        self._tasks.append(asyncio.create_task(self.feed.run(), name="projections-feed"))
        self._tasks.append(
            asyncio.create_task(self._follow_redactions(self.feed.position), name="projections-redactions")
        )
        self._tasks.append(asyncio.create_task(self.supervisor.watchdog(), name="projections-watchdog"))
        if bool(self.config.get("projections.balance", True)) and len(self.workers) > 1:
            self._tasks.append(asyncio.create_task(self.balancer.run(), name="projections-balance"))
        checkpoints = self.checkpoints.run(registry.projections.values, registry.is_current)
        self._tasks.append(asyncio.create_task(checkpoints, name="projections-checkpoints"))
        await self.folder.start()

    async def _resume_all(self, starting: builtins.list[Projection]) -> None:
        """Read the starting projections' checkpoints (in a thread), then start them on their
        workers together (those behind on the same source share one read of the store)."""
        for projection in starting:
            if projection.status is not Status.LOADING:
                continue
            saved = await asyncio.to_thread(self.checkpoints.load, projection)
            if saved is None or not self.registry.is_current(projection) or projection.status is not Status.LOADING:
                continue  # none (folds from the start), or replaced or removed meanwhile
            self.checkpoints.apply(projection, saved)
            if projection.position and stale(
                self._redactions, projection.name, projection.stream_name, projection.event_types, projection.position
            ):
                log.info("projection %r folds from the start: events it folded were redacted since", projection.name)
                self.refolds += 1
                self._reset(projection, projection.initial_value)
        ready = [p for p in starting if p.status is Status.LOADING and self.registry.is_current(p)]
        for projection in ready:
            projection.status = Status.RESUMING  # its value reads; running once its worker has it
        # Assigned by the worker each has now (one that died meanwhile was replaced).
        sharing = await self.feed.assign_all({w: [p for p in ready if p.worker is w] for w in self.workers})
        self._tasks.extend(sharing)
        self.loaded.set()
        for projection in ready:
            self.updates.publish(projection)

    async def stop(self) -> None:
        """Stop feeding, collect every worker's final states, checkpoint them, stop the workers."""
        if self.stopping:
            return
        self.supervisor.stopping = True
        await self.folder.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.supervisor.stop()
        self.feed.close()
        await asyncio.to_thread(self.checker.close)
        if not self.store.closed:
            snapshots = self.checkpoints.snapshots(self.checkpoints.at_stop(self.projections.values()))
            await asyncio.to_thread(self.checkpoints.write, snapshots, self.registry.is_current)
        for projection in self.projections.values():
            if projection.status.live:
                projection.status = Status.STOPPED
        self.updates.close(self.projections.values())

    # -- the workers -------------------------------------------------------------------------

    def _on_message(self, w: WorkerHandle, message: FromWorker) -> None:
        if isinstance(message, Folded):
            if message.cpu_ns:
                w.cpu_ns = message.cpu_ns
                w.cpu_at = asyncio.get_running_loop().time()
            if message.seq is not None and self.feed.answered(w) and not self.stopping:
                asyncio.get_running_loop().create_task(self.feed.resync(w))
            self._apply_reports(w, message.reports)
            for failure in message.failures:
                projection = self.registry.by_slot.get(failure.slot)
                if projection is not None and projection.worker is w:
                    if failure.counters is not None:  # those of its state before the failing event
                        projection.position, projection.last_event, projection.processed = failure.counters
                    self._fail(projection, failure.error, failure.order_id, failure.snapshot)
        elif isinstance(message, Ready):
            w.reads_store = message.reads_store
            w.ready.set()
        elif isinstance(message, Added):
            self.feed.taken(message.slot, w)
            projection = self.registry.by_slot.get(message.slot)
            if projection is not None and projection.worker is w and projection.status is Status.RESUMING:
                projection.status = Status.RUNNING  # the worker has its state: it folds from here
            if message.error is not None and projection is not None:
                self._fail(projection, message.error, None, None)
        elif isinstance(message, Stopped):
            self._apply_reports(w, message.reports)
            self.supervisor.stopped(w)

    def _apply_reports(self, w: WorkerHandle, reports: builtins.list[Report]) -> None:
        by_slot = self.registry.by_slot
        for report in reports:
            projection = by_slot.get(report.slot)
            if projection is None or projection.status is Status.FAILED or projection.worker is not w:
                continue  # gone, failed, or moved to another worker (which folds from its last report here)
            projection.position = report.position
            projection.last_event = report.last_event
            projection.processed = report.processed
            projection.fold_ns += report.fold_ns
            projection.folded += report.folded
            if projection.catch_up_ms is None and report.position >= projection.catch_up_target:
                projection.catch_up_ms = round((time.monotonic() - projection.started_at) * 1000, 1)
            if report.state is not None:
                projection.state_json = report.state
                self.updates.publish(projection)

    def _adopt(self, old: WorkerHandle, new: WorkerHandle) -> builtins.list[Projection]:
        """A new worker took the place of a dead one: it is fed from now on, and takes its projections."""
        self.feed.detach(old)
        self.feed.attach(new)
        moved = self.registry.on_worker(old.slots)
        for projection in moved:
            projection.worker = new
            new.slots.add(projection.slot)
        return moved

    async def _resume(self, new: WorkerHandle, moved: builtins.list[Projection]) -> None:
        """The new worker is ready: the projections it took resume from their last reported state
        (those started on it meanwhile are being started by their own registration)."""
        await self.feed.assign(new, [p for p in moved if p.status.on_worker and p.worker is new])

    def _fail(self, projection: Projection, error: str, order_id: int | None, snapshot: bytes | None) -> None:
        projection.status = Status.FAILED
        projection.failed_at = order_id
        where = f" at the event with order-id {order_id}" if order_id else ""
        projection.last_error = f"{error}{where}" if where and "order-id" not in error else error
        if snapshot is not None:
            projection.state_json = snapshot
        w = projection.worker
        if w is not None:
            w.slots.discard(projection.slot)
            if w.alive:
                w.send(Remove(projection.slot))
        log.warning("projection %r failed: %s", projection.name, projection.last_error)
        self.updates.publish(projection)

    def _culprit(self, slot: int, order_id: int, why: str | None) -> None:
        """A reduction past the time limit (`why` None; the watchdog kills its worker), or one whose
        worker died twice on the same event (`why`): the projection fails."""
        projection = self.registry.by_slot.get(slot)
        if projection is not None and projection.status.on_worker:
            where = f"on the event with order-id {order_id}" if order_id else "while loading"
            why = why or f"the reduction ran past the time limit of {self.timeout:g} s (projections.timeout)"
            self._fail(projection, f"{why} {where}", order_id or None, None)

    # -- the set of projections ---------------------------------------------------------------

    def _install(self, spec: ProjectionSpec, checked: Checked, *, resume: bool) -> Projection:
        """Create the manager's record of a projection and start it on a worker (with `resume`,
        it is `LOADING` until `_resume_all` has read its checkpoint and started it)."""
        projection = self.registry.add(spec)
        if checked.error is not None:
            # A projection that cannot run here at all (the Clojure Photon's) is stopped, not failed.
            projection.status = Status.STOPPED if cannot_run(spec) is not None else Status.FAILED
            projection.last_error = checked.error
            if projection.status is Status.FAILED:
                log.warning("projection %r does not load: %s", spec.name, checked.error)
            projection.stream_name = str(spec.fields.get("stream-name") or ALL_STREAM)
            projection.initial_value = spec.fields.get("initial-value")
            return projection
        projection.stream_name = checked.stream_name
        projection.event_types = checked.event_types
        projection.initial_value = checked.initial_value
        projection.state_json = orjson.dumps(checked.initial_value)
        w = self.supervisor.pick()
        projection.worker = w
        w.slots.add(projection.slot)
        if resume:
            projection.status = Status.LOADING
        else:
            asyncio.get_running_loop().create_task(self.feed.assign(w, [projection]))
        return projection

    @staticmethod
    def _reset(projection: Projection, initial_value: Any) -> None:
        """Back to the initial value, to fold from the start (the checkpoint is written over later)."""
        projection.state_json = orjson.dumps(initial_value)
        projection.position = projection.last_event = projection.processed = projection.resumed_from = 0
        projection.checkpointed_position = -1

    def _uninstall(self, name: str) -> Projection | None:
        projection = self.registry.remove(name)
        if projection is None:
            return None
        w = projection.worker
        if w is not None:
            w.slots.discard(projection.slot)
            if w.alive:
                w.send(Remove(projection.slot))
        if projection.status.live:
            projection.status = Status.STOPPED
        self.updates.end(projection)
        return projection

    async def _register(self, spec: ProjectionSpec, checked: Checked) -> Projection:
        """Record a (re)registration in `__config__`, then (re)start the projection from the start."""
        await asyncio.to_thread(record_registration, self.store, spec)
        followers = set()
        old = self._uninstall(spec.name)
        if old is not None:
            followers = old.followers
            old.followers = set()
        await asyncio.to_thread(self.checkpoints.clear, spec.name)
        projection = self._install(spec, checked, resume=False)
        projection.followers = followers
        return projection

    async def _unregister(self, name: str) -> None:
        await asyncio.to_thread(record_deletion, self.store, name)
        self._uninstall(name)
        await asyncio.to_thread(self.checkpoints.clear, name)

    # -- redactions ----------------------------------------------------------------------------

    async def _follow_redactions(self, after: int) -> None:
        """Fold again every projection whose state may hold a payload redacted after `after`."""
        while True:
            subscription = self.store.subscribe(
                CONFIG_STREAM, "hot-cold", from_order_id=after + 1, event_types=[REDACTED]
            )
            try:
                while True:
                    batch = await subscription.next_batch(timeout=1.0)
                    if batch is None:
                        return
                    for item in batch:
                        if type(item) is RecordedEvent:
                            await self._refold(Redaction.from_event(item))
                            after = item.order_id
            except StoreClosed:
                return
            except BackendError as exc:
                log.warning("the projections cannot follow redactions in __config__ (%s); trying again", exc)
                await asyncio.sleep(1.0)
            finally:
                subscription.close()

    async def _refold(self, redaction: Redaction) -> None:
        """Start every projection the redaction affects again from the start, with its followers.

        Live, the position does not tell: the feed may have sent a worker the events' original
        bytes that it has not answered yet. A projection that only fails to load is left alone:
        it has folded nothing.
        """
        async with self._changes:
            for projection in builtins.list(self.projections.values()):
                if projection.worker is None or not redaction.affects(
                    projection.name, projection.stream_name, projection.event_types
                ):
                    continue
                log.info(
                    "projection %r folds again from the start: events of its source were redacted", projection.name
                )
                self.refolds += 1
                followers = projection.followers
                projection.followers = set()
                # Replaced with no await in between, so the projection is never missing; the old
                # record's checkpoint writes are skipped from now on (it is no longer current).
                self._uninstall(projection.name)
                checked = Checked(
                    projection.name, projection.stream_name, projection.initial_value, projection.event_types
                )
                fresh = self._install(projection.spec, checked, resume=False)
                fresh.followers = followers
                self.updates.publish(fresh)
                await asyncio.to_thread(self.checkpoints.clear, projection.name)

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
        return [projection.descriptor(with_value=False) for projection in self.registry.in_order()]

    def names(self) -> builtins.list[str]:
        return self.registry.names()

    def get(self, name: str) -> dict[str, Any]:
        """The full descriptor, `current-value` and `reduction` (the source) included."""
        return self._readable(name).descriptor()

    def value(self, name: str) -> Any:
        """The projection's current value, decoded."""
        return orjson.loads(self._readable(name).state_json)

    def _readable(self, name: str) -> Projection:
        """A projection whose value can be read: `NotReady` while it loads its checkpoint (its
        value is not known yet: neither the initial value nor a value behind what it had)."""
        projection = self.registry.get(name)
        if projection.status is Status.LOADING:
            raise NotReady(f"projection {name!r} is loading its checkpoint; try again shortly")
        return projection

    def get_key(self, name: str, key: str) -> Any:
        """One key of the current value (an index for an array); `NotFound` when it has none."""
        return key_of(name, self.value(name), key)

    async def subscribe_updates(self, name: str) -> AsyncIterator[Any]:
        """The projection's new states as they come (the current one first); ends when it is removed."""
        async for line in self.follow_raw(name):
            yield orjson.loads(line)["current-value"]

    async def follow_raw(self, name: str | None = None) -> AsyncIterator[bytes]:
        """Update messages as JSON bytes (one projection, or all with None); used by TCP and SSE."""
        projection = None if name is None else self.registry.get(name)
        if name is not None and projection is not None and projection.status is Status.LOADING:
            await self.loaded.wait()  # its first message is its resumed state
            projection = self.registry.get(name)
        async for line in self.updates.follow(projection):
            yield line

    def current_messages(self) -> builtins.list[bytes]:
        """One update message per projection with its current state (what a new follower gets first)."""
        return [update_message(p) for p in self.registry.in_order() if p.status is not Status.LOADING]
