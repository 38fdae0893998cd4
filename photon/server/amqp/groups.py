"""Consumer groups over Photon's AMQP protocol: members, acks and group management.

A `group-join` request on `<service>.commands` makes its `reply_to` queue a member of the group:
a `Membership` thread takes the member's deliveries from the core (`photon.groups.Member`) and
publishes each to that queue as an `event` message (the event as stored, headers `order-id` and
`attempt`), all with the request's `correlation_id`. Acks, nacks and group management are
requests answered once (`done` or `error`). Every rule is the core's; this module only moves
messages.

A membership ends when the requester leaves (`group-leave`, or `cancel`), its queue goes away (a
delivery comes back unroutable, or a check finds it gone: every second while the member holds
unacknowledged events, every 5 s otherwise; an exclusive queue goes with its connection, so a
killed consumer's events go to the others within about a second), Photon's connection to the
broker drops, the group stops (deleted, reset, or restarted by an update), or Photon stops. The
member then leaves the group, which hands its unacknowledged events to the others, and the queue
(when it is still there) gets a last `group-ended` message saying why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from pika.spec import BasicProperties

from photon.core.errors import Conflict, NotFound, PhotonError, StoreClosed, ValidationError
from photon.core.events import RecordedEvent
from photon.groups import Delivery, Member
from photon.server.amqp.group_messages import GroupCall, parse_call, parse_join
from photon.wire.amqp import CONTENT_TYPE, DONE, ERROR, EVENT, dumps, error_body
from photon.wire.amqp_groups import (
    ATTEMPT_HEADER,
    GROUP_ACK,
    GROUP_CREATE,
    GROUP_DELETE,
    GROUP_DESCRIBE,
    GROUP_ENDED,
    GROUP_JOIN,
    GROUP_JOINED,
    GROUP_LEAVE,
    GROUP_LIST,
    GROUP_NACK,
    GROUP_REPLAY_PARKED,
    GROUP_REQUEST_TYPES,
    GROUP_RESET,
    GROUP_UPDATE,
    ORDER_ID_HEADER,
)

if TYPE_CHECKING:
    from photon.core.store import EventStore
    from photon.server.amqp.link import Link

log = logging.getLogger("photon.amqp")

MAX_MEMBERS = 256
"""Memberships served at once by one Photon (one thread each)."""
TAKE_TIMEOUT = 0.25
"""Seconds a membership waits for deliveries before looking whether it must end."""
QUEUE_CHECK = 1.0
"""Seconds between checks that the queue of a member holding unacknowledged events still exists."""
IDLE_QUEUE_CHECK = 5.0
"""The same for a member holding none (its going away costs nothing until the next delivery,
which comes back unroutable); each check of another connection's exclusive queue is answered
with a channel error on a throw-away channel, so they are kept rare."""
HAND_IN_TIMEOUT = 30.0
NOTICE_WAIT = 30.0
"""After a lost connection: how long to wait for the next one to tell the member it ended."""

# Why a membership ended (the `reason` of its `group-ended` message).
LEFT = "left"
QUEUE_GONE = "queue gone"
CONNECTION_LOST = "connection lost"
STOPPING = "service stopping"
GROUP_STOPPED = "the group stopped (deleted, reset, or restarted by an update): join again"
REPLACED = "replaced: another member joined under the same id"

Key = tuple[str, str | None]
Finish = Callable[[str, bytes, bool], None]
"""Answers a command: (reply type, reply body, ack: False rejects it to the dead-letter queue)."""


class Membership(threading.Thread):
    """One member of a group, served to one queue until it ends."""

    def __init__(
        self,
        member: Member,
        link: Link,
        generation: int,
        reply_to: str,
        correlation_id: str | None,
        on_done: Callable[[Membership], None],
    ) -> None:
        super().__init__(name=f"photon-amqp-member-{reply_to}", daemon=True)
        self.member = member
        self.group = member.group.spec.name
        self.link = link
        self.generation = generation
        self.reply_to = reply_to
        self.correlation_id = correlation_id
        self.on_done = on_done
        self.reason: str | None = None
        self._ended = threading.Event()
        self.sent = 0

    @property
    def key(self) -> Key:
        return (self.reply_to, self.correlation_id)

    def end(self, reason: str) -> None:
        """Ask the membership to end (any thread; does not block)."""
        if self.reason is None:
            self.reason = reason
        self._ended.set()

    def run(self) -> None:
        try:
            joined = dumps({"group-name": self.group, "member": self.member.id})
            if self._send([(self._properties(GROUP_JOINED), joined)], self.generation):
                self._serve()
        except Exception:
            log.exception("serving member %s of group %s failed", self.member.id, self.group)
            self.end("internal error")
        finally:
            self._finish()

    def _serve(self) -> None:
        member = self.member
        checked = time.monotonic()
        while not self._ended.is_set():
            try:
                deliveries = member.take(TAKE_TIMEOUT)
            except StoreClosed:
                replaced = member.group.members.get(member.id) not in (None, member)
                self.end(REPLACED if replaced else GROUP_STOPPED)
                return
            if deliveries:
                checked = time.monotonic()
                if not self._send([self._delivery(d) for d in deliveries], self.generation):
                    return
                self.sent += len(deliveries)
            elif time.monotonic() - checked >= (QUEUE_CHECK if member.in_flight else IDLE_QUEUE_CHECK):
                checked = time.monotonic()
                self.link.call(self._check_queue)

    def _check_queue(self) -> None:
        self.link.check_queue(self.reply_to, lambda: self.end(QUEUE_GONE))

    def _finish(self) -> None:
        try:
            # First give the unacknowledged events back, then say so.
            self.member.close()
        except Exception:
            log.exception("member %s of group %s could not leave cleanly", self.member.id, self.group)
        reason = self.reason or LEFT
        try:
            if reason != QUEUE_GONE:
                generation: int | None = self.generation
                if reason == CONNECTION_LOST:
                    generation = self.link.wait_ready(NOTICE_WAIT)
                if generation is not None:
                    body = dumps({"group-name": self.group, "member": self.member.id, "reason": reason})
                    self._send([(self._properties(GROUP_ENDED), body)], generation)
        finally:
            log.debug("member %s of group %s ended: %s (%d deliveries)", self.member.id, self.group, reason, self.sent)
            self.on_done(self)

    def _properties(self, kind: str, headers: dict[str, Any] | None = None, message_id: str | None = None) -> Any:
        return BasicProperties(
            type=kind,
            correlation_id=self.correlation_id,
            content_type=CONTENT_TYPE,
            headers=headers,
            message_id=message_id,
        )

    def _delivery(self, delivery: Delivery) -> tuple[Any, bytes]:
        event: RecordedEvent = delivery.event
        headers = {
            ORDER_ID_HEADER: event.order_id,
            ATTEMPT_HEADER: delivery.attempt,
            "stream-name": event.stream_name,
            "event-type": event.event_type,
        }
        return self._properties(EVENT, headers, event.event_id), event.data

    def _send(self, messages: list[tuple[Any, bytes]], generation: int) -> bool:
        """Hand messages to the link and wait until written; False when the membership must end."""
        link = self.link
        if not link.is_current(generation):
            self.end(CONNECTION_LOST)
            return False
        done = threading.Event()
        handed = link.call(lambda: link.publish_each(generation, self.reply_to, messages, done))
        deadline = time.monotonic() + HAND_IN_TIMEOUT
        while handed and not done.wait(0.5):
            if not link.is_current(generation) or time.monotonic() > deadline:
                break
        if not done.is_set() or not link.is_current(generation):
            self.end(CONNECTION_LOST)
            return False
        return True


class AmqpGroups:
    """The group requests of one AMQP service and the memberships it serves."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._members: dict[Key, Membership | None] = {}
        """Running memberships; None while one is being joined (its key is taken)."""
        self._lock = threading.Lock()
        self.accepting = True

    @staticmethod
    def handles(kind: str) -> bool:
        return kind in GROUP_REQUEST_TYPES

    @property
    def count(self) -> int:
        return len(self._members)

    # -- from the link's thread (never block) ---------------------------------------------

    def on_command(
        self,
        kind: str,
        link: Link,
        pool: Executor,
        generation: int,
        delivery_tag: int,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        reply_to, correlation_id = properties.reply_to, properties.correlation_id

        def finish(reply_type: str, reply: bytes, ack: bool) -> None:
            link.call(
                lambda: link.finish_command(
                    generation, delivery_tag, reply_to if reply_type else None, correlation_id, reply_type, reply, ack
                )
            )

        if kind == GROUP_LEAVE:
            self.cancel(reply_to or "", correlation_id)
            link.finish_command(generation, delivery_tag, None, None, "", b"", ack=True)
            return
        try:
            if kind == GROUP_JOIN:
                pool.submit(self._join, link, generation, reply_to or "", correlation_id, body, finish)
            else:
                pool.submit(self._call, kind, body, finish)
        except RuntimeError:  # the pool is shutting down: the broker redelivers the command later
            pass

    def cancel(self, reply_to: str, correlation_id: str | None) -> bool:
        """End the membership started with this reply_to and correlation_id; False if none runs."""
        with self._lock:
            membership = self._members.get((reply_to, correlation_id))
        if membership is None:
            return False
        membership.end(LEFT)
        return True

    def on_return(self, queue: str, correlation_id: str | None) -> None:
        with self._lock:
            membership = self._members.get((queue, correlation_id))
        if membership is not None:
            membership.end(QUEUE_GONE)

    def on_lost(self, generation: int) -> None:
        with self._lock:
            lost = [m for m in self._members.values() if m is not None and m.generation == generation]
        for membership in lost:
            membership.end(CONNECTION_LOST)

    # -- in the worker pool ---------------------------------------------------------------

    def _join(
        self, link: Link, generation: int, reply_to: str, correlation_id: str | None, body: bytes, finish: Finish
    ) -> None:
        key = (reply_to, correlation_id)
        reserved = False
        try:
            if not reply_to:
                raise ValidationError("a group-join request needs a reply_to queue (deliveries go there)", "reply_to")
            request = parse_join(body)
            with self._lock:
                if not self.accepting:
                    raise StoreClosed("the service is stopping")
                if len(self._members) >= MAX_MEMBERS:
                    raise PhotonError(f"too many members served at once (at most {MAX_MEMBERS}); try again later")
                if key in self._members:
                    raise ValidationError("a membership with this reply_to and correlation_id is already running")
                self._members[key] = None
                reserved = True
            member = self.store.groups.join(request.group, request.member, request.max_in_flight, request.limit)
        except Exception as exc:
            if reserved:
                with self._lock:
                    self._members.pop(key, None)
            finish(ERROR, error_body(exc), _refusal(exc))
            return
        membership = Membership(member, link, generation, reply_to, correlation_id, self._done)
        with self._lock:
            self._members[key] = membership
        finish("", b"", True)
        membership.start()

    def _done(self, membership: Membership) -> None:
        with self._lock:
            if self._members.get(membership.key) is membership:
                del self._members[membership.key]

    def _call(self, kind: str, body: bytes, finish: Finish) -> None:
        try:
            answer = self._answer(parse_call(body, kind))
        except Exception as exc:
            if not isinstance(exc, PhotonError):
                log.exception("group request %s over AMQP failed", kind)
            finish(ERROR, error_body(exc), _refusal(exc))
            return
        finish(DONE, dumps(answer), True)

    def _answer(self, call: GroupCall) -> Any:
        groups = self.store.groups
        fields, name = call.fields, call.group or ""
        if call.kind == GROUP_ACK:
            return groups.ack(name, fields["order-ids"]).to_json()
        if call.kind == GROUP_NACK:
            action = fields.get("action", "retry")
            return groups.nack(name, fields["order-ids"], action, fields.get("reason", "")).to_json()
        if call.kind == GROUP_LIST:
            return {"groups": groups.list()}
        if call.kind == GROUP_DESCRIBE:
            return groups.describe(name)
        if call.kind == GROUP_CREATE:
            return groups.create(fields)
        if call.kind == GROUP_UPDATE:
            return groups.update(name, fields)
        if call.kind == GROUP_DELETE:
            groups.delete(name)
            return {"correct": True}
        if call.kind == GROUP_RESET:
            return groups.reset(name, fields["from"])
        if call.kind == GROUP_REPLAY_PARKED:
            return {"replayed": groups.replay_parked(name)}
        raise ValidationError(f"unknown group request {call.kind!r}", "type")

    # -- stopping ---------------------------------------------------------------------------

    def stop(self, timeout: float = 5.0) -> None:
        """End every membership (each member's events go back to its group) and wait for them."""
        with self._lock:
            self.accepting = False
            running = [m for m in self._members.values() if m is not None]
        for membership in running:
            membership.end(STOPPING)
        for membership in running:
            membership.join(timeout)


def _refusal(error: BaseException) -> bool:
    """Whether a failed request is still acknowledged: a well-formed request refused (no such
    group, a name taken, a group restarting) is answered and not dead-lettered."""
    return isinstance(error, NotFound | Conflict | StoreClosed)
