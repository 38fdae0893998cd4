"""A Python client for Photon over AMQP (RabbitMQ), in the style of the Muon event client.

    with AmqpClient("amqp://guest:guest@localhost:5672/%2F", service="photon") as client:
        stored = client.emit({"stream-name": "orders", "event-type": "placed", "payload": {"n": 1}})
        for item in client.replay("orders", "cold"):
            print(item)

`emit` and `replay` have the shape of a transport of the HTTP client. One client holds one
connection and is used from one thread at a time (pika's connections are not thread-safe):
give each thread its own client.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson
import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import BasicProperties

from photon.client import amqp_calls
from photon.client.amqp_calls import (
    HTTP_ONLY,
    UNROUTABLE,
    Call,
    emit_command,
    emitted,
    expected,
    replay_arguments,
    unroutable,
)
from photon.client.amqp_groups import AmqpGroupCalls, AmqpGroupMember
from photon.client.wire import replay_options
from photon.core.append_request import AppendCondition
from photon.core.events import ALL_STREAM
from photon.core.subscriptions import CaughtUp
from photon.wire.amqp import (
    CANCEL,
    CAUGHT_UP,
    CONTENT_TYPE,
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


class AmqpClient(AmqpGroupCalls):
    """Emit, replay and consumer groups through a Photon service's AMQP command queue."""

    def __init__(
        self,
        url: str,
        service: str = "photon",
        *,
        timeout: float = 30.0,
        retries: int = 5,
    ) -> None:
        """`service` is the server's `microservice.name`; `timeout` bounds the wait for a reply;
        `retries` is how often a command is re-sent over a new connection after the
        connection dropped (safe: every event carries an id, so nothing is stored twice)."""
        self.url = url
        self.names = Names(service)
        self.timeout = timeout
        self.retries = retries
        self._params = pika.URLParameters(url)
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._reply_queue = ""
        self._replies: dict[str, tuple[str, bytes]] = {}

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> BlockingChannel:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self._drop()
        try:
            connection = pika.BlockingConnection(self._params)
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(f"cannot connect to the AMQP broker at {redact(self.url)}: {exc!r}") from None
        channel = connection.channel()
        # No publisher confirms on commands: the reply is the confirmation (it comes once the
        # events are durable in the store), and a command without a reply is re-sent.
        channel.add_on_return_callback(self._on_return)
        self._reply_queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        channel.basic_consume(self._reply_queue, self._on_reply, auto_ack=True)
        self._connection, self._channel = connection, channel
        return channel

    def connection(self) -> pika.BlockingConnection:
        """The client's connection to the broker (opened if need be), for channels of its own."""
        self._connect()
        assert self._connection is not None
        return self._connection

    def _on_reply(self, _channel: BlockingChannel, _method: Any, properties: BasicProperties, body: bytes) -> None:
        if properties.correlation_id:
            self._replies[properties.correlation_id] = (properties.type or "", body)

    def _on_return(self, _channel: BlockingChannel, _method: Any, properties: BasicProperties, _body: bytes) -> None:
        if properties.correlation_id:
            self._replies[properties.correlation_id] = (UNROUTABLE, b"null")

    def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._replies.clear()
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:
                log.debug("closing a broken AMQP connection failed", exc_info=True)

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> AmqpClient:
        self._connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- emit ---------------------------------------------------------------------------------

    def emit(
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
        without a reply. `expected_versions` and `condition` are those of `EventStore.append`."""
        body = emit_command(events, expected_version, expected_versions, condition)
        return self._send_all([body])[0]

    def emit_many(
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
            results.extend(self._send_all(prepared[start : start + window]))
        return results

    def _send_all(self, bodies: list[bytes]) -> list[list[dict[str, Any]]]:
        attempt = 0
        while True:
            try:
                return self._exchange(bodies)
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError, BrokerUnavailable) as exc:
                attempt += 1
                self._drop()
                if attempt > self.retries:
                    raise BrokerUnavailable(f"AMQP emit failed after {attempt} attempts: {exc!r}") from None
                log.warning("AMQP connection lost (%r); re-sending %d command(s)", exc, len(bodies))
                time.sleep(min(0.2 * 2**attempt, 3.0))

    def _exchange(self, bodies: list[bytes]) -> list[list[dict[str, Any]]]:
        channel = self._connect()
        ids = [str(uuid.uuid4()) for _ in bodies]
        for correlation_id, body in zip(ids, bodies, strict=True):
            properties = BasicProperties(
                type=EMIT, reply_to=self._reply_queue, correlation_id=correlation_id, content_type=CONTENT_TYPE
            )
            channel.basic_publish("", self.names.commands, body, properties, mandatory=True)
        replies = self._wait_for(ids)
        return emitted([replies[correlation_id] for correlation_id in ids], self.names.commands)

    # -- streams over their lifetime --------------------------------------------------------

    def stream_metadata(self, stream: str, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A stream's metadata; with `metadata`, set it first (it replaces the whole metadata)."""
        answer: dict[str, Any] = self.call(amqp_calls.stream_metadata(stream, metadata))
        return answer

    def delete_stream(self, stream: str, *, hard: bool = False) -> int:
        """Soft delete a stream (hard: a tombstone); returns its version when deleted."""
        return int(self.call(amqp_calls.delete_stream(stream, hard)))

    def scavenge(self) -> dict[str, Any]:
        """Run a scavenge on the server; its report once done (the call waits up to `timeout`)."""
        report: dict[str, Any] = self.call(amqp_calls.scavenge())
        return report

    def redact(
        self, *, stream: str | None = None, event_ids: Sequence[str] | None = None, reason: str | None = None
    ) -> int:
        """Redact a stream's events or chosen events (see docs/lifetime.md); returns how many."""
        return int(self.call(amqp_calls.redact(stream, event_ids, reason)))

    def read_matching(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """One page of events matching a query: ``{"query": [...], "after": n, "limit": n}`` in,
        ``{"results": [...], "next": n or None, "head": n}`` out, as `POST /api/read-matching`."""
        page: dict[str, Any] = self.call(amqp_calls.read_matching(body))
        return page

    def call(self, call: Call) -> Any:
        """Send a request answered once (`photon.client.amqp_calls`) and read its answer."""
        channel = self._connect()
        correlation_id = str(uuid.uuid4())
        properties = BasicProperties(
            type=call.kind, reply_to=self._reply_queue, correlation_id=correlation_id, content_type=CONTENT_TYPE
        )
        channel.basic_publish("", self.names.commands, orjson.dumps(call.body), properties, mandatory=True)
        kind, reply = self._wait_for([correlation_id])[correlation_id]
        return amqp_calls.done(call, kind, reply, self.names.commands)

    def _wait_for(self, ids: list[str]) -> dict[str, tuple[str, bytes]]:
        connection = self._connection
        assert connection is not None
        deadline = time.monotonic() + self.timeout
        while not all(i in self._replies for i in ids):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply from {self.names.commands!r} within {self.timeout}s")
            connection.process_data_events(time_limit=min(remaining, 1.0))
        return {i: self._replies.pop(i) for i in ids}

    def join_group(
        self, name: str, member: str | None = None, *, max_in_flight: int | None = None, limit: int | None = None
    ) -> AmqpGroupMember:
        """Join consumer group `name` as a member (a new id unless `member` is given): iterate over
        its `GroupDelivery`s, `ack`/`nack` them. `max_in_flight` lowers the group's limit for this
        member (a prefetch); `limit` ends its deliveries after that many (a fetch: none is spent by
        its leaving). Raises `NotFound` for an unknown group."""
        return AmqpGroupMember(self, name, member, max_in_flight, limit)

    # -- replay -------------------------------------------------------------------------------

    def replay(
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
    ) -> Iterator[ReplayItem]:
        """The events of a stream as dicts; `cold` ends after the history, `hot-cold` yields a
        `CaughtUp(order_id)` after the history and then live events until the iterator is
        closed, `hot` yields live events only. Leaving the loop cancels the replay."""
        options = replay_options(
            stream_type, from_order_id, from_version, from_time, to_order_id, event_types, limit, filter
        )
        self._connect()
        connection = self._connection
        assert connection is not None
        channel = connection.channel()
        channel.basic_qos(prefetch_count=prefetch)
        queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        correlation_id = str(uuid.uuid4())
        request = BasicProperties(type=REPLAY, reply_to=queue, correlation_id=correlation_id, content_type=CONTENT_TYPE)
        # Mandatory: a request no queue takes (a wrong `service`) comes back, and fails the replay
        # at once rather than after `timeout` (or never, for a live one).
        returned: list[bool] = []
        channel.add_on_return_callback(lambda *_: returned.append(True))
        channel.basic_publish("", self.names.commands, replay_body(stream, options), request, mandatory=True)
        finished = False
        live = stream_type != "cold"
        unacked = 0
        last_seen = time.monotonic()
        try:
            for method, properties, body in channel.consume(queue, inactivity_timeout=min(self.timeout, 1.0)):
                if returned:
                    finished = True
                    raise unroutable(self.names.commands)
                if method is None:
                    if not live and time.monotonic() - last_seen > self.timeout:
                        raise TimeoutError(f"replay of {stream!r}: nothing received for {self.timeout}s")
                    continue
                last_seen = time.monotonic()
                unacked += 1
                if unacked >= prefetch // 2:
                    channel.basic_ack(method.delivery_tag, multiple=True)
                    unacked = 0
                if properties.correlation_id != correlation_id:
                    continue
                kind = properties.type
                if kind == EVENT:
                    yield orjson.loads(body)
                elif kind == CAUGHT_UP:
                    yield CaughtUp(int(orjson.loads(body)["order-id"]))
                elif kind == END:
                    finished = True
                    return
                elif kind == ERROR:
                    finished = True
                    raise error_from_body(orjson.loads(body))
        finally:
            self._end_replay(channel, queue, correlation_id, finished)

    def _end_replay(self, channel: BlockingChannel, queue: str, correlation_id: str, finished: bool) -> None:
        try:
            if channel.is_open:
                if not finished:
                    cancel = BasicProperties(type=CANCEL, reply_to=queue, correlation_id=correlation_id)
                    channel.basic_publish("", self.names.commands, b"{}", cancel)
                channel.cancel()
                channel.queue_delete(queue)
                channel.close()
        except pika.exceptions.AMQPError:
            log.debug("ending a replay on a broken connection", exc_info=True)


class AmqpTransport:
    """`photon.client.PhotonClient` over AMQP: emit and replay through the server's command queue.

        client = PhotonClient(transport=AmqpTransport("amqp://guest:guest@localhost:5672/%2F"))

    Consumer groups work as over HTTP (`PhotonClient.join_group`, `create_group`, ...: see
    `group_calls`), and so do stream metadata, deletes, scavenging, redaction and reads by query
    (`lifetime_calls`, `read_matching`). Durable named subscriptions, projections and the stream
    list are HTTP features: those calls say so.
    """

    def __init__(self, url: str, service: str = "photon", **options: Any) -> None:
        self.client = AmqpClient(url, service=service, **options)

    def emit(
        self,
        events: Event | Sequence[Event],
        expected_version: Any,
        expected_versions: Mapping[str, Any] | None = None,
        condition: Any = None,
    ) -> Any:
        stored = self.client.emit(
            events, expected(expected_version), expected_versions=expected_versions, condition=condition
        )
        return stored[0] if isinstance(events, Mapping) else stored

    def replay(self, stream: str, params: dict[str, Any]) -> Iterator[ReplayItem]:
        return self.client.replay(stream, **replay_arguments(params))

    @property
    def group_calls(self) -> AmqpClient:
        """Where `PhotonClient` sends its consumer group calls over this transport."""
        return self.client

    @property
    def lifetime_calls(self) -> AmqpClient:
        """Where `PhotonClient` sends stream metadata, deletes, scavenging and redaction."""
        return self.client

    def read_matching(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.read_matching(body)

    def subscribe(self, name: str, params: dict[str, Any]) -> Iterator[ReplayItem]:
        raise NotImplementedError(HTTP_ONLY["subscribe"])

    def ack(self, name: str, order_id: int) -> dict[str, Any]:
        raise NotImplementedError(HTTP_ONLY["subscribe"])

    def streams(self) -> list[dict[str, Any]]:
        raise NotImplementedError(HTTP_ONLY["streams"])

    def close(self) -> None:
        self.client.close()
