"""The event store: one backend, one writer, and the reads and subscriptions over them.

`EventStore` is the facade every front end uses, and the only owner of the store's invariants:
appends are prepared in the caller's thread (`photon.core.append_prepare`) and handed to the
single writer thread (`photon.core.committer`, group commit; `photon.core.unknown_commit` when a
commit's outcome is unknown); events that carry their positions (a restore) go through the same
writer (`photon.core.positioned_import`); reads page through `photon.core.paging`
(`photon.core.reads`); live subscribers get what the writer publishes
(`photon.core.subscriptions`).

Long because the facade holds every way in (blocking and asyncio appends, reads, subscriptions,
positioned writes) over the modules above; each method is a thin hand-off to one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import orjson

from photon.core.append_prepare import prepare_append
from photon.core.append_request import AppendCondition, AppendOptions, append_options
from photon.core.backend import Backend, ClosedBackend, backend_class
from photon.core.backend_timing import time_backend
from photon.core.broadcaster import Broadcaster
from photon.core.committer import Action, AppendRequest, Committer
from photon.core.config import Config, load_config
from photon.core.errors import (
    ReadOnlyStore,
    StoreClosed,
    ValidationError,
)
from photon.core.event_validation import parse_expected_version, prepare_event, validate_event
from photon.core.events import (
    ALL_STREAM,
    DEFAULT_MAX_EVENT_BYTES,
    PendingEvent,
    RecordedEvent,
    Tagless,
    is_internal,
    new_event_id,
)
from photon.core.filters import EventFilter
from photon.core.loop_waker import LoopWaker
from photon.core.positioned_import import BATCH_SIZE, bulk_load, import_events
from photon.core.stream_admin import StreamAdmin
from photon.core.stream_metadata import MetadataCache
from photon.core.subscriptions import (
    DEFAULT_BUFFER_BYTES,
    DEFAULT_PAGE_BYTES,
    StreamType,
    Subscription,
    check_stream_type,
)

if TYPE_CHECKING:
    from photon.groups import GroupManager

INLINE_VALIDATION = 1000
"""Async appends of up to this many events are validated on the event loop; larger ones in a
worker thread. Validating this many takes about the interpreter's thread switch interval (5 ms),
the longest a worker thread holding the GIL keeps the loop waiting anyway, so below it a thread
would only add its hand-offs: 100 to 150 µs of CPU for a 100-event emit (`benchmarks.request_cost`)."""
_NO_OPTIONS = AppendOptions()


def _describe_span(span: Any, stored: list[RecordedEvent]) -> None:
    if span is not None and stored:
        span.set_attribute("photon.order_id.first", stored[0].order_id)
        span.set_attribute("photon.order_id.last", stored[-1].order_id)


class EventStore(StreamAdmin):
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
        state = backend.open(writer=not read_only)
        self._broadcaster = Broadcaster(state.last_order_id)
        self._committer: Committer | None = None
        self._lifecycle = threading.Lock()
        self._wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWaker] = weakref.WeakKeyDictionary()
        self._last_waker: LoopWaker | None = None
        """The waker of the loop that appended last: most appends come from one loop (a server's)."""
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
            self._committer = Committer(backend, self._broadcaster, state.last_order_id, max_batch)
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
        if type(events) is dict and expected_version == "any" and expected_versions is None and condition is None:
            # One event without options, the append of many single-event writers: what
            # `prepare_append` does for it (the same checks and errors), without the calls that
            # read options and batches (every call here is paid by each caller, one after the
            # other behind the interpreter lock, while the writer waits for them).
            if self.read_only:
                raise ReadOnlyStore("this store was opened read-only")
            return self._submit([prepare_event(events, self.max_event_bytes, False, None, new_event_id)], "any")
        batch = [events] if type(events) is dict or isinstance(events, Mapping) else list(events)
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

    async def append_request_async(
        self, events: Any, options: AppendOptions, caller: Hashable = 0
    ) -> list[RecordedEvent]:
        """`append_request` for asyncio callers. `caller` names who will hand in its next append
        as soon as this one is answered (a front end's connection), so that the writer may wait a
        moment for it and commit it with the others that come back (`Committer.gather`)."""
        batch = [events] if isinstance(events, Mapping) else list(events)
        if len(batch) > INLINE_VALIDATION:
            prepared = await asyncio.to_thread(self._prepare, batch, options, internal=False)
        else:
            prepared = self._prepare(batch, options, internal=False)
        return await self._submit_async(*prepared, caller=caller)

    @staticmethod
    def _options(expected_version: Any, expected_versions: Any, condition: Any) -> AppendOptions:
        if expected_versions is None and condition is None:
            if expected_version == "any":
                return _NO_OPTIONS  # the common case, read without making anything
            return AppendOptions(parse_expected_version(expected_version))
        return append_options(expected_version, expected_versions, condition)

    async def append_validated_async(self, pending: Sequence[PendingEvent]) -> list[RecordedEvent]:
        """Append events already checked by `validate`, atomically (no expected version), for
        asyncio callers (TCP ingest). The events' ids must be distinct (the caller splits
        batches at a repeated id)."""
        if not pending:
            raise ValidationError("no events to append")
        # A `Tagless` batch (from `prepare_batch`) stays one: the writer then skips the tag search.
        return await self._submit_async(pending if isinstance(pending, Tagless) else list(pending), "any")

    async def _submit_async(
        self,
        pending: list[PendingEvent],
        expected: int | str,
        checks: Mapping[str, int | str] | None = None,
        condition: AppendCondition | None = None,
        caller: Hashable = 0,
    ) -> list[RecordedEvent]:
        committer = self._committer
        if committer is None or self.closed:
            raise StoreClosed("the store is closed")
        loop = asyncio.get_running_loop()
        waker = self._last_waker
        if waker is None or waker.loop is not loop:
            waker = self._wakers.get(loop)
            if waker is None:
                waker = self._wakers[loop] = LoopWaker(loop)
            self._last_waker = waker
        future: asyncio.Future[None] = loop.create_future()
        request = AppendRequest(pending, expected, partial(waker.resolve, future), checks, condition, caller)
        # Once handed in, the append completes even if the caller is cancelled: the writer goes on
        # with it, and the waker leaves a cancelled future alone. (No `shield`: its outer future
        # would add a turn of the loop before the caller wakes.)
        if self.tracer is None:  # no span to open (the usual case): not even a null one
            committer.requests.put(request)
            await future
            if request.error is not None:
                raise request.error
            return request.result
        with self._append_span(len(pending)) as span:
            committer.requests.put(request)
            await future
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
        own, answer the bad ones, and hand the good ones to `append_validated_async` together.
        Such a front end may read the clock once for many events (`now`, epoch milliseconds)
        and make their ids together (`new_id`, e.g. over `new_event_ids`).
        """
        if self.read_only:
            raise ReadOnlyStore("this store was opened read-only")
        return validate_event(event, max_bytes=self.max_event_bytes, now=now, new_id=new_id)

    def _prepare(
        self, batch: list[Any], options: AppendOptions, *, internal: bool
    ) -> tuple[list[PendingEvent], int | str, Mapping[str, int | str] | None, AppendCondition | None]:
        if self.read_only:
            raise ReadOnlyStore("this store was opened read-only")
        return prepare_append(batch, options, self.max_event_bytes, internal=internal)

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
        request = AppendRequest(pending, expected, None, checks, condition)
        if self.tracer is None:  # most stores trace nothing: many single-event writers pay for every call here
            request.hand_in(committer.requests)
            return request.result
        with self._append_span(len(pending)) as span:
            request.hand_in(committer.requests)
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

    def _append_internal(self, events: list[dict[str, Any]], options: AppendOptions) -> list[RecordedEvent]:
        return self._submit(*self._prepare(events, options, internal=True))

    def import_events(
        self,
        records: Iterable[RecordedEvent],
        *,
        batch_size: int = BATCH_SIZE,
        on_batch: Callable[[int], object] | None = None,
    ) -> int:
        """Store events that already carry their positions (a restore): see `photon.core.positioned_import`.

        Order-ids must increase past the store's last, stream-versions must continue each
        stream; each batch is checked and written atomically in the writer thread.
        """
        return import_events(self, records, batch_size=batch_size, on_batch=on_batch)

    def bulk_load(self) -> contextlib.AbstractContextManager[bool]:
        """Let the backend load an empty store faster (a restore): see `positioned_import.bulk_load`."""
        return bulk_load(self)

    def write_generation(self) -> int | None:
        """The writer's count of writes (None for a read-only store): the same value before and
        after reading the store's state means nothing was written in between."""
        return self._committer.generation if self._committer is not None else None

    def in_writer(self, run: Callable[[Committer], Any]) -> Any:
        """Run `run(committer)` in the writer thread, between two commits (maintenance work)."""
        committer = self._committer
        if committer is None:
            raise ReadOnlyStore("this store was opened read-only")
        if self.closed:
            raise StoreClosed("the store is closed")
        action = Action(run)
        committer.requests.put(action)
        action.done.wait()
        if action.error is not None:
            raise action.error
        return action.result

    # -- reading -------------------------------------------------------------------------

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
        page_events: int | None = None,
        tell_fell_behind: bool = False,
    ) -> Subscription:
        """Replay a stream, `__all__` or a category: `cold` (history, then end), `hot` (live only) or
        `hot-cold` (history, then live); `event_filter` narrows `__all__` or a category.

        History is read in pages of at most `page_events` events (default: the backend's page
        size); `tell_fell_behind` has a `FellBehind` item tell a subscriber that read too slowly."""
        if self.closed:
            raise StoreClosed("the store is closed")
        check_stream_type(stream_type)
        history = self.history(
            stream,
            from_version=from_version,
            from_time=from_time,
            event_types=event_types,
            event_filter=event_filter,
            page_events=page_events,
        )
        return Subscription(
            history,
            self._broadcaster,
            stream,
            stream_type,
            last_order_id=self.last_order_id,
            is_closed=lambda: self.closed,
            from_order_id=from_order_id,
            to_order_id=to_order_id,
            limit=limit,
            buffer=self.subscription_buffer,
            buffer_bytes=self.subscription_buffer_bytes,
            tell_fell_behind=tell_fell_behind,
        )

    def last_order_id(self) -> int:
        """The order-id of the newest durable event (0 when empty)."""
        if self._committer is not None:
            return self._broadcaster.head
        return self._backend.last_order_id()

    # -- checkpoints ---------------------------------------------------------------------

    def read_checkpoint(self, key: str) -> Any:
        raw = self._backend.read_checkpoint(key)
        return None if raw is None else orjson.loads(raw)

    def read_checkpoint_json(self, key: str) -> bytes | None:
        """A checkpoint's value as the JSON it is stored as (not decoded)."""
        return self._backend.read_checkpoint(key)

    def write_checkpoint(self, key: str, value: Any) -> None:
        self._backend.write_checkpoint(key, None if value is None else orjson.dumps(value))

    def write_checkpoint_parts(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        """Set `key` to the JSON value `parts` make one after another (see
        `Backend.write_checkpoint_parts`): a value too large to copy whole, as a projection's state."""
        self._backend.write_checkpoint_parts(key, parts)

    # -- life cycle ------------------------------------------------------------------------

    def observe_backend(self, on_append: Callable[[float, int], None], on_read: Callable[[float], None]) -> None:
        """Have every backend append (seconds, events: one group-commit transaction) and read
        (seconds: one page) reported, for metrics. Wraps this store's backend object once."""
        time_backend(self._backend, on_append, on_read)

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
        problem = committer.problem()
        if problem is not None:
            return problem
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
                self._committer.stop()
            self._broadcaster.close()
            self._backend.close()
            # Reads after this raise StoreClosed, as appends do, not the released driver's errors.
            self._backend = cast(Backend, ClosedBackend(self._backend))

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
