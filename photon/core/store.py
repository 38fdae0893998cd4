"""The event store: validation, group commit, reads and subscriptions over one backend.

One process writes a store. Inside it, one committer thread owns every write: callers hand it
validated events and wait; it takes everything queued, checks expected versions and ids,
assigns order-ids and stream-versions, writes the lot in one backend transaction, and only
then acknowledges the callers and publishes the events to subscribers. Batching many callers
into one durable commit is what gives both durability and throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import partial
from itertools import compress
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import orjson

from photon.core.append_request import (
    AppendCondition,
    AppendOptions,
    QueryItem,
    append_options,
    parse_query,
    query_matches,
)
from photon.core.backend import Backend, Query, StreamInfo, backend_class
from photon.core.config import Config, load_config
from photon.core.errors import (
    AppendConditionFailed,
    BackendError,
    BackendUnavailable,
    EventIdConflict,
    NotFound,
    PhotonError,
    ReadOnlyStore,
    StoreClosed,
    StoreLost,
    StreamDeleted,
    ValidationError,
    VersionConflict,
)
from photon.core.events import (
    ALL_STREAM,
    CATEGORY_SEPARATOR,
    CONFIG_STREAM,
    DEFAULT_MAX_EVENT_BYTES,
    MAX_NAME_LENGTH,
    METADATA_STREAM,
    PendingEvent,
    RecordedEvent,
    category_of,
    is_internal,
    is_one_stream,
    new_event_id,
    new_event_ids,
    now_millis,
    parse_expected_version,
    prepare_batch,
    prepare_event,
    validate_event,
)
from photon.core.filtered_reads import plan_read, read_page
from photon.core.filters import EventFilter
from photon.core.paging import PageSizer
from photon.core.stream_metadata import MetadataCache, StreamMetadata, metadata_event, parse_metadata
from photon.core.subscriptions import DEFAULT_BUFFER_BYTES, DEFAULT_PAGE_BYTES, Broadcaster, StreamType, Subscription

if TYPE_CHECKING:
    from photon.core.scavenge import ScavengeReport
    from photon.groups import GroupManager

log = logging.getLogger("photon.store")

_new_record = tuple.__new__
_STREAM_NAME = itemgetter(0)  # PendingEvent.stream_name
_EVENT_ID = itemgetter(1)
_CLIENT_ID = itemgetter(5)


def _client_ids(events: list[PendingEvent]) -> list[str]:
    """The ids of `events` that their clients chose."""
    return list(compress(map(_EVENT_ID, events), map(_CLIENT_ID, events)))


INLINE_VALIDATION = 64
"""Async appends of up to this many events are validated on the event loop."""
BATCH_VALIDATION = 16
"""Batches of at least this many events are first checked field by field (`prepare_batch`)."""


_BACKWARD_SPAN_PAGES = 8
"""A newest-first read widens a window that comes back short up to this many backend pages."""
_CATEGORY_ROUND = 256
"""Stream names read per round when listing categories."""
_HIGHEST_TAIL = chr(0x10FFFF) * MAX_NAME_LENGTH
"""Sorts after every name tail a stream may have: seeking past `category-` + this skips the category."""


class _AppendRequest:
    """One caller's append, waiting for the committer. A bare lock is the cheapest hand-off:
    the caller blocks acquiring it a second time until the committer releases it."""

    __slots__ = (
        "_lock",
        "checks",
        "client_ids",
        "condition",
        "error",
        "events",
        "expected",
        "finished",
        "on_done",
        "result",
        "streams",
    )

    def __init__(
        self,
        events: list[PendingEvent],
        expected: int | str,
        on_done: Callable[[], None] | None = None,
        checks: Mapping[str, int | str] | None = None,
        condition: AppendCondition | None = None,
    ) -> None:
        self.events = events
        self.expected = expected
        self.checks = checks
        """Expected versions of several streams (None: only `expected`, for the batch's one stream)."""
        self.condition = condition
        # Worked out here, in the caller's thread, to keep the single writer's share small.
        self.client_ids = _client_ids(events)
        self.streams = set(map(_STREAM_NAME, events))
        if checks:
            self.streams.update(checks)
        self.on_done = on_done
        """Called instead of releasing the lock (asyncio callers are woken through their loop)."""
        self._lock = threading.Lock()
        self._lock.acquire()
        self.finished = False
        self.result: list[RecordedEvent] = []
        self.error: BaseException | None = None

    def wait(self) -> None:
        self._lock.acquire()

    def done(self) -> None:
        if not self.finished:
            self.finished = True
            if self.on_done is not None:
                self.on_done()
            else:
                self._lock.release()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done()


class _LoopWaker:
    """Resolves asyncio futures of one event loop from the committer thread, one wake-up per batch.

    A group commit finishes many appends at once; waking the loop once for all of them (instead
    of once each) saves a system call and a thread switch per append.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._ready: list[asyncio.Future[None]] = []

    def resolve(self, future: asyncio.Future[None]) -> None:
        with self._lock:
            self._ready.append(future)
            if len(self._ready) > 1:
                return  # a wake-up is already on its way
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self.loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
        for future in ready:
            if not future.done():
                future.set_result(None)


class _Action:
    """Work that must run in the writer thread between two groups (stream deletion)."""

    __slots__ = ("done", "error", "result", "run")

    def __init__(self, run: Any) -> None:
        self.run = run
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _Stop:
    pass


_STOP = _Stop()
_NO_OPTIONS = AppendOptions()


def _describe_span(span: Any, stored: list[RecordedEvent]) -> None:
    if span is not None and stored:
        span.set_attribute("photon.order_id.first", stored[0].order_id)
        span.set_attribute("photon.order_id.last", stored[-1].order_id)


class _Committer(threading.Thread):
    """The single writer thread (group commit)."""

    def __init__(self, backend: Backend, broadcaster: Broadcaster, last_order_id: int, max_batch: int) -> None:
        super().__init__(name="photon-committer", daemon=True)
        self.backend = backend
        self.broadcaster = broadcaster
        self.last_order_id = last_order_id
        self.max_batch = max_batch
        self.requests: queue.SimpleQueue[_AppendRequest | _Action | _Stop] = queue.SimpleQueue()
        # Committed version of each stream seen so far (a cache; the backend is the truth).
        self.versions: dict[str, int] = {}
        self.metadata = MetadataCache()
        """Stream metadata (retention, deletion): the store's, updated here as it is committed."""
        self.commits = 0
        self.committed_events = 0
        self.unsettled = False
        """A commit failed in a way that may hide a success: before writing again, the writer
        must learn what the store holds (see `_settle`)."""
        self.halted: StoreLost | None = None
        """Set when the store turned out to have lost acknowledged events: the writer stops."""
        self.generation = 0
        """Counts the writes (commits and actions); it moves only after a write is done, so a
        reader who sees the same value before and after taking a snapshot of the store knows
        that nothing was written in between (see `photon.ops.restore`)."""

    def run(self) -> None:
        held: _AppendRequest | _Action | _Stop | None = None
        while True:
            first = held if held is not None else self.requests.get()
            held = None
            if isinstance(first, _Stop):
                break
            if isinstance(first, _Action):
                self._run_action(first)
                continue
            group = [first]
            size = len(first.events)
            while size < self.max_batch:
                try:
                    item = self.requests.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(item, _AppendRequest):
                    held = item  # commit what was queued before it, then handle it
                    break
                group.append(item)
                size += len(item.events)
            try:
                if self._ready_to_write(group):
                    self._commit(group)
            except BaseException as exc:  # never leave a caller waiting
                log.exception("commit failed")
                for request in group:
                    if not request.finished:
                        request.fail(exc)
            finally:
                self.generation += 1

    def _ready_to_write(self, group: list[_AppendRequest]) -> bool:
        """False (with every request of `group` failed) when the writer must not write now."""
        error: BackendError | None = self.halted
        if error is None and self.unsettled:
            try:
                self._settle()
            except StoreLost as exc:
                error = exc
            except BaseException as exc:
                error = BackendUnavailable(
                    "the outcome of an earlier commit is not known yet and the store cannot be "
                    f"asked ({exc}); nothing was written, try again"
                )
        if error is None:
            return True
        for request in group:
            request.fail(error)
        return False

    def _settle(self) -> list[RecordedEvent]:
        """After a commit whose outcome is unknown: find out what the store holds, publish what
        subscribers were not given yet (in order), and number on after it. Returns those events.

        Raises (and stays `unsettled`) when the store cannot be asked; raises `StoreLost` (and
        halts the writer) when the store holds less than was acknowledged.
        """
        backend = self.backend
        stored = backend.last_order_id()
        if stored < self.last_order_id:
            self.halted = StoreLost(
                f"the store ({backend.describe()}) ends at order-id {stored}, but this writer had "
                f"acknowledged events up to {self.last_order_id}: it lost acknowledged events (a server "
                "restarted without its data, e.g. Redis without an append-only file?). The writer "
                "stopped: restore the store from a backup, then restart Photon"
            )
            log.critical("%s", self.halted)
            raise self.halted
        found: list[RecordedEvent] = []
        published = self.broadcaster.head
        while published < stored:
            page = backend.read(Query(from_order_id=published + 1, to_order_id=stored, limit=backend.read_page_size))
            if not page:
                break
            # Published page by page, so that a long catch-up never holds the whole range.
            self.broadcaster.publish(page)
            found.extend(page)
            published = page[-1].order_id
        self.versions.clear()  # the cache may miss what the unknown commit stored
        self.last_order_id = stored
        self.unsettled = False
        if found:
            log.warning(
                "a commit whose outcome was unknown was stored: published order-ids %d..%d to subscribers",
                found[0].order_id,
                found[-1].order_id,
            )
        return found

    def _run_action(self, action: _Action) -> None:
        try:
            if self.halted is not None:
                raise self.halted
            action.result = action.run(self)
        except BaseException as exc:
            action.error = exc
        finally:
            self.generation += 1
            action.done.set()

    def _first_version(self, stream: str, current: int) -> int:
        metadata = self.metadata.get(stream)
        return 1 if metadata is None else metadata.first_version(current)

    def _check(
        self,
        request: _AppendRequest,
        versions: Mapping[str, int],
        tentative: Mapping[str, int],
        records: Sequence[RecordedEvent],
    ) -> PhotonError | None:
        """Why `request` may not be stored (a version conflict, a failed condition), or None.

        Runs in the writer, so no append can slip in between the check and the write; `records`
        are the events accepted earlier in this group, not yet durable, which count too.
        """
        for stream, wanted in (request.checks or {}).items():
            if wanted != "any":
                current = tentative.get(stream, versions[stream])
                if wanted == "no-stream":
                    ok = current == 0 or current < self._first_version(stream, current)
                else:
                    ok = current == wanted
                if not ok:
                    return VersionConflict(stream, wanted, current)
        condition = request.condition
        if condition is not None:
            found = self.backend.read_matching(condition.query, condition.after, 1)
            if not found:
                found = [e for e in records if e.order_id > condition.after and query_matches(condition.query, e)][:1]
            if found:
                first = found[0]
                return AppendConditionFailed(
                    condition.after, first.order_id, first.stream_name, first.event_type, first.event_id
                )
        return None

    def _commit(self, group: list[_AppendRequest]) -> None:
        backend = self.backend
        versions = self.versions
        wanted = set().union(*(r.streams for r in group)) - versions.keys()
        if wanted:
            found = backend.stream_versions(wanted)
            for name in wanted:
                versions[name] = found.get(name, 0)
        client_ids = [event_id for r in group for event_id in r.client_ids]
        stored = backend.events_by_id(client_ids) if client_ids else {}

        tentative: dict[str, int] = {}  # versions inside this group, not yet durable
        tombstoned = self.metadata.tombstoned
        metadata_changes: list[RecordedEvent] = []
        in_group: dict[str, RecordedEvent] = {}  # ids assigned inside this group
        records: list[RecordedEvent] = []
        accepted: list[_AppendRequest] = []
        order_id = self.last_order_id
        for request in group:
            if request.client_ids:
                known = [stored.get(e.event_id) or in_group.get(e.event_id) for e in request.events]
                clash = next(
                    (
                        (e, k)
                        for e, k in zip(request.events, known, strict=True)
                        if k is not None and k.stream_name != e.stream_name
                    ),
                    None,
                )
                if clash is not None:
                    # A retry is answered with what is stored; an id of another stream's event is not a retry.
                    event, other = clash
                    request.fail(EventIdConflict(event.event_id, event.stream_name, other.stream_name, other.order_id))
                    continue
                if all(known):
                    # A retry of something already stored: answer with what is stored.
                    request.result = [k for k in known if k is not None]
                    request.done()
                    continue
                fresh = [e for e, k in zip(request.events, known, strict=True) if k is None]
            else:
                # Ids the store generated are new by construction: nothing to look up.
                known, fresh = [], request.events
            if tombstoned and not request.streams.isdisjoint(tombstoned):
                request.fail(StreamDeleted(min(request.streams & tombstoned)))
                continue
            if request.expected != "any":
                stream = fresh[0].stream_name
                current = tentative.get(stream, versions[stream])
                if request.expected == "no-stream":
                    ok = current == 0 or current < self._first_version(stream, current)
                else:
                    ok = current == request.expected
                if not ok:
                    request.fail(VersionConflict(stream, request.expected, current))
                    continue
            if request.checks is not None or request.condition is not None:
                refusal = self._check(request, versions, tentative, records)
                if refusal is not None:
                    request.fail(refusal)
                    continue
            assigned: list[RecordedEvent] = []
            append = assigned.append
            for stream, event_id, event_type, event_time, body, _client in fresh:  # once per event: kept tight
                order_id += 1
                version = (tentative.get(stream) or versions[stream]) + 1
                tentative[stream] = version
                append(
                    _new_record(
                        RecordedEvent,
                        (
                            order_id,
                            stream,
                            version,
                            event_id,
                            event_type,
                            event_time,
                            b'{"order-id":%d,"stream-version":%d,' % (order_id, version) + body,
                        ),
                    )
                )
            records.extend(assigned)
            if METADATA_STREAM in request.streams:
                # Metadata takes effect for the requests after it in this group (a tombstone
                # refuses them) and, once durable, for readers.
                changes = [e for e in assigned if e.stream_name == METADATA_STREAM]
                metadata_changes += changes
                self.metadata.apply(changes)
                tombstoned = self.metadata.tombstoned
            if request.client_ids:
                for record in assigned:
                    in_group[record.event_id] = record
                new_ones = iter(assigned)
                request.result = [k if k is not None else next(new_ones) for k in known]
            else:
                request.result = assigned
            accepted.append(request)

        if records:
            try:
                backend.append(records)
            except BaseException as exc:
                error = self._after_failed_append(records, exc)
                if error is None:  # stored after all
                    self.commits += 1
                    self.committed_events += len(records)
                    for request in accepted:
                        request.done()
                    return
                for request in accepted:
                    request.fail(error)
                if metadata_changes:
                    # Applied ahead of the write, which did not happen: read it again.
                    with contextlib.suppress(BaseException):
                        self.metadata.load(backend)
                return
            self.last_order_id = order_id
            versions.update(tentative)
            self.commits += 1
            self.committed_events += len(records)
        if records:
            # Published before the acknowledgements, so that a caller who has its answer
            # already sees its events counted in last_order_id() and in new subscriptions.
            self.broadcaster.publish(records)
        for request in accepted:
            request.done()

    def _after_failed_append(self, records: list[RecordedEvent], error: BaseException) -> PhotonError | None:
        """After `backend.append(records)` raised: None when the store holds them after all
        (they are published then), else the error to give their callers.

        A lost connection can hide a success, so the store is asked at once; what it holds
        beyond what subscribers were given is published (`_settle`). When it cannot be asked,
        the writer stays unsettled and asks again before its next write.
        """
        self.unsettled = True
        self.versions.clear()
        if isinstance(error, StoreLost):
            self.halted = error
            log.critical("%s", error)
            return error
        failed = error if isinstance(error, PhotonError) else BackendError(f"append failed: {error}")
        before = self.last_order_id
        try:
            found = self._settle()
        except StoreLost as exc:
            return exc
        except BaseException as exc:
            log.warning("a commit failed (%s) and the store cannot be asked what it holds yet: %s", error, exc)
            return failed
        ids = {event.order_id: event.event_id for event in found}
        if all(ids.get(record.order_id) == record.event_id for record in records):
            log.warning("a commit that reported an error (%s) was stored: acknowledged", error)
            return None
        if self.last_order_id != before and not isinstance(error, BackendUnavailable):
            # An earlier commit whose outcome was unknown landed late and took these positions.
            return BackendUnavailable(f"the store moved on while this commit was written ({error}); try again")
        return failed


def _query_items(query: Sequence[QueryItem] | Sequence[Mapping[str, Any]]) -> tuple[QueryItem, ...]:
    if all(isinstance(item, QueryItem) for item in query):
        return tuple(query)  # type: ignore[arg-type]
    return parse_query([dict(item) if isinstance(item, Mapping) else item for item in query])


class EventStore:
    """An open event store. Thread-safe: append, read and subscribe from any thread."""

    def __init__(
        self,
        backend: Backend,
        *,
        read_only: bool = False,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_batch: int = 5000,
        subscription_buffer: int = 10_000,
        subscription_buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        page_bytes: int = DEFAULT_PAGE_BYTES,
    ) -> None:
        self._backend = backend
        self.read_only = read_only
        self.max_event_bytes = max_event_bytes
        self.subscription_buffer = subscription_buffer
        self.subscription_buffer_bytes = subscription_buffer_bytes
        """Live event data buffered per subscriber before it falls back to the store."""
        self.page_bytes = page_bytes
        """Event data in one page of a history read (replays, subscriptions, `read`)."""
        state = backend.open(writer=not read_only)
        self._broadcaster = Broadcaster(state.last_order_id)
        self._committer: _Committer | None = None
        self._lifecycle = threading.Lock()
        self._wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWaker] = weakref.WeakKeyDictionary()
        self.closed = False
        self._metadata = MetadataCache()
        try:
            self._metadata.load(backend)
        except BaseException:
            backend.close()
            raise
        self.tracer: Any = None
        """An OpenTelemetry tracer for append spans (`photon.core.tracing`), or None."""
        self._groups: GroupManager | None = None
        if not read_only:
            self._committer = _Committer(backend, self._broadcaster, state.last_order_id, max_batch)
            self._committer.metadata = self._metadata
            self._committer.start()

    @classmethod
    def open(
        cls, config: Config | Mapping[str, str] | None = None, *, read_only: bool = False, **settings: Any
    ) -> EventStore:
        """Open the store a configuration describes.

        ``EventStore.open()`` opens the default embedded SQLite store (``photon.db``);
        ``EventStore.open(db_backend="memory")`` or ``EventStore.open({"db.backend": "file"})``
        choose others (keyword names use ``_`` for ``.``).
        """
        if not isinstance(config, Config):
            cli = dict(config or {})
            cli.update({name.replace("_", "."): str(value) for name, value in settings.items()})
            config = load_config(cli, environ={}, properties=False)
        elif settings:
            config = config.with_overrides(**settings)
        backend = backend_class(config["db.backend"])(config)
        return cls(
            backend,
            read_only=read_only,
            max_event_bytes=config["payload.max.bytes"],
            max_batch=config["commit.batch.max"],
            subscription_buffer=config["subscription.buffer"],
            subscription_buffer_bytes=config["subscription.buffer.bytes"],
            page_bytes=config["replay.page.bytes"],
        )

    @property
    def backend(self) -> Backend:
        return self._backend

    # -- writing -----------------------------------------------------------------------------

    def append(
        self,
        events: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        expected_version: int | str | None = "any",
        expected_versions: Mapping[str, int | str] | None = None,
        condition: AppendCondition | Mapping[str, Any] | None = None,
    ) -> list[RecordedEvent]:
        """Append one event or a batch atomically; returns the stored events, in order.

        `expected_version` (a number, ``"any"`` or ``"no-stream"``) applies to the batch's one
        stream. `expected_versions` maps stream names to such versions: a batch may then span
        several streams, and is stored only if every named stream is at its version (a named
        stream need not be written to). `condition` (an `AppendCondition`, or its JSON form
        ``{"query": [{"event-types": [...], "tags": [...]}], "after": P}``) stores the batch only
        if no event matching the query has been stored after order-id P, and raises
        `AppendConditionFailed` naming the first such event otherwise. All checks and the write
        are one step of the single writer: nothing can be stored between them.

        An event whose `id` is already stored is not stored again: the stored one is returned in
        its place (a batch whose events are all stored already is answered without checks).
        Raises `ValidationError`, `VersionConflict`, `AppendConditionFailed` or `BackendError`;
        in every case nothing of the batch is stored.
        """
        batch = [events] if isinstance(events, Mapping) else list(events)
        options = self._options(expected_version, expected_versions, condition)
        return self._submit(*self._prepare(batch, options, internal=False))

    async def append_async(
        self,
        events: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        expected_version: int | str | None = "any",
        expected_versions: Mapping[str, int | str] | None = None,
        condition: AppendCondition | Mapping[str, Any] | None = None,
    ) -> list[RecordedEvent]:
        """`append` for asyncio callers: the same semantics, without blocking the event loop.

        Small batches are validated on the loop; large ones in a worker thread.
        """
        batch = [events] if isinstance(events, Mapping) else list(events)
        options = self._options(expected_version, expected_versions, condition)
        if len(batch) > INLINE_VALIDATION:
            prepared = await asyncio.to_thread(self._prepare, batch, options, internal=False)
        else:
            prepared = self._prepare(batch, options, internal=False)
        return await self._submit_async(*prepared)

    def append_request(self, events: Any, options: AppendOptions) -> list[RecordedEvent]:
        """`append` with options already read from an emit request (`photon.core.append_request`)."""
        batch = [events] if isinstance(events, Mapping) else list(events)
        return self._submit(*self._prepare(batch, options, internal=False))

    async def append_request_async(self, events: Any, options: AppendOptions) -> list[RecordedEvent]:
        """`append_request` for asyncio callers."""
        batch = [events] if isinstance(events, Mapping) else list(events)
        if len(batch) > INLINE_VALIDATION:
            prepared = await asyncio.to_thread(self._prepare, batch, options, internal=False)
        else:
            prepared = self._prepare(batch, options, internal=False)
        return await self._submit_async(*prepared)

    @staticmethod
    def _options(expected_version: Any, expected_versions: Any, condition: Any) -> AppendOptions:
        if expected_versions is None and condition is None:
            return AppendOptions(parse_expected_version(expected_version))
        return append_options(expected_version, expected_versions, condition)

    async def append_validated_async(self, pending: Sequence[PendingEvent]) -> list[RecordedEvent]:
        """`append_validated` for asyncio callers."""
        if not pending:
            raise ValidationError("no events to append")
        return await self._submit_async(list(pending), "any")

    async def _submit_async(
        self,
        pending: list[PendingEvent],
        expected: int | str,
        checks: Mapping[str, int | str] | None = None,
        condition: AppendCondition | None = None,
    ) -> list[RecordedEvent]:
        committer = self._committer
        if committer is None or self.closed:
            raise StoreClosed("the store is closed")
        loop = asyncio.get_running_loop()
        waker = self._wakers.get(loop)
        if waker is None:
            waker = self._wakers[loop] = _LoopWaker(loop)
        future: asyncio.Future[None] = loop.create_future()
        request = _AppendRequest(pending, expected, partial(waker.resolve, future), checks, condition)
        with self._append_span(len(pending)) as span:
            committer.requests.put(request)
            # Once handed in, the append completes even if the caller is cancelled.
            await asyncio.shield(future)
            if request.error is not None:
                raise request.error
            _describe_span(span, request.result)
        return request.result

    def append_internal(self, stream: str, event_type: str, payload: Mapping[str, Any]) -> RecordedEvent:
        """Write an event to an internal (`__`) stream such as `__config__`: for the core only."""
        if not is_internal(stream) or stream == ALL_STREAM:
            raise ValidationError(f"{stream!r} is not a writable internal stream", "stream-name")
        event = {"stream-name": stream, "event-type": event_type, "payload": payload, "service-id": "photon"}
        return self._submit(*self._prepare([event], _NO_OPTIONS, internal=True))[0]

    def append_internal_events(self, events: Sequence[Mapping[str, Any]]) -> list[RecordedEvent]:
        """Write several events to internal streams atomically (parked events): for the core only."""
        for event in events:
            stream = event.get("stream-name")
            if not isinstance(stream, str) or not is_internal(stream) or stream == ALL_STREAM:
                raise ValidationError(f"{stream!r} is not a writable internal stream", "stream-name")
        batch = [{"service-id": "photon", **event} for event in events]
        return self._submit(*self._prepare(batch, _NO_OPTIONS, internal=True))

    @property
    def groups(self) -> GroupManager:
        """The store's consumer groups (started on first use; only in the writing process)."""
        with self._lifecycle:
            if self._groups is None:
                if self.closed:
                    raise StoreClosed("the store is closed")
                from photon.groups import GroupManager

                self._groups = GroupManager(self)
            return self._groups

    def validate(self, event: Any, *, now: int | None = None, new_id: Callable[[], str] = new_event_id) -> PendingEvent:
        """Check one client event against this store's limits (raises `ValidationError`).

        For front ends that take many independent events (TCP ingest): validate each on its
        own, answer the bad ones, and hand the good ones to `append_validated` together.
        Such a front end may read the clock once for many events (`now`, epoch milliseconds)
        and make their ids together (`new_id`, e.g. over `new_event_ids`).
        """
        if self.read_only:
            raise ReadOnlyStore("this store was opened read-only")
        return validate_event(event, max_bytes=self.max_event_bytes, now=now, new_id=new_id)

    def append_validated(self, pending: Sequence[PendingEvent]) -> list[RecordedEvent]:
        """Append events already checked by `validate`, atomically (no expected version).

        The events' ids must be distinct (the caller splits batches at a repeated id).
        """
        if not pending:
            raise ValidationError("no events to append")
        return self._submit(list(pending), "any")

    def _prepare(
        self, batch: list[Any], options: AppendOptions, *, internal: bool
    ) -> tuple[list[PendingEvent], int | str, Mapping[str, int | str] | None, AppendCondition | None]:
        if self.read_only:
            raise ReadOnlyStore("this store was opened read-only")
        if not batch:
            raise ValidationError("no events to append")
        max_bytes = self.max_event_bytes
        now = now_millis()  # one clock reading for the whole batch
        fast = prepare_batch(batch, max_bytes, now) if len(batch) >= BATCH_VALIDATION and not internal else None
        if fast is not None:
            pending = fast
        else:
            # Ids for the events that come without one, made together (those left over go unused).
            new_id = iter(new_event_ids(len(batch))).__next__
            pending = []
            for index, event in enumerate(batch):
                try:
                    pending.append(prepare_event(event, max_bytes, internal, now, new_id))
                except ValidationError as exc:
                    if len(batch) > 1:
                        raise type(exc)(f"event {index}: {exc}", exc.field) from None
                    raise
        expected = options.expected_version
        if expected != "any" and len({e.stream_name for e in pending}) > 1:
            raise ValidationError(
                "expected-version needs every event of the batch in one stream (use expected-versions for several)",
                "expected-version",
            )
        checks = options.expected_versions
        if checks is not None and expected != "any":
            raise ValidationError("give expected-version or expected-versions, not both", "expected-versions")
        chosen = _client_ids(pending)
        if len(chosen) > 1 and len(set(chosen)) < len(chosen):
            # Only ids the client chose can repeat: the store's own are unique by construction.
            seen: set[str] = set()
            for index, event in enumerate(pending):
                if not event.client_id:
                    continue
                if event.event_id in seen:
                    raise ValidationError(f"event {index}: id {event.event_id!r} appears twice in the batch", "id")
                seen.add(event.event_id)
        return pending, expected, checks, options.condition

    def _submit(
        self,
        pending: list[PendingEvent],
        expected: int | str,
        checks: Mapping[str, int | str] | None = None,
        condition: AppendCondition | None = None,
    ) -> list[RecordedEvent]:
        committer = self._committer
        if committer is None or self.closed:
            raise StoreClosed("the store is closed")
        request = _AppendRequest(pending, expected, None, checks, condition)
        with self._append_span(len(pending)) as span:
            committer.requests.put(request)
            request.wait()
            if request.error is not None:
                raise request.error
            _describe_span(span, request.result)
        return request.result

    def _append_span(self, events: int) -> contextlib.AbstractContextManager[Any]:
        """A tracing span around one append, from hand-in to durable acknowledgement (`photon.core.tracing`
        sets `tracer` when `otel.endpoint` is configured; otherwise nothing is traced)."""
        tracer = self.tracer
        if tracer is None:
            return contextlib.nullcontext()
        span: contextlib.AbstractContextManager[Any] = tracer.start_as_current_span(
            "photon.append", attributes={"photon.events": events}
        )
        return span

    def delete_stream(self, stream: str, *, hard: bool = False) -> int:
        """Delete a client stream; returns how many of its events it held (its current version).

        Soft (the default, as KurrentDB): the stream reads as gone at once (its metadata's
        `truncate-before` goes past its last version); writing to it again continues its version
        numbering. Hard: also a tombstone, and the stream can never be written again. Both are
        recorded in `__metadata__` and, as `stream-deleted`, in `__config__`, in one atomic
        append; a scavenge removes the events. Raises `NotFound` for a stream that reads as gone
        (`StreamDeleted` once tombstoned), unless `hard` turns a soft-deleted stream into a tombstone.
        """
        if is_internal(stream):
            raise ValidationError(f"stream {stream!r} is internal and cannot be deleted", "stream-name")
        if self._committer is not None and self._committer.halted is not None:
            raise self._committer.halted  # the store lost events: nothing is written, nor looked up
        while True:
            current = self.stream_version(stream)
            metadata = self._metadata.get(stream) or StreamMetadata()
            if metadata.tombstone:
                raise StreamDeleted(stream)
            visible = current > 0 and current >= metadata.first_version(current)
            if not visible and not (hard and current > 0):
                raise NotFound(f"stream {stream!r} does not exist")
            deleted = replace(metadata, truncate_before=current + 1, tombstone=hard)
            events = [
                metadata_event(stream, deleted),
                {
                    "stream-name": CONFIG_STREAM,
                    "event-type": "stream-deleted",
                    "payload": {"stream-name": stream, "deleted-events": current, "mode": "hard" if hard else "soft"},
                    "service-id": "photon",
                },
            ]
            # The stream must still be at `current` when the deletion is written: an append in
            # between would otherwise be hidden with the rest.
            options = AppendOptions(expected_versions={stream: current})
            try:
                self._submit(*self._prepare(events, options, internal=True))
            except VersionConflict:
                continue
            return current

    def stream_metadata(self, stream: str) -> StreamMetadata:
        """The stream's metadata (empty when it has none)."""
        return self._metadata.get(stream) or StreamMetadata()

    def set_stream_metadata(self, stream: str, metadata: Mapping[str, Any] | StreamMetadata) -> StreamMetadata:
        """Set a client stream's metadata: `max-age` (seconds), `max-count`, `truncate-before`, user keys.

        Replaces the whole metadata (as KurrentDB's does); the stream need not exist. Takes
        effect for readers at once. Raises `ValidationError` for bad values and `StreamDeleted`
        for a tombstoned stream.
        """
        if is_internal(stream):
            raise ValidationError(f"stream {stream!r} is internal: it has no metadata", "stream-name")
        parsed = metadata if isinstance(metadata, StreamMetadata) else parse_metadata(metadata)
        current = self._metadata.get(stream)
        if current is not None and current.tombstone:
            raise StreamDeleted(stream)
        if parsed.tombstone:
            raise ValidationError("a tombstone is set by a hard delete", "tombstone")
        self._submit(*self._prepare([metadata_event(stream, parsed)], _NO_OPTIONS, internal=True))
        return parsed

    def read_bounds(
        self, stream: str, from_version: int | None, from_time: int | None
    ) -> tuple[int | None, int | None]:
        """The version and time bounds of a read of `stream`, narrowed by its metadata (one rule
        for reads, replays and subscriptions)."""
        metadata = self._metadata.get(stream)
        if metadata is None or not metadata.limits_reads:
            return from_version, from_time
        first = metadata.first_version(self.stream_version(stream) if metadata.max_count is not None else 0)
        if first > 1:
            from_version = max(from_version or 1, first)
        earliest = metadata.first_time(now_millis())
        if earliest is not None:
            from_time = max(from_time or 0, earliest)
        return from_version, from_time

    def stream_exists(self, stream: str) -> bool:
        """Whether the stream has events a reader can see (a deleted or fully truncated one has none)."""
        current = self.stream_version(stream)
        if current == 0:
            return False
        metadata = self._metadata.get(stream)
        if metadata is None:
            return True
        if metadata.tombstone or current < metadata.first_version(current):
            return False
        if metadata.max_age is not None:
            return any(True for _ in self.read(stream, from_version=current, limit=1))
        return True

    def _visible(self, info: StreamInfo) -> bool:
        metadata = self._metadata.get(info.stream_name)
        if metadata is None:
            return True
        return not metadata.tombstone and info.total_events >= metadata.first_version(info.total_events)

    def import_events(self, records: Iterable[RecordedEvent], *, batch_size: int = 20_000) -> int:
        """Store events that already carry their positions (a restore): see `photon.ops.restore`.

        Order-ids must increase past the store's last, stream-versions must continue each
        stream; each batch is checked and written atomically in the writer thread.
        """
        from photon.ops.restore import import_events  # here: restore.py builds on this module

        return import_events(self, records, batch_size=batch_size)

    def metadata_snapshot(self) -> dict[str, StreamMetadata]:
        """Every stream's metadata, as it is now (streams without any left out)."""
        return dict(self._metadata.streams)

    def scavenge(self, progress: Callable[[int, int], None] | None = None) -> ScavengeReport:
        """Remove deleted, expired and truncated events online, then give the space back: see `photon.core.scavenge`."""
        from photon.core.scavenge import scavenge

        return scavenge(self, progress)

    def redact(
        self, *, stream: str | None = None, event_ids: Sequence[str] | None = None, reason: str | None = None
    ) -> int:
        """Replace the payload of a stream's events, or of the events with these ids, with a
        redaction marker (see `photon.core.redaction`); returns how many were redacted."""
        from photon.core.redaction import redact

        return redact(self, stream=stream, event_ids=event_ids, reason=reason)

    def in_writer(self, run: Callable[[_Committer], Any]) -> Any:
        """Run `run(committer)` in the writer thread, between two commits (maintenance work)."""
        return self._in_writer(run)

    def _in_writer(self, run: Any) -> Any:
        """Run `run(committer)` in the writer thread, between two commits."""
        committer = self._committer
        if committer is None:
            raise ReadOnlyStore("this store was opened read-only")
        if self.closed:
            raise StoreClosed("the store is closed")
        action = _Action(run)
        committer.requests.put(action)
        action.done.wait()
        if action.error is not None:
            raise action.error
        return action.result

    # -- reading -------------------------------------------------------------------------

    def read(
        self,
        stream: str = ALL_STREAM,
        *,
        from_order_id: int | None = None,
        from_version: int | None = None,
        from_time: int | None = None,
        to_order_id: int | None = None,
        event_types: Iterable[str] | None = None,
        limit: int | None = None,
        event_filter: EventFilter | None = None,
    ) -> Iterator[RecordedEvent]:
        """Stored events of a stream, `__all__` or a category (`__category__:<name>`) in order,
        from any kind of position, up to a bound; `event_filter` narrows `__all__` or a category."""
        if from_version is not None and not is_one_stream(stream):
            raise ValidationError(
                "from-version applies to a stream; use from (order-id) for __all__, a category or a wildcard",
                "from-version",
            )
        if is_one_stream(stream):
            from_version, from_time = self.read_bounds(stream, from_version, from_time)
        types = frozenset(event_types) if event_types is not None else None
        backend = self._backend
        plan = plan_read(backend, stream, types, event_filter)
        next_order_id = from_order_id or 1
        version = from_version or 1
        remaining = limit
        pages = PageSizer(backend.read_page_size, self.page_bytes)
        while remaining is None or remaining > 0:
            page = pages.next() if remaining is None else min(pages.next(), remaining)
            events, next_order_id, exhausted = read_page(
                backend,
                plan,
                from_order_id=next_order_id,
                to_order_id=to_order_id,
                from_version=version,
                from_time=from_time,
                limit=page,
            )
            pages.saw(events)
            yield from events
            if exhausted:
                return
            version = 1
            if remaining is not None:
                remaining -= len(events)

    def read_matching(
        self,
        query: Sequence[QueryItem] | Sequence[Mapping[str, Any]] = (),
        *,
        after: int = 0,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Events of client streams matching a query (as a condition's), with order-id above `after`, in order.

        `query` is a list of `QueryItem`s or of their JSON form ``{"event-types": [...], "tags": [...]}``;
        an empty query matches every client event. What a conditional append checks is exactly
        what this returns.
        """
        items = _query_items(query)
        if type(after) is not int or after < 0:
            raise ValidationError(f"after must be an order-id (0 or more), got {after!r}", "after")
        remaining = limit
        page_size = self._backend.read_page_size
        position = after
        while remaining is None or remaining > 0:
            page = page_size if remaining is None else min(page_size, remaining)
            events = self._backend.read_matching(items, position, page)
            yield from events
            if len(events) < page:
                return
            position = events[-1].order_id
            if remaining is not None:
                remaining -= len(events)

    def read_backward(
        self,
        stream: str = ALL_STREAM,
        *,
        from_order_id: int | None = None,
        from_version: int | None = None,
        event_types: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Stored events of a stream (or `__all__`) newest first, from the newest or from a position (inclusive).

        Backends read forwards only; this reads windows of positions whose bounds are known
        (order-ids for `__all__`, versions for a stream, whose versions run 1..current with no
        gap) and hands each window out reversed. A window that comes back short (deleted
        streams leave holes in `__all__`; a type filter skips events) doubles the next one.
        """
        if from_version is not None and stream == ALL_STREAM:
            raise ValidationError("from-version applies to a stream; use from (order-id) for __all__", "from-version")
        types = frozenset(event_types) if event_types is not None else None
        backend = self._backend
        widest = backend.read_page_size * _BACKWARD_SPAN_PAGES
        span = min(limit or backend.read_page_size, backend.read_page_size)
        remaining = limit
        if stream == ALL_STREAM:
            top = self.last_order_id() if from_order_id is None else from_order_id
            while top >= 1 and (remaining is None or remaining > 0):
                low = max(1, top - span + 1)
                window = backend.read(Query(from_order_id=low, to_order_id=top, event_types=types, limit=top - low + 1))
                found = len(window)
                window.reverse()
                if remaining is not None:
                    del window[remaining:]
                    remaining -= len(window)
                yield from window
                top = low - 1
                if found < span:
                    span = min(span * 2, widest)
            return
        top_version = self.stream_version(stream)
        bottom, earliest = self.read_bounds(stream, None, None)
        if from_version is not None:
            top_version = min(top_version, from_version)
        if from_order_id is not None:
            # The stream's first event past the order-id bounds the versions to read.
            after = backend.read(Query(stream=stream, from_order_id=from_order_id + 1, limit=1))
            if after:
                top_version = min(top_version, after[0].stream_version - 1)
        bottom = bottom or 1
        while top_version >= bottom and (remaining is None or remaining > 0):
            low = max(bottom, top_version - span + 1)
            window = backend.read(
                Query(stream=stream, from_version=low, from_time=earliest, limit=top_version - low + 1)
            )
            window = [e for e in window if e.stream_version <= top_version]
            if types is not None:
                window = [e for e in window if e.event_type in types]
            found = len(window)
            window.reverse()
            if remaining is not None:
                del window[remaining:]
                remaining -= len(window)
            yield from window
            top_version = low - 1
            if found < span:
                span = min(span * 2, widest)

    def subscribe(
        self,
        stream: str = ALL_STREAM,
        stream_type: StreamType = "hot-cold",
        *,
        from_order_id: int | None = None,
        from_version: int | None = None,
        from_time: int | None = None,
        to_order_id: int | None = None,
        event_types: Iterable[str] | None = None,
        limit: int | None = None,
        event_filter: EventFilter | None = None,
    ) -> Subscription:
        """Replay a stream, `__all__` or a category: `cold` (history, then end), `hot` (live only) or
        `hot-cold` (history, then live); `event_filter` narrows `__all__` or a category."""
        if self.closed:
            raise StoreClosed("the store is closed")
        if from_version is not None and not is_one_stream(stream):
            raise ValidationError(
                "from-version applies to a stream; use from (order-id) for __all__, a category or a wildcard",
                "from-version",
            )
        if is_one_stream(stream):
            from_version, from_time = self.read_bounds(stream, from_version, from_time)
        return Subscription(
            self,
            stream,
            stream_type,
            from_order_id=from_order_id,
            from_version=from_version,
            from_time=from_time,
            to_order_id=to_order_id,
            event_types=frozenset(event_types) if event_types is not None else None,
            limit=limit,
            page_size=self._backend.read_page_size,
            buffer=self.subscription_buffer,
            buffer_bytes=self.subscription_buffer_bytes,
            page_bytes=self.page_bytes,
            event_filter=event_filter,
        )

    def streams(self) -> list[StreamInfo]:
        """Every stream holding events, with its event count (its version), in name order.

        Deleted streams (and streams whose events are all truncated) are left out."""
        found = self._backend.streams()
        return [info for info in found if self._visible(info)] if self._metadata.streams else list(found)

    def stream_page(self, *, prefix: str = "", after: str | None = None, limit: int = 100) -> list[StreamInfo]:
        """One page of the stream list: streams named `prefix...` after the name `after`, in name order."""
        if limit < 1:
            raise ValidationError(f"limit must be at least 1, got {limit}", "limit")
        page = self._backend.stream_page(prefix, after, limit)
        if not self._metadata.streams:
            return page
        # Deleted streams are left out: fetch more until the page is full or the list ends.
        visible = [info for info in page if self._visible(info)]
        while len(page) == limit and len(visible) < limit:
            page = self._backend.stream_page(prefix, page[-1].stream_name, limit)
            visible += [info for info in page if self._visible(info)]
        return visible[:limit]

    def categories(self, *, after: str | None = None, limit: int = 100) -> tuple[list[str], str | None]:
        """One page of categories (see `category_of`), in the order of their first stream's name.

        Returns the categories and the cursor for the next page (the last category, to pass as
        `after`; None at the end). Each round reads a page of stream names, then seeks past the
        rest of the last category seen, so a category of many streams costs one round, not one
        per stream.
        """
        if limit < 1:
            raise ValidationError(f"limit must be at least 1, got {limit}", "limit")
        found: list[str] = []
        seen: set[str] = set() if after is None else {after}
        cursor = after
        while True:
            page = self._backend.stream_page("", cursor, _CATEGORY_ROUND)
            if not page:
                return found, None
            for info in page:
                category = category_of(info.stream_name)
                if category not in seen:
                    if len(found) == limit:
                        return found, found[-1]
                    seen.add(category)
                    found.append(category)
            last = page[-1].stream_name
            cursor = last
            if CATEGORY_SEPARATOR in last:
                cursor = category_of(last) + CATEGORY_SEPARATOR + _HIGHEST_TAIL

    def stream_version(self, stream: str) -> int:
        """The stream's current version (its number of events); 0 when it does not exist."""
        return self._backend.stream_versions([stream]).get(stream, 0)

    def last_order_id(self) -> int:
        """The order-id of the newest durable event (0 when empty)."""
        if self._committer is not None:
            return self._broadcaster.head
        return self._backend.last_order_id()

    def get_event(self, event_id: str) -> RecordedEvent | None:
        return self._backend.events_by_id([event_id]).get(event_id)

    def get_by_order_id(self, order_id: int) -> RecordedEvent | None:
        events = self._backend.read(Query(from_order_id=order_id, to_order_id=order_id, limit=1))
        return events[0] if events else None

    # -- checkpoints ---------------------------------------------------------------------

    def read_checkpoint(self, key: str) -> Any:
        raw = self._backend.read_checkpoint(key)
        return None if raw is None else orjson.loads(raw)

    def write_checkpoint(self, key: str, value: Any) -> None:
        self._backend.write_checkpoint(key, None if value is None else orjson.dumps(value))

    # -- life cycle ------------------------------------------------------------------------

    def observe_backend(self, on_append: Callable[[float, int], None], on_read: Callable[[float], None]) -> None:
        """Have every backend append (seconds, events: one group-commit transaction) and read
        (seconds: one page) reported, for metrics. Wraps this store's backend object once."""
        backend = self._backend
        append, read = backend.append, backend.read

        def timed_append(events: Sequence[RecordedEvent]) -> None:
            started = time.perf_counter()
            try:
                append(events)
            finally:
                on_append(time.perf_counter() - started, len(events))

        def timed_read(query: Query) -> list[RecordedEvent]:
            started = time.perf_counter()
            try:
                return read(query)
            finally:
                on_read(time.perf_counter() - started)

        backend.append = timed_append  # type: ignore[method-assign]
        backend.read = timed_read  # type: ignore[method-assign]

    def subscriber_stats(self) -> tuple[int, int]:
        """Live subscribers, and the events waiting in their buffers."""
        return self._broadcaster.stats()

    def not_ready(self) -> str | None:
        """Why this store cannot take appends now (closed, the writer stopped, the backend does not
        answer, the writer lock is in doubt), or None when it can. Asks the backend once (a read)."""
        committer = self._committer
        if self.closed:
            return "the store is closed"
        if committer is None:
            return "the store is open read-only"
        if committer.halted is not None:
            return f"the writer stopped: {committer.halted}"
        if not committer.is_alive():
            return "the writer thread is not running"
        try:
            self._backend.last_order_id()
        except Exception as exc:  # a driver error the backend did not translate counts too
            return f"the backend does not answer: {exc}"
        return self._backend.writer_problem()

    def stats(self) -> dict[str, Any]:
        committer = self._committer
        return {
            "backend": self._backend.describe(),
            "last-order-id": self.last_order_id(),
            "commits": committer.commits if committer else 0,
            "committed-events": committer.committed_events if committer else 0,
        }

    def close(self) -> None:
        """Finish every append already handed in, then release the backend. Safe to call twice."""
        with self._lifecycle:
            if self.closed:
                return
            if self._groups is not None:
                # Groups write their last acks while the store can still take writes.
                self._groups.stop()
            self.closed = True
            if self._committer is not None:
                self._committer.requests.put(_STOP)
                self._committer.join()
                # Requests that raced with the stop get a clear answer instead of waiting forever.
                while True:
                    try:
                        item = self._committer.requests.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(item, _AppendRequest):
                        item.fail(StoreClosed("the store was closed before this append"))
                    elif isinstance(item, _Action):
                        item.error = StoreClosed("the store was closed")
                        item.done.set()
            self._broadcaster.close()
            self._backend.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
