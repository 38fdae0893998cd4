"""The single writer of a store (group commit).

One committer thread owns every write of a store: callers hand it validated events and wait; it
takes everything queued (and waits a moment for the callers it has just answered,
`Committer.gather`), checks expected versions, ids and conditions, assigns order-ids and
stream-versions, writes the lot in one backend transaction, and only then acknowledges the
callers and publishes the events to subscribers. Batching many callers into one durable commit
is what gives both durability and throughput. Work that must not interleave with commits
(deletions, a restore's positioned batches, a scavenge's steps) runs in the same thread, between
two groups (`Action`). What the writer does when a commit's outcome is unknown is in
`photon.core.unknown_commit`; a waiting caller's side is `photon.core.append_waits`.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from photon.core.append_request import query_matches
from photon.core.append_waits import AppendRequest, acknowledge, client_ids
from photon.core.backend import Backend
from photon.core.broadcaster import Broadcaster
from photon.core.errors import (
    AppendConditionFailed,
    EventIdConflict,
    PhotonError,
    StoreClosed,
    StreamDeleted,
    VersionConflict,
)
from photon.core.events import METADATA_STREAM, RecordedEvent, Tagless
from photon.core.stream_metadata import MetadataCache
from photon.core.unknown_commit import UnknownCommitRecovery

log = logging.getLogger("photon.store")

__all__ = ["STOP", "Action", "AppendRequest", "Committer", "acknowledge", "client_ids"]

_new_record = tuple.__new__

GATHER_MAX_SECONDS = 0.002
"""The longest the writer waits for the callers of its last group (see `Committer.gather`)."""
GATHER_QUIET_SECONDS = 0.0005
"""It stops waiting when none of them came for this long (they are busy elsewhere), and forgets
them when it was left idle this long."""
GATHER_BACKOFF_MAX = 256
"""After a wait that brought none of the callers it waited for, the writer commits the next
group without waiting, then 2, 4, ... up to this many: callers that write at their own pace
(a service emitting as its requests come, round robin over its connections) never come straight
back, and each wait would only delay their events (by up to `GATHER_QUIET_SECONDS`). One wait
that brings a caller back ends the back-off."""


class Requests(queue.SimpleQueue[Any]):
    """The writer's queue. While the writer waits for the callers of its last group
    (`Committer.gather`), the append that brings the queue to the length it waits for wakes it:
    one wake-up a group, at once, rather than the writer looking at its queue every 0.1 ms (each
    look a sleep that lasted about 0.33 ms and took the interpreter lock from the callers, and
    the last caller's append waited for the next look)."""

    __slots__ = ("arrived", "wanted")

    def __init__(self) -> None:
        super().__init__()
        self.wanted = _NOT_WAITING
        """The length of the queue the writer waits for; `_NOT_WAITING` when it waits for none."""
        self.arrived = threading.Event()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        _put(self, item)
        if self.qsize() >= self.wanted:
            self.arrived.set()

    def wait_for(self, length: int, timeout: float) -> None:
        """Wait until the queue holds `length` items (an append brings it there), or `timeout`
        seconds. Called by the writer, the queue's only reader."""
        arrived = self.arrived
        self.wanted = length
        arrived.clear()
        # An append between the writer's last look and `wanted` being set finds no one waiting;
        # the writer sees it here. One after `clear` sets `arrived`.
        if self.qsize() < length:
            arrived.wait(timeout)
        self.wanted = _NOT_WAITING


_put = queue.SimpleQueue.put
_NOT_WAITING = 1 << 62


class Action:
    """Work that must run in the writer thread between two groups (stream deletion)."""

    __slots__ = ("done", "error", "result", "run")

    def __init__(self, run: Any) -> None:
        self.run = run
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class Stop:
    pass


STOP = Stop()


class Committer(UnknownCommitRecovery, threading.Thread):
    """The single writer thread (group commit)."""

    def __init__(self, backend: Backend, broadcaster: Broadcaster, last_order_id: int, max_batch: int) -> None:
        super().__init__(name="photon-committer", daemon=True)
        self.backend = backend
        self.broadcaster = broadcaster
        self.last_order_id = last_order_id
        self.max_batch = max_batch
        self.requests = Requests()
        """What the callers hand in: `AppendRequest`, `Action` or `Stop`."""
        # Committed version of each stream seen so far (a cache; the backend is the truth).
        self.versions: dict[str, int] = {}
        self.metadata = MetadataCache()
        """Stream metadata (retention, deletion): the store's, updated here as it is committed."""
        self.commits = 0
        self.committed_events = 0
        self.unsettled = False
        self.halted = None
        self.generation = 0
        self.commit_seconds = 0.0
        """How long the last commit took."""
        self.returning: set[Hashable] = set()
        """The last group's callers (threads, connections), whose next appends may be on their way."""
        self.all_back = False
        """Every caller the last gathering waited for came back: the next one waits for its callers
        without the quiet window, until they are back or the limit (see `Committer.gather`)."""
        self.gather_skips = 0
        """Groups still to commit without waiting for their callers (see `GATHER_BACKOFF_MAX`)."""
        self.gather_backoff = 0
        """Counts the writes (commits and actions); it moves only after a write is done, so a
        reader who sees the same value before and after taking a snapshot of the store knows
        that nothing was written in between (see `photon.core.positioned_import`)."""

    def run(self) -> None:
        held: AppendRequest | Action | Stop | None = None
        requests = self.requests
        while True:
            # When the writer began to wait for the last group's callers, if an append ended the
            # wait (0 otherwise): `gather`'s limit counts from there.
            waited = 0.0
            if held is not None:
                first, held = held, None
            elif not requests.empty():  # this thread is the queue's only reader: get() returns at once
                first = requests.get()
            else:
                # (Asked with empty() rather than by catching queue.Empty from get_nowait():
                # an exception raised and caught at every idle commit.)
                idle_since = time.monotonic()
                if len(self.returning) > 1 and not self.gather_skips:
                    # Asleep until the last group's callers are all back, rather than woken by the
                    # first of them to start gathering (one wake-up less a group, and no turn at
                    # the interpreter lock among the callers coming back).
                    requests.wait_for(len(self.returning), min(GATHER_QUIET_SECONDS, self.gather_limit()))
                idle = requests.empty()
                first = requests.get()
                if not idle:
                    waited = idle_since
                elif time.monotonic() - idle_since > GATHER_QUIET_SECONDS:
                    self.returning = set()  # the last group's callers are not coming straight back
            if isinstance(first, Stop):
                break
            if isinstance(first, Action):
                self._run_action(first)
                continue
            group, held = self.gather(first, waited)
            started = time.monotonic()
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
            self.commit_seconds = time.monotonic() - started
            self.returning = {request.caller for request in group if request.caller}

    def gather_limit(self) -> float:
        """How long the writer may wait for the last group's callers: never longer than a commit
        took, so that a group waits at most one commit's time more."""
        return min(self.commit_seconds, GATHER_MAX_SECONDS)

    def gather(self, first: AppendRequest, waited: float = 0.0) -> tuple[list[AppendRequest], Action | Stop | None]:
        """The group to commit: `first`, what is queued behind it and the appends of the last
        group's callers, who are on their way back.

        With many threads each appending one event after another, a commit's callers hand in
        their next appends while the following group is written; a writer that took only what
        was queued would settle into two groups of half the threads each, taking turns. Waiting
        a moment for the callers it has just answered makes one group of them all, and the cost
        of a commit (its flush above all) is shared by twice the events. The wait ends when they
        are all back, when the group is full, when none came for `GATHER_QUIET_SECONDS` (they are
        busy elsewhere: a thread pool's threads between requests), or after at most one commit's
        time. Callers who do not come back when waited for are not waited for again for a while
        (`GATHER_BACKOFF_MAX`). Callers who all came back the last time (threads appending one
        after another) are waited for without the quiet window, up to the limit. The writer's
        wait begins before the first of them is back (`run`): `waited` is when it began, and the
        limit counts from there."""
        group = [first]
        size = len(first.events)
        requests, max_batch = self.requests, self.max_batch
        returning = self.returning
        returning.discard(first.caller)  # (a fresh set for each group: this one is the writer's own)
        awaited = bool(returning)
        steady = self.all_back
        deadline = last_came = 0.0
        came_back = False
        while size < max_batch:
            if requests.empty():  # the only reader: what empty() says holds until get()
                if not returning:
                    break
                now = time.monotonic()
                if not deadline:
                    if self.gather_skips:
                        self.gather_skips -= 1
                        break
                    deadline = (waited or now) + self.gather_limit()
                    last_came = now
                # Callers that all came back last time (threads appending one after another) are
                # waited for without the quiet window: a look at the queue every half millisecond
                # while they come back one by one would take the interpreter lock from them, and a
                # late look (the writer queued behind them for the lock) delays the group.
                quiet_ends = deadline if steady else last_came + GATHER_QUIET_SECONDS
                if now >= deadline or now >= quiet_ends:
                    break  # the limit, or none came for a while: the rest are busy elsewhere
                # Woken by the append that brings back the last of them (or the group's last
                # events); otherwise at the end of the quiet window or at the limit.
                requests.wait_for(min(len(returning), max_batch - size), min(deadline, quiet_ends) - now)
                continue
            item = requests.get()
            if not isinstance(item, AppendRequest):
                return group, item  # commit what was queued before it, then handle it
            group.append(item)
            size += len(item.events)
            if deadline:
                last_came = time.monotonic()
                came_back = came_back or item.caller in returning
            returning.discard(item.caller)
        self.all_back = awaited and not returning
        if deadline:
            if came_back:
                self.gather_backoff = 0
            else:
                self.gather_backoff = min(2 * self.gather_backoff or 1, GATHER_BACKOFF_MAX)
                self.gather_skips = self.gather_backoff
        return group, None

    def stop(self) -> None:
        """Finish every request handed in before this call, then end the thread; requests that
        raced with the stop get a clear answer instead of waiting forever."""
        self.requests.put(STOP)
        self.join()
        while True:
            try:
                item = self.requests.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, AppendRequest):
                item.fail(StoreClosed("the store was closed before this append"))
            elif isinstance(item, Action):
                item.error = StoreClosed("the store was closed")
                item.done.set()

    def problem(self) -> str | None:
        """Why this writer cannot write now (it halted, or its thread ended), or None."""
        if self.halted is not None:
            return f"the writer stopped: {self.halted}"
        if not self.is_alive():
            return "the writer thread is not running"
        return None

    def _run_action(self, action: Action) -> None:
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
        request: AppendRequest,
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

    def _commit(self, group: list[AppendRequest]) -> None:
        backend = self.backend
        versions = self.versions
        # `difference` with the dict itself looks each of the group's streams up in it; `- versions.keys()`
        # walked every key of the dict instead, one per stream the store has seen, at every commit.
        wanted = set().union(*(r.streams for r in group)).difference(versions)
        if wanted:
            found = backend.versions_before_append(wanted)
            for name in wanted:
                versions[name] = found.get(name, 0)
        client_ids = [event_id for r in group for event_id in r.client_ids]
        stored = backend.events_by_id(client_ids) if client_ids else {}

        tentative: dict[str, int] = {}  # versions inside this group, not yet durable
        tombstoned = self.metadata.tombstoned
        metadata_changes: list[RecordedEvent] = []
        in_group: dict[str, RecordedEvent] = {}  # ids assigned inside this group
        # Tagless when every append of the group came from the batch validation: the backend
        # need not look for tags in the records (see `Tagless`).
        records: list[RecordedEvent] = Tagless() if all(type(r.events) is Tagless for r in group) else []
        accepted: list[AppendRequest] = []
        order_id = self.last_order_id
        for request in group:
            if request.client_ids:
                # Pending events are read by position (see `PendingEvent`): e[0] the stream, e[1] the id.
                known = [stored.get(e[1]) or in_group.get(e[1]) for e in request.events]
                clash = next(
                    (
                        (e, k)
                        for e, k in zip(request.events, known, strict=True)
                        if k is not None and k.stream_name != e[0]
                    ),
                    None,
                )
                if clash is not None:
                    # A retry is answered with what is stored; an id of another stream's event is not a retry.
                    event, other = clash
                    request.fail(EventIdConflict(event[1], event[0], other.stream_name, other.order_id))
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
                stream = fresh[0][0]  # (by position: see `PendingEvent`)
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
                            # One formatting, not a head then a concatenation: one copy of the body.
                            b'{"order-id":%d,"stream-version":%d,%b' % (order_id, version, body),
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
        acknowledge(accepted)

    # -- positioned writes (a restore), run in this thread as actions --------------------------

    def store_positioned(self, events: list[RecordedEvent]) -> None:
        """Write events that carry their positions (checked against this writer's state by the
        caller, in this thread), then count and publish them as a commit."""
        if not events:
            return
        self.backend.append(events)
        self.metadata.apply(events)  # stream metadata, deletions and tombstones restored
        self.last_order_id = events[-1].order_id
        self.commits += 1
        self.committed_events += len(events)
        self.broadcaster.publish(events)

    def forget_versions(self) -> None:
        """Drop the cached stream versions: the next commit asks the backend again."""
        self.versions.clear()

    def reload(self) -> None:
        """Learn the store's state from the backend again (after a write that may have left the
        cached versions and last order-id wrong)."""
        self.versions.clear()
        self.last_order_id = self.backend.last_order_id()
