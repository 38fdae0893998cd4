"""The asyncio client over AMQP (RabbitMQ): `AsyncPhotonClient(transport=AsyncAmqpTransport(url))`.

    from photon.client import AsyncPhotonClient
    from photon.client.amqp_async import AsyncAmqpTransport

    async with AsyncPhotonClient(transport=AsyncAmqpTransport("amqp://guest:guest@localhost:5672/%2F")) as photon:
        await photon.emit({"stream-name": "orders", "event-type": "placed", "payload": {"n": 1}})
        async for event in photon.replay("orders", stream_type="cold"):
            print(event.order_id)
        async with photon.join_group("billing") as member:
            async for delivery in member:
                await member.ack(delivery.event.order_id)

It offers what the blocking AMQP transport (`photon.client.amqp`) offers: emit, replay (cold,
hot, hot-cold), consumer groups (create, join, ack, nack, ...), stream metadata, deletes,
scavenging, redaction and reads by query.

Why aio-pika (the `amqp-async` extra) and not the blocking transport run in threads: an asyncio
service expects its I/O on its own event loop. Here one connection serves every call of the
client; a replay or a group member is a channel and a queue on it, not a thread; many emits are in
flight at once on one coroutine each; `asyncio.timeout` and task cancellation stop a call where it
waits (leaving a replay cancels it on the server). The blocking transport would need a pika
connection per thread (pika's connections are not thread-safe) and a thread held for as long as
each live replay or member lasts.

The messages are those of Photon's AMQP protocol (`photon.wire.amqp`, docs/amqp.md); what is sent
and how a reply is read is shared with the blocking client (`photon.client.amqp_calls`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import aio_pika
import aio_pika.abc
import orjson

from photon.client import amqp_calls
from photon.client.amqp_async_groups import LOST, AsyncAmqpGroupMember, command
from photon.client.amqp_calls import (
    HTTP_ONLY,
    Call,
    emit_command,
    emitted,
    expected,
    replay_arguments,
    unroutable,
)
from photon.client.wire import replay_options
from photon.core.append_request import AppendCondition
from photon.core.events import ALL_STREAM
from photon.core.subscriptions import CaughtUp
from photon.wire.amqp import (
    CANCEL,
    CAUGHT_UP,
    EMIT,
    END,
    ERROR,
    EVENT,
    REPLAY,
    BrokerUnavailable,
    Names,
    error_from_body,
    redact,
    replay_body,
)

log = logging.getLogger("photon.amqp_client")

Event = Mapping[str, Any]
ReplayItem = dict[str, Any] | CaughtUp


class AsyncAmqpClient:
    """Emit, replay, consumer groups and stream lifetimes through a Photon service's AMQP command
    queue, on one aio-pika connection shared by every coroutine that uses the client."""

    def __init__(self, url: str, service: str = "photon", *, timeout: float = 30.0, retries: int = 5) -> None:
        """`service` is the server's `microservice.name`; `timeout` bounds the wait for a reply;
        `retries` is how often an emit is re-sent over a new connection after the connection
        dropped (safe: every event carries an id, so nothing is stored twice)."""
        self.url = url
        self.names = Names(service)
        self.timeout = timeout
        self.retries = retries
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._reply_queue = ""
        self._waiting: dict[str, asyncio.Future[tuple[str, bytes]]] = {}
        self._connecting = asyncio.Lock()

    # -- connection ---------------------------------------------------------------------------

    async def connection(self) -> aio_pika.abc.AbstractConnection:
        """The client's connection to the broker (opened if need be), for channels of its own."""
        await self._connect()
        assert self._connection is not None
        return self._connection

    async def _connect(self) -> aio_pika.abc.AbstractChannel:
        async with self._connecting:
            if self._channel is not None and not self._channel.is_closed:
                return self._channel
            await self._drop()
            try:
                connection = await aio_pika.connect(self.url, timeout=self.timeout)
            except (TimeoutError, aio_pika.exceptions.AMQPError, OSError) as exc:
                raise BrokerUnavailable(f"cannot connect to the AMQP broker at {redact(self.url)}: {exc!r}") from None
            connection.close_callbacks.add(self._on_close)
            # Publisher confirms on this channel only so that a command no queue takes comes back
            # as an error (aiormq reports returned messages on confirmed channels only); the
            # reply is what says the events are stored.
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            channel.close_callbacks.add(self._on_close)
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.consume(self._on_reply, no_ack=True)
            self._connection, self._channel, self._reply_queue = connection, channel, queue.name
            return channel

    def _answer(self, correlation_id: str | None, kind: str, body: bytes) -> None:
        future = self._waiting.get(correlation_id or "")
        if future is not None and not future.done():
            future.set_result((kind, body))

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self._answer(message.correlation_id, message.type or "", message.body)

    def _on_close(self, _sender: Any, exc: BaseException | None = None) -> None:
        """The connection or the command channel went: every call waiting for a reply fails."""
        self._channel = None
        lost = BrokerUnavailable(f"the AMQP connection to {redact(self.url)} was lost: {exc!r}")
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(lost)

    async def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and not connection.is_closed:
            try:
                await connection.close()
            except Exception:
                log.debug("closing a broken AMQP connection failed", exc_info=True)

    async def close(self) -> None:
        await self._drop()

    async def __aenter__(self) -> AsyncAmqpClient:
        await self._connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests and replies -----------------------------------------------------------------

    async def _exchange(self, kind: str, bodies: Sequence[bytes]) -> list[tuple[str, bytes]]:
        """Publish commands of type `kind` and wait for their replies, in the same order."""
        channel = await self._connect()
        loop = asyncio.get_running_loop()
        ids = [str(uuid.uuid4()) for _ in bodies]
        futures = [loop.create_future() for _ in ids]
        self._waiting.update(zip(ids, futures, strict=True))
        try:
            publishes = [
                channel.default_exchange.publish(
                    command(kind, body, self._reply_queue, correlation_id), self.names.commands, mandatory=True
                )
                for correlation_id, body in zip(ids, bodies, strict=True)
            ]
            try:
                async with asyncio.timeout(self.timeout):
                    try:
                        await asyncio.gather(*publishes)
                    except aio_pika.exceptions.DeliveryError:  # returned by the broker: no such queue
                        raise unroutable(self.names.commands) from None
                    return list(await asyncio.gather(*futures))
            except TimeoutError:
                raise TimeoutError(f"no reply from {self.names.commands!r} within {self.timeout}s") from None
        finally:
            for correlation_id, future in zip(ids, futures, strict=True):
                self._waiting.pop(correlation_id, None)
                # A lost connection fails every waiting future: the first failure is raised above,
                # the others are read here so that asyncio does not report them as never retrieved.
                if future.done() and not future.cancelled():
                    future.exception()
                else:
                    future.cancel()

    async def send_request(self, request: aio_pika.Message) -> None:
        """Publish a request whose answers go to a queue of its own (a replay, a group join) on
        the command channel, so that one no queue takes (a wrong `service`) fails at once."""
        channel = await self._connect()
        try:
            async with asyncio.timeout(self.timeout):
                await channel.default_exchange.publish(request, self.names.commands, mandatory=True)
        except aio_pika.exceptions.DeliveryError:  # returned by the broker: no such queue
            raise unroutable(self.names.commands) from None
        except TimeoutError:
            raise TimeoutError(
                f"no confirmation from the broker for {self.names.commands!r} within {self.timeout}s"
            ) from None

    async def call(self, call: Call) -> Any:
        """Send a request answered once (`photon.client.amqp_calls`) and read its answer."""
        [(kind, body)] = await self._exchange(call.kind, [orjson.dumps(call.body)])
        return amqp_calls.done(call, kind, body, self.names.commands)

    # -- emit ---------------------------------------------------------------------------------

    async def emit(
        self,
        events: Event | Sequence[Event],
        expected_version: int | str | None = None,
        *,
        expected_versions: Mapping[str, int | str] | None = None,
        condition: AppendCondition | Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Store one event or a list (atomically); returns the stored events with their
        `order-id` and `stream-version`. Raises the core's errors (`ValidationError`,
        `VersionConflict`, `AppendConditionFailed`, ...) when Photon refuses, `TimeoutError`
        without a reply, `BrokerUnavailable` when the broker stays out of reach."""
        body = emit_command(events, expected_version, expected_versions, condition)
        return (await self._send_all([body]))[0]

    async def emit_many(
        self,
        commands: Iterable[Event | Sequence[Event]],
        *,
        expected_version: int | str | None = None,
        window: int = 64,
    ) -> list[list[dict[str, Any]]]:
        """Several emit commands, up to `window` in flight at once; one result per command.

        Commands in flight together may be stored in any order among themselves.
        """
        prepared = [emit_command(events, expected_version) for events in commands]
        results: list[list[dict[str, Any]]] = []
        for start in range(0, len(prepared), max(1, window)):
            results.extend(await self._send_all(prepared[start : start + window]))
        return results

    async def _send_all(self, bodies: list[bytes]) -> list[list[dict[str, Any]]]:
        attempt = 0
        while True:
            try:
                return emitted(await self._exchange(EMIT, bodies), self.names.commands)
            except LOST as exc:
                attempt += 1
                await self._drop()
                if attempt > self.retries:
                    raise BrokerUnavailable(f"AMQP emit failed after {attempt} attempts: {exc!r}") from None
                log.warning("AMQP connection lost (%r); re-sending %d command(s)", exc, len(bodies))
                await asyncio.sleep(min(0.2 * 2**attempt, 3.0))

    # -- stream lifetimes ---------------------------------------------------------------------

    async def stream_metadata(self, stream: str, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A stream's metadata; with `metadata`, set it first (it replaces the whole metadata)."""
        answer: dict[str, Any] = await self.call(amqp_calls.stream_metadata(stream, metadata))
        return answer

    async def delete_stream(self, stream: str, *, hard: bool = False) -> int:
        """Soft delete a stream (hard: a tombstone); returns its version when deleted."""
        return int(await self.call(amqp_calls.delete_stream(stream, hard)))

    async def scavenge(self) -> dict[str, Any]:
        """Run a scavenge on the server; its report once done (the call waits up to `timeout`)."""
        report: dict[str, Any] = await self.call(amqp_calls.scavenge())
        return report

    async def redact(
        self, *, stream: str | None = None, event_ids: Sequence[str] | None = None, reason: str | None = None
    ) -> int:
        """Redact a stream's events or chosen events (see docs/lifetime.md); returns how many."""
        return int(await self.call(amqp_calls.redact(stream, event_ids, reason)))

    async def read_matching(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """One page of events matching a query, as `POST /api/read-matching` answers it."""
        page: dict[str, Any] = await self.call(amqp_calls.read_matching(body))
        return page

    # -- consumer groups ----------------------------------------------------------------------

    async def create_group(self, name: str, **settings: Any) -> dict[str, Any]:
        """Create consumer group `name`; `settings` as keywords (``stream="__category__:order"``,
        ``max_in_flight=5``, ...). Returns the group's description."""
        created: dict[str, Any] = await self.call(amqp_calls.create_group(name, settings))
        return created

    async def update_group(self, name: str, **changes: Any) -> dict[str, Any]:
        updated: dict[str, Any] = await self.call(amqp_calls.update_group(name, changes))
        return updated

    async def delete_group(self, name: str) -> None:
        await self.call(amqp_calls.delete_group(name))

    async def groups(self) -> list[dict[str, Any]]:
        """Every consumer group with its checkpoint, members and counters."""
        listed: list[dict[str, Any]] = await self.call(amqp_calls.list_groups())
        return listed

    async def group(self, name: str) -> dict[str, Any]:
        described: dict[str, Any] = await self.call(amqp_calls.describe_group(name))
        return described

    async def reset_group(self, name: str, from_: int) -> dict[str, Any]:
        """Start the group over from order-id `from_` (its members are ended and join again)."""
        reset: dict[str, Any] = await self.call(amqp_calls.reset_group(name, from_))
        return reset

    async def replay_parked(self, name: str) -> int:
        """Hand the group's parked events back to it; returns how many."""
        return int(await self.call(amqp_calls.replay_parked(name)))

    async def ack_group(self, name: str, order_ids: int | Sequence[int]) -> dict[str, Any]:
        """Acknowledge deliveries of group `name`; ``{"done": n, "unknown": [...]}`` once durable."""
        acked: dict[str, Any] = await self.call(amqp_calls.ack_group(name, order_ids))
        return acked

    async def nack_group(
        self, name: str, order_ids: int | Sequence[int], action: str = "retry", reason: str = ""
    ) -> dict[str, Any]:
        """Refuse deliveries: `retry` (delivered again, counted), `park` or `skip`."""
        nacked: dict[str, Any] = await self.call(amqp_calls.nack_group(name, order_ids, action, reason))
        return nacked

    def join_group(
        self, name: str, member: str | None = None, *, max_in_flight: int | None = None, limit: int | None = None
    ) -> AsyncAmqpGroupMember:
        """A member of consumer group `name` (a new id unless `member` is given); it joins on
        ``async with`` (or `await member.join()`, or the first delivery awaited), raising
        `NotFound` for an unknown group. `max_in_flight` lowers the group's limit for this member;
        `limit` ends its deliveries after that many (a fetch: none is spent by its leaving)."""
        return AsyncAmqpGroupMember(self, name, member, max_in_flight, limit)

    # -- replay -------------------------------------------------------------------------------

    async def replay(
        self,
        stream: str = ALL_STREAM,
        stream_type: str = "cold",
        *,
        from_order_id: int | None = None,
        from_version: int | None = None,
        from_time: int | None = None,
        to_order_id: int | None = None,
        event_types: Sequence[str] | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
        prefetch: int = 1000,
    ) -> AsyncIterator[ReplayItem]:
        """The events of a stream as dicts; `cold` ends after the history, `hot-cold` yields a
        `CaughtUp(order_id)` after the history and then live events until the iterator is
        closed (`aclose()`), `hot` yields live events only. Leaving the loop cancels the replay."""
        options = replay_options(
            stream_type, from_order_id, from_version, from_time, to_order_id, event_types, limit, filter
        )
        connection = await self.connection()
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=prefetch)
        # None: the channel (or its connection) went away.
        inbox: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage | None] = asyncio.Queue()
        channel.close_callbacks.add(lambda *_: inbox.put_nowait(None))
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        tag = await queue.consume(inbox.put)
        correlation_id = str(uuid.uuid4())
        request = command(REPLAY, replay_body(stream, options), queue.name, correlation_id)
        finished = True  # nothing to cancel until the request is out
        live = stream_type != "cold"
        unacked = 0
        try:
            await self.send_request(request)
            finished = False
            while True:
                if not inbox.empty():
                    message = inbox.get_nowait()
                else:
                    try:
                        async with asyncio.timeout(None if live else self.timeout):
                            message = await inbox.get()
                    except TimeoutError:
                        raise TimeoutError(f"replay of {stream!r}: nothing received for {self.timeout}s") from None
                if message is None:
                    finished = True
                    raise BrokerUnavailable(f"the AMQP connection of the replay of {stream!r} was lost")
                unacked += 1
                if unacked >= max(1, prefetch // 2):
                    await message.ack(multiple=True)
                    unacked = 0
                if message.correlation_id != correlation_id:
                    continue
                kind = message.type
                if kind == EVENT:
                    yield orjson.loads(message.body)
                elif kind == CAUGHT_UP:
                    yield CaughtUp(int(orjson.loads(message.body)["order-id"]))
                elif kind == END:
                    finished = True
                    return
                elif kind == ERROR:
                    finished = True
                    raise error_from_body(orjson.loads(message.body))
        finally:
            await _end_replay(channel, queue, tag, self.names.commands, correlation_id, finished)


async def _end_replay(
    channel: aio_pika.abc.AbstractChannel,
    queue: aio_pika.abc.AbstractQueue,
    tag: str,
    commands: str,
    correlation_id: str,
    finished: bool,
) -> None:
    if channel.is_closed:
        return
    try:
        if not finished:
            cancel = command(CANCEL, b"{}", queue.name, correlation_id)
            await channel.default_exchange.publish(cancel, commands)
        await queue.cancel(tag)  # the queue is auto-delete: it goes with its consumer
        await channel.close()
    except LOST:
        log.debug("ending a replay on a broken connection", exc_info=True)


class AsyncAmqpTransport:
    """`photon.client.AsyncPhotonClient` over AMQP: emit, replay, reads by query, consumer groups,
    stream metadata, deletes, scavenging and redaction through the server's command queue.

        client = AsyncPhotonClient(transport=AsyncAmqpTransport("amqp://guest:guest@localhost:5672/%2F"))

    Durable named subscriptions, the stream list, reads by page and projections are HTTP
    features: those calls say so.
    """

    def __init__(self, url: str, service: str = "photon", **options: Any) -> None:
        """`options`: `timeout` and `retries` of `AsyncAmqpClient`."""
        self.url = url
        self.client = AsyncAmqpClient(url, service=service, **options)

    async def emit(
        self,
        events: Event | Sequence[Event],
        expected_version: Any,
        expected_versions: Mapping[str, Any] | None = None,
        condition: Any = None,
    ) -> Any:
        stored = await self.client.emit(
            events, expected(expected_version), expected_versions=expected_versions, condition=condition
        )
        return stored[0] if isinstance(events, Mapping) else stored

    def replay(self, stream: str, params: dict[str, Any]) -> AsyncIterator[ReplayItem]:
        return self.client.replay(stream, **replay_arguments(params))

    @property
    def group_calls(self) -> AsyncAmqpClient:
        """Where `AsyncPhotonClient` sends its consumer group calls over this transport."""
        return self.client

    @property
    def lifetime_calls(self) -> AsyncAmqpClient:
        """Where `AsyncPhotonClient` sends stream metadata, deletes, scavenging and redaction."""
        return self.client

    async def read_matching(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.client.read_matching(body)

    def subscribe(self, name: str, params: dict[str, Any]) -> AsyncIterator[ReplayItem]:
        raise NotImplementedError(HTTP_ONLY["subscribe"])

    async def ack(self, name: str, order_id: int) -> dict[str, Any]:
        raise NotImplementedError(HTTP_ONLY["subscribe"])

    async def streams(self) -> list[dict[str, Any]]:
        raise NotImplementedError(HTTP_ONLY["streams"])

    async def close(self) -> None:
        await self.client.close()
