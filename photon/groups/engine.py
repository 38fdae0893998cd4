"""A consumer group at run time: reads its source, shares the events among its members, tracks acks.

One thread per group follows the source (a hot-cold subscription from the checkpoint) and keeps
at most `WINDOW` events that are read but not yet done. Each event waits in a queue until a
member has room (fewer than `max-in-flight` unacknowledged events); with `round-robin` every
member takes from one queue in turn, with `pinned` an event goes to the queue of its stream's
bucket, and each bucket belongs to one member (rendezvous hashing over the members present), so
one stream's events go to one member, in order.

An event leaves the group when it is acked, nacked with `skip` or `park`, or parked after
`max-retries` redeliveries (a `retry` nack, an ack time-out, or its member leaving each count one).
The checkpoint is the order-id below which everything is done; acks above it are kept as a list
until it catches up. Acks are made durable in batches: every ack call waits until a write of the
group's state that includes it has finished, and one write serves every call waiting at the time,
as the store's group commit does for appends.

All state is guarded by one lock per group; the only blocking work done under it is none (store
writes, parked-event appends and reads happen outside it).

Long because every operation on a group's state (the window, the queues, the members and their
deliveries, the acks above the checkpoint) runs under that one lock and keeps the same invariants;
kept in one class they can be read together, which matters more here than short files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from photon.core.errors import StoreClosed, ValidationError
from photon.core.events import ALL_STREAM, PARKED_STREAM_PREFIX, RecordedEvent, parked_stream, stream_category
from photon.core.filters import EventFilter
from photon.core.limits import MAX_INT64
from photon.core.subscriptions import CaughtUp
from photon.groups.definition import GroupSpec
from photon.groups.state import GroupState, state_key

if TYPE_CHECKING:
    from photon.core.store import EventStore

log = logging.getLogger("photon.groups")

WINDOW = 10_000
"""Events read from the source and not yet done, at most (acks above the checkpoint included)."""
PINNED_BUCKETS = 64
CHUNK = 32
"""Events a member takes in one turn of round-robin dispatch."""
TICK = 0.05
"""Seconds between two looks for timed-out deliveries."""
IDLE_FLUSH_SECONDS = 1.0
"""A checkpoint moved by events the filter left out is written at most this long after."""
PARKED_EVENT = "event-parked"
NackAction = Literal["retry", "park", "skip"]
NACK_ACTIONS = ("retry", "park", "skip")
MAX_REASON = 2000
"""Characters of a nack's reason, at most (it is stored with a parked event)."""
_NAMESPACE = uuid.UUID("6f0c5a2e-4d0b-4a8e-9b7c-2f7f3c1d9e10")


class Delivery(NamedTuple):
    """An event handed to a member: `attempt` is 1 on the first delivery, 2 on the first redelivery..."""

    event: RecordedEvent
    attempt: int


class _Entry:
    __slots__ = ("attempts", "deadline", "event", "last_member", "member", "parked_id", "state")

    def __init__(self, event: RecordedEvent, attempts: int = 0, parked_id: int = 0) -> None:
        self.event = event
        self.attempts = attempts
        self.member: Member | None = None
        self.last_member = ""
        """The member it was last given to: a redelivery goes to another one when one has room."""
        self.deadline = 0.0
        self.parked_id = parked_id
        """For an event handed back from the parked stream: its order-id there."""
        self.state = "ready"  # ready | in-flight | parking | done


@dataclass(frozen=True)
class AckResult:
    done: int
    unknown: list[int]

    def to_json(self) -> dict[str, Any]:
        return {"done": self.done, "unknown": self.unknown}


class Member:
    """One consumer of a group. Take deliveries with `take` (or `next_batch` in asyncio); ack them.

    A member that goes away (`close`, or its connection is lost) gives its unacknowledged events
    back to the group, which redelivers them to the others.
    """

    def __init__(
        self, group: Group, member_id: str, max_in_flight: int | None = None, limit: int | None = None
    ) -> None:
        self.group = group
        self.id = member_id
        self.max_in_flight = max_in_flight
        """This member's own limit (a consumer's prefetch); the group's `max-in-flight` bounds it too."""
        self.remaining = limit
        """Deliveries this member takes before it takes no more (a fetch of N); None: no end."""
        self.in_flight: dict[int, _Entry] = {}
        self.inbox: deque[Delivery] = deque()
        self.buckets: list[int] = []
        self.closed = False
        self.joined = time.time()
        self._signal = threading.Event()
        self._wakers: list[Callable[[], None]] = []

    def wake(self) -> None:
        self._signal.set()
        for notify in self._wakers:
            notify()

    def _take_now(self) -> list[Delivery]:
        with self.group.lock:
            items = list(self.inbox)
            self.inbox.clear()
            return items

    def take(self, timeout: float | None = None) -> list[Delivery]:
        """The deliveries waiting for this member, waiting up to `timeout` for one; [] on time-out.

        Raises `StoreClosed` once the member is closed (the group was deleted or changed its source).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._signal.clear()
            items = self._take_now()
            if items:
                return items
            if self.closed:
                raise StoreClosed(f"member {self.id!r} of group {self.group.spec.name!r} is closed")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return []
            self._signal.wait(remaining)

    async def next_batch(self, timeout: float | None = None) -> list[Delivery]:
        """`take` for asyncio: [] on time-out; raises `StoreClosed` once the member is closed."""
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def waker() -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(ready.set)

        self._wakers.append(waker)
        try:
            while True:
                ready.clear()
                items = self._take_now()
                if items:
                    return items
                if self.closed:
                    raise StoreClosed(f"member {self.id!r} of group {self.group.spec.name!r} is closed")
                try:
                    await asyncio.wait_for(ready.wait(), timeout)
                except TimeoutError:
                    return []
        finally:
            self._wakers.remove(waker)

    def ack(self, order_ids: Iterable[int]) -> AckResult:
        return self.group.ack(order_ids)

    def nack(self, order_ids: Iterable[int], action: NackAction = "retry", reason: str = "") -> AckResult:
        return self.group.nack(order_ids, action, reason)

    def close(self) -> None:
        """Leave the group: what this member has not acknowledged goes to the others."""
        self.group.leave(self)

    def __enter__(self) -> Member:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def source_of(spec: GroupSpec) -> tuple[str, EventFilter]:
    """The stream a group reads and the filter applied to it (a category reads `__all__` filtered)."""
    category = stream_category(spec.stream)
    if category is not None:
        return ALL_STREAM, replace(spec.filter, categories=(category,))
    return spec.stream, spec.filter


class Group:
    """The run-time of one consumer group (see the module's description)."""

    def __init__(self, store: EventStore, spec: GroupSpec, incarnation: int) -> None:
        self.store = store
        self.spec = spec
        self.incarnation = incarnation
        """The order-id of the group's `group-created` event: parked events' ids include it."""
        self.lock = threading.Lock()
        self._room = threading.Condition(self.lock)
        state = GroupState.from_json(store.read_checkpoint(state_key(spec.name)), spec.start)
        self.checkpoint = state.checkpoint
        self.read_position = state.checkpoint
        self.done: set[int] = set(state.done)
        self._skip = set(state.done)
        self._attempts_before = dict(state.attempts)
        self.parked_replayed = state.parked_replayed
        self.generation = state.generation
        self.entries: dict[int, _Entry] = {}
        self._order: deque[int] = deque()
        self._retried: set[int] = set()
        self.replays: dict[int, _Entry] = {}
        self._replay_queue: deque[_Entry] = deque()
        self._buckets: list[deque[_Entry]] = [deque() for _ in range(self._bucket_count())]
        self.members: dict[str, Member] = {}
        self._rotation = 0
        self._in_flight = 0
        self._parking: list[tuple[_Entry, str]] = []
        self._seq = 0
        self._durable = 0
        self._flush_lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._last_expiry = time.monotonic()
        self.counters = {"delivered": 0, "redelivered": 0, "acked": 0, "skipped": 0, "parked": 0, "retried": 0}
        self._stopped = False
        self._retired = False
        """Set once `stop` wrote the last state: a fresh run-time may own the stored state by then."""
        self._thread = threading.Thread(target=self._run, name=f"photon-group-{spec.name}", daemon=True)
        self._pending_replays = list(state.replaying)

    def _bucket_count(self) -> int:
        return PINNED_BUCKETS if self.spec.strategy == "pinned" else 1

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Start following the source; returns the group's description as it starts.

        The description is taken before the source thread runs, so it shows exactly the stored
        state the group starts from (a reset's answer), not wherever the thread got to already.
        """
        if self._pending_replays:
            self._load_replays(self._pending_replays)
        described = self.describe()
        self._thread.start()
        return described

    def stop(self) -> None:
        """Stop following the source, close the members and write the state a last time."""
        with self.lock:
            self._stopped = True
            members = list(self.members.values())
            self._room.notify_all()
        for member in members:
            member.closed = True
            member.wake()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()
        with contextlib.suppress(StoreClosed):
            self._park_waiting()
        self.flush()
        with self._flush_lock:
            # From here on this run-time writes no state: a reset or restart writes its own next,
            # and a late ack or park of this one must not overwrite it.
            self._retired = True

    # -- the source ---------------------------------------------------------------------------

    def _run(self) -> None:
        stream, event_filter = source_of(self.spec)
        try:
            # The store's filtered read answers a category from the backend's index where it has one.
            subscription = self.store.subscribe(
                self.spec.stream,
                "hot-cold",
                from_order_id=self.checkpoint + 1,
                event_filter=None if self.spec.filter.empty else self.spec.filter,
            )
        except StoreClosed:
            return
        client_only = stream == ALL_STREAM
        try:
            while True:
                with self.lock:
                    while not self._stopped and len(self.entries) + len(self.done) >= WINDOW:
                        self._expire()
                        self._room.wait(TICK)
                    if self._stopped:
                        return
                first = subscription.get(TICK)
                items: list[Any] = []
                if first is not None:
                    items.append(first)
                    items.extend(subscription.poll())
                with self.lock:
                    if self._stopped:
                        return
                    if items:
                        self._take(items, event_filter, client_only)
                    self._expire()
                    touched = self.dispatch()
                for member in touched:
                    member.wake()
                self._park_waiting()
                if self._seq > self._durable and time.monotonic() - self._last_flush > IDLE_FLUSH_SECONDS:
                    self.flush()
        except StoreClosed:
            return
        except Exception:
            log.exception("consumer group %r stopped following its source", self.spec.name)
        finally:
            subscription.close()

    def _take(self, items: Sequence[Any], event_filter: EventFilter, client_only: bool) -> None:
        events: list[RecordedEvent] = []
        for item in items:
            if type(item) is CaughtUp:
                self.read_position = max(self.read_position, item.order_id)
            elif type(item) is RecordedEvent:
                events.append(item)
        if events:
            self.read_position = max(self.read_position, events[-1].order_id)
            skip = self._skip
            attempts_before = self._attempts_before
            entries = self.entries
            order = self._order
            single = self._buckets[0] if len(self._buckets) == 1 else None
            # The hot path of every group: kept to plain local operations per event.
            for event in event_filter.select(events, client_only=client_only):
                order_id = event[0]
                if skip and order_id in skip:
                    skip.discard(order_id)
                    continue
                entry = _Entry(event, attempts_before.pop(order_id, 0) if attempts_before else 0)
                if entry.attempts > 1:
                    self._retried.add(order_id)
                entries[order_id] = entry
                order.append(order_id)
                (single if single is not None else self._queue_of(entry)).append(entry)
        self._advance()

    def _advance(self) -> None:
        order = self._order
        entries = self.entries
        while order and order[0] not in entries:
            order.popleft()
        new = order[0] - 1 if order else self.read_position
        old = self.checkpoint
        if new > old:
            self.checkpoint = new
            self._seq += 1
            done = self.done
            if done:
                if len(done) < new - old:
                    self.done = {d for d in done if d > new}
                else:
                    for order_id in range(old + 1, new + 1):
                        done.discard(order_id)

    # -- dispatch -----------------------------------------------------------------------------

    def _queue_of(self, entry: _Entry) -> deque[_Entry]:
        if entry.parked_id:
            return self._replay_queue
        buckets = self._buckets
        if len(buckets) == 1:
            return buckets[0]
        return buckets[zlib.crc32(entry.event.stream_name.encode()) % len(buckets)]

    def _next_for(self, member: Member) -> _Entry | None:
        queue = self._replay_queue
        while queue:
            entry = queue.popleft()
            if entry.state == "ready":
                return entry
        buckets = self._buckets
        if len(buckets) > 1:
            # Of the member's buckets, the one whose next ready event is oldest: a member is given
            # its events in order-id order (one member alone gets the source's order).
            best: deque[_Entry] | None = None
            best_id = 0
            for index in member.buckets:
                queue = buckets[index]
                while queue and queue[0].state != "ready":
                    queue.popleft()
                if queue and (best is None or queue[0].event[0] < best_id):
                    best = queue
                    best_id = queue[0].event[0]
            return best.popleft() if best is not None else None
        queue = buckets[0]
        while queue:
            entry = queue.popleft()
            if entry.state != "ready":
                continue
            if entry.last_member == member.id and self._another_has_room(member):
                queue.appendleft(entry)  # the next member in the round takes it
                return None
            return entry
        return None

    def _another_has_room(self, member: Member) -> bool:
        limit = self.spec.max_in_flight
        return any(
            m is not member and not m.closed and len(m.in_flight) < _room_limit(m, limit) for m in self.members.values()
        )

    def dispatch(self) -> list[Member]:
        """Hand ready events to members with room, one each in turn; returns the members given some."""
        members = [m for m in self.members.values() if not m.closed]
        if not members or self._stopped:
            return []
        spec = self.spec
        limit = spec.max_in_flight
        timeout = spec.ack_timeout_ms / 1000
        now = time.monotonic()
        touched: dict[str, Member] = {}
        start = self._rotation % len(members)
        ordered = members[start:] + members[:start]
        self._rotation += 1
        # Each member in turn takes up to CHUNK events, until no member has room or nothing is ready.
        chunk = 1 if spec.serial else CHUNK
        counters = self.counters
        progress = True
        while progress:
            progress = False
            for member in ordered:
                in_flight = member.in_flight
                inbox = member.inbox
                member_limit = _room_limit(member, limit)
                for _ in range(chunk):
                    if spec.serial and self._in_flight >= 1:
                        return list(touched.values())
                    if len(in_flight) >= member_limit:
                        break
                    entry = self._next_for(member)
                    if entry is None:
                        break
                    entry.state = "in-flight"
                    entry.member = member
                    entry.last_member = member.id
                    attempts = entry.attempts = entry.attempts + 1
                    entry.deadline = now + timeout
                    event = entry.event
                    in_flight[event[0]] = entry
                    inbox.append(Delivery(event, attempts))
                    if member.remaining is not None:
                        member.remaining -= 1
                    self._in_flight += 1
                    counters["delivered"] += 1
                    if attempts > 1:
                        counters["redelivered"] += 1
                        self._retried.add(event[0])
                    touched[member.id] = member
                    progress = True
        return list(touched.values())

    def _assign_buckets(self) -> None:
        members = [m for m in self.members.values() if not m.closed]
        for member in members:
            member.buckets = []
        if len(self._buckets) == 1 or not members:
            return
        for index in range(len(self._buckets)):
            owner = max(members, key=lambda m: zlib.crc32(f"{m.id}/{index}".encode()))
            owner.buckets.append(index)

    # -- members ------------------------------------------------------------------------------

    def join(self, member_id: str, max_in_flight: int | None = None, limit: int | None = None) -> Member:
        """A new member (with its own `max_in_flight`, at most the group's, and taking at most
        `limit` deliveries in all); one that joins under the id of a present member replaces it."""
        with self.lock:
            if self._stopped:
                raise StoreClosed(f"consumer group {self.spec.name!r} is stopped")
            old = self.members.get(member_id)
            member = Member(self, member_id, max_in_flight, limit)
            if old is not None:
                self._release_member(old)
            self.members[member_id] = member
            self._assign_buckets()
            touched = self.dispatch()
        if old is not None:
            old.wake()
        for woken in touched:
            woken.wake()
        self._park_waiting()
        return member

    def _release_member(self, member: Member) -> None:
        member.closed = True
        if self.members.get(member.id) is member:
            del self.members[member.id]
        self._requeue_all(list(member.in_flight.values()), "member left")
        member.inbox.clear()

    def leave(self, member: Member) -> None:
        with self.lock:
            if member.closed and self.members.get(member.id) is not member:
                return
            self._release_member(member)
            self._assign_buckets()
            touched = self.dispatch()
        member.wake()
        for woken in touched:
            woken.wake()
        self._park_waiting()

    # -- acks ---------------------------------------------------------------------------------

    def _lookup(self, order_id: int) -> _Entry | None:
        entry = self.entries.get(order_id)
        if entry is None:
            entry = self.replays.get(order_id)
        if entry is None or entry.attempts == 0 or entry.state in ("done", "parking"):
            return None  # never delivered, already done, or on its way to the parked stream
        return entry

    def _release(self, entry: _Entry) -> None:
        if entry.state == "in-flight" and entry.member is not None:
            entry.member.in_flight.pop(entry.event.order_id, None)
            self._in_flight -= 1
        entry.member = None

    def _finish(self, entry: _Entry) -> None:
        self._release(entry)
        entry.state = "done"
        order_id = entry.event.order_id
        self._retried.discard(order_id)
        if entry.parked_id:
            self.replays.pop(order_id, None)
        else:
            del self.entries[order_id]
            self.done.add(order_id)

    def _requeue(self, entry: _Entry, reason: str) -> None:
        self._release(entry)
        if entry.attempts > self.spec.max_retries:
            entry.state = "parking"
            self._parking.append(
                (entry, f"{reason}; delivered {entry.attempts} times (max-retries {self.spec.max_retries})")
            )
        else:
            entry.state = "ready"
            self.counters["retried"] += 1
            self._queue_of(entry).appendleft(entry)

    def _requeue_all(self, entries: list[_Entry], reason: str) -> None:
        """Requeue several events at once, keeping their order: each goes to the front of its
        queue, so the last order-id goes first and the first ends up in front."""
        for entry in sorted(entries, key=lambda e: e.event.order_id, reverse=True):
            self._requeue(entry, reason)

    def _expire(self) -> None:
        now = time.monotonic()
        if now - self._last_expiry < TICK:
            return
        self._last_expiry = now
        expired = [
            entry for member in self.members.values() for entry in member.in_flight.values() if entry.deadline <= now
        ]
        self._requeue_all(expired, "ack timeout")

    def ack(self, order_ids: Iterable[int]) -> AckResult:
        """Mark delivered events done; returns once that is durable. Unknown order-ids are listed back."""
        return self._settle(order_ids, "ack", "")

    def nack(self, order_ids: Iterable[int], action: NackAction = "retry", reason: str = "") -> AckResult:
        """`retry` (redeliver; counts towards max-retries), `park` (to the parked stream) or `skip` (done)."""
        if action not in NACK_ACTIONS:
            raise ValidationError(f"action must be one of {', '.join(NACK_ACTIONS)}, got {action!r}", "action")
        if not isinstance(reason, str) or len(reason) > MAX_REASON:
            raise ValidationError(f"reason must be a string of at most {MAX_REASON} characters", "reason")
        return self._settle(order_ids, action, reason)

    def _settle(self, order_ids: Iterable[int], action: str, reason: str) -> AckResult:
        ids = _order_ids(order_ids)
        unknown: list[int] = []
        count = 0
        with self.lock:
            if self._stopped:
                # Its last state is written (or being written): an ack now could not be made durable.
                raise StoreClosed(f"consumer group {self.spec.name!r} was stopped (its members reconnect)")
            if action == "ack":
                count, unknown = self._ack_fast(ids)
                ids = unknown
                unknown = []
            for order_id in ids:
                entry = self._lookup(order_id)
                if entry is None:
                    unknown.append(order_id)
                    continue
                count += 1
                if action == "ack":
                    self._finish(entry)
                    self.counters["acked"] += 1
                elif action == "skip":
                    self._finish(entry)
                    self.counters["skipped"] += 1
                elif action == "park":
                    self._release(entry)
                    entry.state = "parking"
                    self._parking.append((entry, reason or "parked by a member"))
                else:
                    self._requeue(entry, reason or "nack")
            self._advance()
            self._seq += 1
            seq = self._seq
            touched = self.dispatch()
            self._room.notify_all()
        for member in touched:
            member.wake()
        self._park_waiting()
        self._make_durable(seq)
        return AckResult(count, unknown)

    def _ack_fast(self, ids: list[int]) -> tuple[int, list[int]]:
        """Ack the in-flight events of `ids` (the usual case) with local operations only; returns
        how many, and the order-ids left for the general path."""
        entries = self.entries
        done = self.done
        retried = self._retried
        rest: list[int] = []
        count = 0
        for order_id in ids:
            entry = entries.get(order_id)
            if entry is None or entry.state != "in-flight" or entry.member is None:
                rest.append(order_id)
                continue
            del entry.member.in_flight[order_id]
            entry.member = None
            entry.state = "done"
            del entries[order_id]
            done.add(order_id)
            if retried:
                retried.discard(order_id)
            count += 1
        self._in_flight -= count
        self.counters["acked"] += count
        return count, rest

    # -- parking ------------------------------------------------------------------------------

    def _park_waiting(self) -> None:
        """Write the events waiting to be parked to the parked stream, then count them done."""
        with self.lock:
            parking, self._parking = self._parking, []
        if not parking:
            return
        name = self.spec.name
        events = []
        for entry, reason in parking:
            original = entry.event
            key = f"{name}/{self.incarnation}/{self.generation}/{original.order_id}"
            events.append(
                {
                    "stream-name": parked_stream(name),
                    "event-type": PARKED_EVENT,
                    "id": str(uuid.uuid5(_NAMESPACE, key)),
                    "payload": {
                        "group-name": name,
                        "order-id": original.order_id,
                        "stream-name": original.stream_name,
                        "event-type": original.event_type,
                        "reason": reason,
                        "attempts": entry.attempts,
                        "event": original.to_dict(),
                    },
                }
            )
        try:
            self.store.append_internal_events(events)
        except BaseException:
            with self.lock:
                for entry, _ in parking:  # not parked: deliver them again
                    entry.state = "ready"
                    self._queue_of(entry).appendleft(entry)
            raise
        with self.lock:
            for entry, _ in parking:
                entry.state = "parking"
                self._finish(entry)
                self.counters["parked"] += 1
            self._advance()
            self._seq += 1
            seq = self._seq
            touched = self.dispatch()
            self._room.notify_all()
        for member in touched:
            member.wake()
        self._make_durable(seq)

    def replay_parked(self) -> int:
        """Hand every event parked so far back to the group; returns how many.

        Only what this group parked: a group deleted earlier under the same name left its parked
        events in the stream, before this group's `group-created` event (`incarnation`)."""
        stream = parked_stream(self.spec.name)
        last = self.store.last_order_id()
        with self.lock:
            start = max(self.parked_replayed, self.incarnation) + 1
        parked = [e.order_id for e in self.store.read(stream, from_order_id=start, to_order_id=last)]
        with self.lock:
            self.generation += 1
            self.parked_replayed = max(self.parked_replayed, last)
        count = self._load_replays(parked)
        with self.lock:
            self._seq += 1
            seq = self._seq
        self._make_durable(seq)
        return count

    def _load_replays(self, parked_ids: Sequence[int]) -> int:
        loaded: list[_Entry] = []
        for parked_id in parked_ids:
            stored = self.store.get_by_order_id(parked_id)
            if stored is None or not stored.stream_name.startswith(PARKED_STREAM_PREFIX):
                continue
            original = stored.to_dict()["payload"]["event"]
            loaded.append(_Entry(_recorded(original), 0, parked_id))
        with self.lock:
            for entry in loaded:
                if entry.event.order_id in self.replays:
                    continue
                self.replays[entry.event.order_id] = entry
                self._replay_queue.append(entry)
            touched = self.dispatch()
        for member in touched:
            member.wake()
        return len(loaded)

    # -- reset and durability -----------------------------------------------------------------

    def flush(self) -> None:
        """Write the state now (the checkpoint, acks above it, attempts)."""
        with self.lock:
            self._seq += 1
            seq = self._seq
        self._make_durable(seq)

    def _make_durable(self, seq: int) -> None:
        with self._flush_lock:
            if self._durable >= seq or self._retired:
                return  # a write that started after this change already covered it, or stopped
            with self.lock:
                state = self._state()
                covered = self._seq
            self.store.write_checkpoint(state_key(self.spec.name), state.to_json())
            self._durable = covered
            self._last_flush = time.monotonic()

    def _state(self) -> GroupState:
        checkpoint = self.checkpoint
        done = self.done = {d for d in self.done if d > checkpoint}
        attempts = {}
        for order_id in self._retried:
            entry = self.entries.get(order_id)
            if entry is not None:
                attempts[order_id] = entry.attempts
        return GroupState(
            checkpoint=checkpoint,
            done=sorted(done),
            attempts=attempts,
            parked_replayed=self.parked_replayed,
            replaying=sorted(e.parked_id for e in self.replays.values()),
            generation=self.generation,
        )

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {
                **self.spec.to_payload(),
                "checkpoint": self.checkpoint,
                "read-position": self.read_position,
                "waiting": sum(1 for e in self.entries.values() if e.state == "ready"),
                "in-flight": self._in_flight,
                "acked-above-checkpoint": len([d for d in self.done if d > self.checkpoint]),
                "replaying-parked": len(self.replays),
                "parked-stream": parked_stream(self.spec.name),
                "members": [
                    {
                        "member": m.id,
                        "in-flight": len(m.in_flight),
                        "max-in-flight": _member_limit(m, self.spec.max_in_flight),
                        "joined": int(m.joined * 1000),
                    }
                    for m in self.members.values()
                ],
                **self.counters,
            }


def _member_limit(member: Member, limit: int) -> int:
    own = member.max_in_flight
    return limit if own is None or own > limit else own


def _room_limit(member: Member, limit: int) -> int:
    """The most events `member` may hold in flight now: its max-in-flight, and no more than its
    remaining deliveries beyond those it holds."""
    room = _member_limit(member, limit)
    remaining = member.remaining
    if remaining is not None and len(member.in_flight) + remaining < room:
        return len(member.in_flight) + remaining
    return room


def _order_ids(values: Iterable[int]) -> list[int]:
    ids = list(values)
    for value in ids:
        if type(value) is not int or not 1 <= value <= MAX_INT64:
            raise ValidationError(f"order-ids must be whole numbers from 1 to {MAX_INT64}, got {value!r}", "order-ids")
    return ids


def _recorded(event: dict[str, Any]) -> RecordedEvent:
    import orjson

    return RecordedEvent(
        event["order-id"],
        event["stream-name"],
        event["stream-version"],
        event["id"],
        event["event-type"],
        event["event-time"],
        orjson.dumps(event),
    )
