"""Consumer groups in the asyncio AMQP client: a member fed through its own queue.

    async with AsyncAmqpClient(url) as client, client.join_group("billing") as member:
        async for delivery in member:
            handle(delivery.event)
            await member.ack(delivery.event.order_id)

As in the blocking client (`photon.client.amqp_groups`), a member declares an exclusive queue on
the client's connection and sends `group-join` with that queue as `reply_to`; Photon publishes the
member's deliveries there. When the connection goes, the queue goes with it, and Photon hands the
member's unacknowledged events to the other members.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import aio_pika
import aio_pika.abc
import orjson

from photon.client.groups import GroupDelivery
from photon.core.errors import PhotonError
from photon.core.events import RecordedEvent
from photon.wire.amqp import CONTENT_TYPE, ERROR, EVENT, BrokerUnavailable, error_from_body
from photon.wire.amqp_groups import ATTEMPT_HEADER, GROUP_ENDED, GROUP_JOIN, GROUP_JOINED, GROUP_LEAVE

if TYPE_CHECKING:
    from photon.client.amqp_async import AsyncAmqpClient

#: What a lost connection or channel raises in aio-pika and aiormq.
#: (Not OSError: a `TimeoutError` is one, and a time-out is not a lost connection.)
LOST = (
    aio_pika.exceptions.AMQPError,
    # A channel the broker closed under a publish (a restart) is refused by aiormq with this
    # RuntimeError rather than a connection error; the command is sent again like any other.
    aio_pika.exceptions.ChannelInvalidStateError,
    ConnectionError,
    BrokerUnavailable,
)


def command(kind: str, body: bytes, reply_to: str, correlation_id: str) -> aio_pika.Message:
    """A request on the command queue, its answers to go to `reply_to` with `correlation_id` (also
    its `message_id`: aiormq matches a message the broker returns by its `message_id`)."""
    return aio_pika.Message(
        body,
        type=kind,
        reply_to=reply_to,
        correlation_id=correlation_id,
        message_id=correlation_id,
        content_type=CONTENT_TYPE,
    )


class AsyncAmqpGroupMember:
    """A member of a consumer group over AMQP: ``async for delivery in member`` (`GroupDelivery`),
    ``await member.ack(...)`` / ``nack(...)``.

    The member has a channel and an exclusive queue on its client's connection; Photon publishes
    its deliveries there. Iteration ends when the membership ends on the server's side (`ended`
    says why: the group was deleted or reset, Photon stopped or lost its broker connection); join
    again to go on. Closing the member (or losing the connection) gives its unacknowledged events
    to the other members.
    """

    def __init__(
        self,
        client: AsyncAmqpClient,
        group: str,
        member: str | None = None,
        max_in_flight: int | None = None,
        limit: int | None = None,
    ) -> None:
        self.client = client
        self.group = group
        self.id = member
        self.max_in_flight = max_in_flight
        self.limit = limit
        self.ended: str | None = None
        """Why the membership ended (the `reason` of its `group-ended` message), None while it runs."""
        self._left = limit
        """Deliveries still to come when joined with a `limit` (the server gives no more): at 0 the
        iteration ends, and `take` waits no longer; the member stays joined until `close`."""
        self._correlation_id = str(uuid.uuid4())
        # None: the channel (or its connection) went away.
        self._inbox: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage | None] = asyncio.Queue()
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._queue: aio_pika.abc.AbstractQueue | None = None
        self._tag = ""

    async def join(self) -> AsyncAmqpGroupMember:
        """Start the membership (once); `NotFound` for an unknown group."""
        if self._channel is not None:
            return self
        connection = await self.client.connection()
        self._channel = channel = await connection.channel(publisher_confirms=False)
        channel.close_callbacks.add(lambda *_: self._inbox.put_nowait(None))
        self._queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        self._tag = await self._queue.consume(self._on_message, no_ack=True)
        request: dict[str, Any] = {"group-name": self.group}
        if self.id is not None:
            request["member"] = self.id
        if self.max_in_flight is not None:
            request["max-in-flight"] = self.max_in_flight
        if self.limit is not None:
            request["limit"] = self.limit
        try:
            await self.client.send_request(
                command(GROUP_JOIN, orjson.dumps(request), self._queue.name, self._correlation_id)
            )
        except BaseException:
            self.ended = "refused"
            await self._close_channel()
            raise
        try:
            async with asyncio.timeout(self.client.timeout):
                message = await self._inbox.get()
        except TimeoutError:
            await self._close_channel()
            raise TimeoutError(f"no answer from {self.client.names.commands!r} within {self.client.timeout}s") from None
        kind = "" if message is None else message.type
        if message is not None and kind == GROUP_JOINED:
            self.id = str(orjson.loads(message.body)["member"])
            return self
        self.ended = "refused"
        await self._close_channel()
        if message is None:
            raise BrokerUnavailable(f"the AMQP connection was lost while joining group {self.group!r}")
        if kind == ERROR:
            raise error_from_body(orjson.loads(message.body))
        raise PhotonError(f"unexpected answer {kind!r} to a group-join")

    async def _on_message(self, incoming: aio_pika.abc.AbstractIncomingMessage) -> None:
        if incoming.correlation_id == self._correlation_id:
            self._inbox.put_nowait(incoming)

    async def _publish(self, kind: str, body: dict[str, Any]) -> None:
        assert self._channel is not None and self._queue is not None
        request = command(kind, orjson.dumps(body), self._queue.name, self._correlation_id)
        await self._channel.default_exchange.publish(request, self.client.names.commands)

    def __aiter__(self) -> AsyncAmqpGroupMember:
        return self

    async def __anext__(self) -> GroupDelivery:
        await self.join()
        while self.ended is None and self._left != 0:
            delivery = self._read(await self._inbox.get())
            if delivery is not None:
                return delivery
        raise StopAsyncIteration

    async def take(self, timeout: float | None = None) -> list[GroupDelivery]:
        """Every delivery received so far, waiting up to `timeout` seconds for one; [] on time-out
        or once the membership ended. For acknowledging many at once (one `ack` per batch)."""
        await self.join()
        deadline = None if timeout is None else time.monotonic() + timeout
        taken: list[GroupDelivery] = []
        while self.ended is None and self._left != 0:
            if taken and self._inbox.empty():
                break
            remaining = None if deadline is None or taken else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    message = await self._inbox.get()
            except TimeoutError:
                break
            delivery = self._read(message)
            if delivery is not None:
                taken.append(delivery)
        return taken

    def _read(self, message: aio_pika.abc.AbstractIncomingMessage | None) -> GroupDelivery | None:
        """A message to this member's queue: a delivery, or the end of the membership (None)."""
        if message is None:
            if self.ended is None:
                self.ended = "connection lost"
                raise BrokerUnavailable(f"the AMQP connection of member {self.id!r} was lost")
            return None
        kind = message.type
        if kind == EVENT:
            if self._left is not None:
                self._left -= 1
            attempt = int(str((message.headers or {})[ATTEMPT_HEADER]))
            return GroupDelivery(RecordedEvent.from_json(message.body), attempt)
        if kind == GROUP_ENDED:
            self.ended = str(orjson.loads(message.body).get("reason", ""))
        elif kind == ERROR:
            self.ended = "error"
            raise error_from_body(orjson.loads(message.body))
        return None

    async def ack(self, order_ids: int | Sequence[int]) -> dict[str, Any]:
        """Acknowledge deliveries (order-ids); returns once durable: ``{"done": n, "unknown": [...]}``."""
        return await self.client.ack_group(self.group, order_ids)

    async def nack(self, order_ids: int | Sequence[int], action: str = "retry", reason: str = "") -> dict[str, Any]:
        """Refuse deliveries: `retry` (delivered again, counted), `park` or `skip`."""
        return await self.client.nack_group(self.group, order_ids, action, reason)

    async def close(self) -> None:
        """Leave the group: what this member has not acknowledged goes to the others."""
        if self.ended is None:
            self.ended = "left"
            if self._channel is not None and not self._channel.is_closed:
                # Without a connection the queue is gone too, and the server sees that.
                with contextlib.suppress(*LOST):
                    await self._publish(GROUP_LEAVE, {})
        await self._close_channel()

    async def _close_channel(self) -> None:
        channel, queue = self._channel, self._queue
        if channel is None or channel.is_closed:
            return
        with contextlib.suppress(*LOST):
            if queue is not None and self._tag:
                await queue.cancel(self._tag)  # the queue is auto-delete: it goes with its consumer
            await channel.close()

    async def __aenter__(self) -> AsyncAmqpGroupMember:
        return await self.join()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
