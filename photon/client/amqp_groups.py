"""Consumer groups in the AMQP client: group calls, and a member fed through its own queue.

    with AmqpClient(url) as client, client.join_group("billing") as member:
        for delivery in member:
            handle(delivery.event)
            member.ack(delivery.event.order_id)

A member declares an exclusive queue on the client's connection and sends `group-join` with that
queue as `reply_to`; Photon publishes the member's deliveries there. Acks and nacks are requests
on the command queue, many order-ids each. When the client's connection goes, its exclusive
queue goes with it, and Photon hands the member's unacknowledged events to the other members.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson
import pika.exceptions
from pika.spec import BasicProperties

from photon.client import amqp_calls
from photon.client.amqp_calls import UNROUTABLE, Call, unroutable
from photon.client.groups import GroupDelivery
from photon.core.errors import PhotonError
from photon.core.events import RecordedEvent
from photon.wire.amqp import CONTENT_TYPE, ERROR, EVENT, BrokerUnavailable, error_from_body
from photon.wire.amqp_groups import (
    ATTEMPT_HEADER,
    GROUP_ENDED,
    GROUP_JOIN,
    GROUP_JOINED,
    GROUP_LEAVE,
)

if TYPE_CHECKING:
    from photon.client.amqp import AmqpClient


class AmqpGroupCalls:
    """The consumer group calls of `AmqpClient` (the same as `PhotonClient`'s over HTTP)."""

    def call(self, call: Call) -> Any:
        raise NotImplementedError

    def create_group(self, name: str, **settings: Any) -> dict[str, Any]:
        """Create consumer group `name`; `settings` as keywords (``stream="__category__:order"``,
        ``max_in_flight=5``, ...). Returns the group's description."""
        created: dict[str, Any] = self.call(amqp_calls.create_group(name, settings))
        return created

    def update_group(self, name: str, **changes: Any) -> dict[str, Any]:
        updated: dict[str, Any] = self.call(amqp_calls.update_group(name, changes))
        return updated

    def delete_group(self, name: str) -> None:
        self.call(amqp_calls.delete_group(name))

    def groups(self) -> list[dict[str, Any]]:
        """Every consumer group with its checkpoint, members and counters."""
        listed: list[dict[str, Any]] = self.call(amqp_calls.list_groups())
        return listed

    def group(self, name: str) -> dict[str, Any]:
        described: dict[str, Any] = self.call(amqp_calls.describe_group(name))
        return described

    def reset_group(self, name: str, from_: int) -> dict[str, Any]:
        """Start the group over from order-id `from_` (its members are ended and join again)."""
        reset: dict[str, Any] = self.call(amqp_calls.reset_group(name, from_))
        return reset

    def replay_parked(self, name: str) -> int:
        """Hand the group's parked events back to it; returns how many."""
        return int(self.call(amqp_calls.replay_parked(name)))

    def ack_group(self, name: str, order_ids: int | Sequence[int]) -> dict[str, Any]:
        """Acknowledge deliveries of group `name`; ``{"done": n, "unknown": [...]}`` once durable."""
        acked: dict[str, Any] = self.call(amqp_calls.ack_group(name, order_ids))
        return acked

    def nack_group(
        self, name: str, order_ids: int | Sequence[int], action: str = "retry", reason: str = ""
    ) -> dict[str, Any]:
        """Refuse deliveries: `retry` (delivered again, counted), `park` or `skip`."""
        nacked: dict[str, Any] = self.call(amqp_calls.nack_group(name, order_ids, action, reason))
        return nacked


class AmqpGroupMember:
    """A member of a consumer group over AMQP: an iterator of `GroupDelivery`s, with `ack`/`nack`.

    Iteration ends when the membership ends on the server's side (`ended` says why: the group
    was deleted or reset, Photon stopped or lost its broker connection); join again to go on.
    Use it from the thread that uses its client.
    """

    def __init__(
        self,
        client: AmqpClient,
        group: str,
        member: str | None = None,
        max_in_flight: int | None = None,
        limit: int | None = None,
    ) -> None:
        self.client = client
        self.group = group
        self.id = member
        self.ended: str | None = None
        """Why the membership ended (the `reason` of its `group-ended` message), None while it runs."""
        self._left = limit
        """Deliveries still to come when joined with a `limit` (the server gives no more): at 0 the
        iteration ends, and `take` waits no longer; the member stays joined until `close`."""
        self._inbox: deque[tuple[str, Any, bytes]] = deque()
        self._correlation_id = str(uuid.uuid4())
        connection = client.connection()
        self._connection = connection
        self._channel = connection.channel()
        self._queue: str = self._channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        self._channel.basic_consume(self._queue, self._on_message, auto_ack=True)
        self._channel.add_on_return_callback(self._on_return)
        request: dict[str, Any] = {"group-name": group}
        if member is not None:
            request["member"] = member
        if max_in_flight is not None:
            request["max-in-flight"] = max_in_flight
        if limit is not None:
            request["limit"] = limit
        self._publish(GROUP_JOIN, request, mandatory=True)
        kind, _properties, body = self._next_message(client.timeout)
        if kind == GROUP_JOINED:
            self.id = str(orjson.loads(body)["member"])
            return
        self._close_channel()
        self.ended = "refused"
        if kind == UNROUTABLE:
            raise unroutable(client.names.commands)
        if kind == ERROR:
            raise error_from_body(orjson.loads(body))
        raise PhotonError(f"unexpected answer {kind!r} to a group-join")

    def _on_message(self, _channel: Any, _method: Any, properties: BasicProperties, body: bytes) -> None:
        if properties.correlation_id == self._correlation_id:
            self._inbox.append((properties.type or "", properties, body))

    def _on_return(self, _channel: Any, _method: Any, properties: BasicProperties, _body: bytes) -> None:
        # The join came back from the broker: no queue of that name (a wrong `service`).
        if properties.correlation_id == self._correlation_id:
            self._inbox.append((UNROUTABLE, properties, b"null"))

    def _publish(self, kind: str, body: dict[str, Any], *, mandatory: bool = False) -> None:
        properties = BasicProperties(
            type=kind, reply_to=self._queue, correlation_id=self._correlation_id, content_type=CONTENT_TYPE
        )
        self._channel.basic_publish("", self.client.names.commands, orjson.dumps(body), properties, mandatory=mandatory)

    def _next_message(self, timeout: float | None) -> tuple[str, Any, bytes]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._inbox:
            remaining = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if remaining <= 0:
                raise TimeoutError(f"no answer from {self.client.names.commands!r} within {timeout}s")
            self._poll(remaining)
        return self._inbox.popleft()

    def __iter__(self) -> Iterator[GroupDelivery]:
        return self

    def __next__(self) -> GroupDelivery:
        while self.ended is None and self._left != 0:
            delivery = self._read(*self._next_message(None))
            if delivery is not None:
                return delivery
        raise StopIteration

    def take(self, timeout: float | None = None) -> list[GroupDelivery]:
        """Every delivery received so far, waiting up to `timeout` seconds for one; [] on time-out
        or once the membership ended. For acknowledging many at once (one `ack` per batch)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        taken: list[GroupDelivery] = []
        while self.ended is None and self._left != 0:
            if not self._inbox:
                if taken:
                    self._poll(0)  # what else has arrived, without waiting
                    if not self._inbox:
                        break
                else:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    self._poll(1.0 if remaining is None else min(1.0, remaining))
                    continue
            delivery = self._read(*self._inbox.popleft())
            if delivery is not None:
                taken.append(delivery)
        return taken

    def _poll(self, seconds: float) -> None:
        try:
            self._connection.process_data_events(time_limit=seconds)
        except pika.exceptions.AMQPError as exc:
            self.ended = "connection lost"
            raise BrokerUnavailable(f"the AMQP connection of member {self.id!r} was lost: {exc!r}") from None

    def _read(self, kind: str, properties: Any, body: bytes) -> GroupDelivery | None:
        """A message to this member's queue: a delivery, or the end of the membership (None)."""
        if kind == EVENT:
            if self._left is not None:
                self._left -= 1
            return GroupDelivery(RecordedEvent.from_json(body), int(properties.headers[ATTEMPT_HEADER]))
        if kind == GROUP_ENDED:
            self.ended = str(orjson.loads(body).get("reason", ""))
        elif kind == ERROR:
            self.ended = "error"
            raise error_from_body(orjson.loads(body))
        return None

    def ack(self, order_ids: int | Sequence[int]) -> dict[str, Any]:
        """Acknowledge deliveries (order-ids); returns once durable: ``{"done": n, "unknown": [...]}``."""
        return self.client.ack_group(self.group, order_ids)

    def nack(self, order_ids: int | Sequence[int], action: str = "retry", reason: str = "") -> dict[str, Any]:
        """Refuse deliveries: `retry` (delivered again, counted), `park` or `skip`."""
        return self.client.nack_group(self.group, order_ids, action, reason)

    def close(self) -> None:
        """Leave the group: what this member has not acknowledged goes to the others."""
        if self.ended is None:
            self.ended = "left"
            # Without a connection the queue is gone too, and the server sees that.
            with contextlib.suppress(pika.exceptions.AMQPError):
                self._publish(GROUP_LEAVE, {})
        self._close_channel()

    def _close_channel(self) -> None:
        try:
            if self._channel.is_open:
                self._channel.queue_delete(self._queue)
                self._channel.close()
        except pika.exceptions.AMQPError:
            pass

    def __enter__(self) -> AmqpGroupMember:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
