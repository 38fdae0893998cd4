"""The AMQP link: one thread owning one pika connection, reconnecting by itself.

pika's connections are not thread-safe, so everything that touches the connection runs in
this thread (a `SelectConnection` I/O loop); other threads hand it work with `call()`, which
goes through the loop's thread-safe callback queue. Each successful connection gets a new
`generation` number: work handed in for an older connection is dropped, and whoever handed it
in (an emit acknowledgement, a live batch, a replay batch) notices the generation change and
recovers on its own terms (the broker redelivers unacknowledged commands; the live publisher
resumes from the last confirmed event).

Long because the connection's life (connect, declare, set up the Muon channel, become ready,
consume, lose the connection, back off, reconnect) is one state machine whose steps depend on
each other's order: a command read before the link is ready on its new generation is dropped,
so the steps are kept where they can be read in sequence.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import pika
import pika.exceptions
from pika.adapters.select_connection import SelectConnection
from pika.channel import Channel
from pika.spec import Basic, BasicProperties

from photon.core.events import RecordedEvent
from photon.server.amqp.protocol import routing_key
from photon.server.amqp.router import Route, route
from photon.wire.amqp import CONTENT_TYPE, EVENT, Names, redact

log = logging.getLogger("photon.amqp")

PERSISTENT = 2
RECONNECT_FIRST_DELAY = 0.25
RECONNECT_MAX_DELAY = 5.0
MAX_LIVE_IN_FLIGHT = 20_000
"""Live events published but not yet confirmed by the broker (bounds memory and redelivery)."""


def connection_parameters(url: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    # A dead broker should be noticed in seconds, not after the defaults' minutes.
    if "socket_timeout" not in url:
        params.socket_timeout = 5
    if "connection_attempts" not in url:
        params.connection_attempts = 1
    if "blocked_connection_timeout" not in url:
        params.blocked_connection_timeout = 60
    return params


def declare_topology(params: pika.URLParameters, names: Names) -> None:
    """Create (or check) the service's exchanges and queues. Idempotent; blocking."""
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.exchange_declare(names.events, "topic", durable=True)
        channel.exchange_declare(names.projections, "topic", durable=True)
        channel.exchange_declare(names.dead_letters, "fanout", durable=True)
        channel.queue_declare(names.dead_letter_queue, durable=True)
        channel.queue_bind(names.dead_letter_queue, names.dead_letters)
        channel.queue_declare(names.commands, durable=True, arguments={"x-dead-letter-exchange": names.dead_letters})
    finally:
        if connection.is_open:
            connection.close()


class LinkHandler(Protocol):
    """What the service does with the link's news. Called in the link's thread: do not block."""

    def on_ready(self, generation: int) -> None: ...

    def on_lost(self, generation: int) -> None: ...

    def on_command(self, generation: int, delivery_tag: int, properties: BasicProperties, body: bytes) -> None: ...

    def on_return(self, routing_key: str, properties: BasicProperties) -> None: ...

    def on_muon_channel(self, generation: int, channel: Channel, done: Callable[[], None]) -> None:
        """Set up Muon's queues on the connection's Muon channel, then call `done`."""
        ...

    def on_muon(self, generation: int, route: Route, queue: str, properties: BasicProperties, body: bytes) -> None: ...

    def on_consumer_cancelled(self, generation: int, queue: str) -> None: ...


class Link(threading.Thread):
    def __init__(self, url: str, names: Names, handler: LinkHandler, *, confirmed: int, prefetch: int = 256) -> None:
        super().__init__(name="photon-amqp-link", daemon=True)
        self.url = url
        self.params = connection_parameters(url)
        self.names = names
        self.handler = handler
        self.prefetch = prefetch
        self.generation = 0
        self.ready = False
        self.connects = 0
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._ready_changed = threading.Condition()
        self._connection: SelectConnection | None = None
        self._commands: Channel | None = None
        self._live: Channel | None = None
        self._out: Channel | None = None
        self._muon: Channel | None = None
        self._consumer_tag: str | None = None
        self._consumers: dict[str, str] = {}  # consumer tag -> queue, for the router
        # Live publishing with confirms: (delivery tag, order-id) in publish order.
        self.confirmed = confirmed
        """Order-id up to which every live event is confirmed by the broker."""
        self._pending: deque[tuple[int, int]] = deque()
        self._acked: set[int] = set()
        self._next_tag = 0
        self._queued = 0  # live events handed in but not yet published
        self.published = 0
        self._capacity = threading.Condition()

    # -- the thread ------------------------------------------------------------------------

    def run(self) -> None:
        delay = RECONNECT_FIRST_DELAY
        while not self._stopping.is_set():
            try:
                declare_topology(self.params, self.names)
            except Exception as exc:
                reason = str(exc) or type(exc).__name__
                log.warning("AMQP broker %s unreachable (%s); retrying in %.2fs", redact(self.url), reason, delay)
                self._wake.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
                continue
            connects = self.connects
            connection = SelectConnection(
                self.params,
                on_open_callback=self._on_open,
                on_open_error_callback=self._on_open_error,
                on_close_callback=self._on_closed,
            )
            self._connection = connection
            try:
                connection.ioloop.start()
            finally:
                self._set_ready(False)
                connection.ioloop.close()
            if self.connects != connects:
                delay = RECONNECT_FIRST_DELAY
            if not self._stopping.is_set():
                log.warning("AMQP connection to %s lost; reconnecting in %.2fs", redact(self.url), delay)
                self._wake.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
        self._connection = None

    def call(self, callback: Callable[[], None]) -> bool:
        """Run `callback` in the link's thread; False when there is no connection to run it on.

        True does not promise it runs: a connection that drops first discards it.
        """
        connection = self._connection
        if connection is None or connection.is_closed:
            return False
        try:
            connection.ioloop.add_callback_threadsafe(callback)
        except Exception:
            return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        self.call(self._close)
        self.join(timeout)
        with self._capacity:
            self._capacity.notify_all()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wait_ready(self, timeout: float) -> int | None:
        """The current generation once connected, or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._ready_changed:
            while not self.ready:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping.is_set():
                    return None
                self._ready_changed.wait(remaining)
            return self.generation

    def is_current(self, generation: int) -> bool:
        return self.ready and self.generation == generation

    # -- connection set-up (all in the link's thread) ----------------------------------------

    def _set_ready(self, ready: bool) -> None:
        with self._ready_changed:
            was = self.ready
            self.ready = ready
            self._ready_changed.notify_all()
        with self._capacity:
            self._capacity.notify_all()
        if ready:
            self.handler.on_ready(self.generation)
        elif was:
            self.handler.on_lost(self.generation)

    def _on_open(self, connection: SelectConnection) -> None:
        # A new connection is a new generation from its first frame on: every delivery it
        # brings is stamped with it, so its acknowledgement goes back on this connection.
        with self._ready_changed:
            self.generation += 1
        connection.channel(on_open_callback=self._on_commands_open)

    def _on_open_error(self, connection: SelectConnection, error: BaseException | str) -> None:
        log.warning("cannot open an AMQP connection to %s: %s", redact(self.url), error)
        connection.ioloop.stop()

    def _on_closed(self, connection: SelectConnection, reason: BaseException) -> None:
        if not self._stopping.is_set():
            log.warning("AMQP connection closed: %s", reason)
        self._commands = self._live = self._out = self._muon = None
        self._consumers.clear()
        connection.ioloop.stop()

    def _watch(self, channel: Channel) -> None:
        channel.add_on_close_callback(self._on_channel_closed)

    def _on_channel_closed(self, channel: Channel, reason: BaseException) -> None:
        # A channel of ours closed under us (a broker-side error): start afresh on a new connection.
        connection = self._connection
        if connection is not None and connection.is_open and not self._stopping.is_set():
            log.warning("AMQP channel %s closed: %s; reconnecting", channel.channel_number, reason)
            connection.close()

    def _on_commands_open(self, channel: Channel) -> None:
        self._commands = channel
        self._watch(channel)
        assert self._connection is not None
        self._connection.channel(on_open_callback=self._on_live_open)

    def _on_live_open(self, channel: Channel) -> None:
        self._live = channel
        self._watch(channel)
        assert self._connection is not None
        self._connection.channel(on_open_callback=self._on_out_open)

    def _on_out_open(self, channel: Channel) -> None:
        self._out = channel
        self._watch(channel)
        channel.add_on_return_callback(self._on_return)
        assert self._connection is not None
        self._connection.channel(on_open_callback=self._on_muon_open)

    def _on_muon_open(self, channel: Channel) -> None:
        self._muon = channel
        self._watch(channel)
        channel.add_on_cancel_callback(self._on_cancelled)
        assert self._live is not None
        self._pending.clear()
        self._acked.clear()
        self._next_tag = 0
        self._live.confirm_delivery(self._on_confirm, callback=self._on_confirm_mode)

    def _on_confirm_mode(self, _frame: Any) -> None:
        assert self._commands is not None
        self._commands.basic_qos(prefetch_count=self.prefetch, callback=self._on_qos)

    def _on_qos(self, _frame: Any) -> None:
        assert self._muon is not None
        self.handler.on_muon_channel(self.generation, self._muon, self._on_muon_ready)

    def _on_muon_ready(self) -> None:
        # Ready before the command queue is consumed: a command the broker delivers at once
        # (those sent while Photon was away wait in the queue) must find the link current,
        # or its reply and acknowledgement would be dropped and it would hang unacknowledged
        # on this connection for as long as it lasts.
        self.connects += 1
        log.info("AMQP connected to %s (command queue %s)", redact(self.url), self.names.commands)
        self._set_ready(True)
        commands = self._commands
        if commands is None or not commands.is_open:
            return
        queue = self.names.commands
        self._consumer_tag = commands.basic_consume(
            queue, lambda _c, m, p, b: self._dispatch(queue, m, p, b), callback=self._on_photon_consuming
        )

    def _on_photon_consuming(self, frame: Any) -> None:
        self._consumers[frame.method.consumer_tag] = self.names.commands

    def _dispatch(self, queue: str, method: Basic.Deliver, properties: BasicProperties, body: bytes) -> None:
        kind = route(queue, self.names)
        if kind is Route.PHOTON:
            self.handler.on_command(self.generation, method.delivery_tag, properties, body)
        else:
            self.handler.on_muon(self.generation, kind, queue, properties, body)

    def consume_muon(self, queue: str, on_consuming: Callable[[], None] | None = None) -> None:
        """Consume a Muon queue (without acknowledgements: Muon's queues are transient)."""
        channel = self._muon
        if channel is None or not channel.is_open:
            return

        def consuming(frame: Any) -> None:
            self._consumers[frame.method.consumer_tag] = queue
            if on_consuming is not None:
                on_consuming()

        channel.basic_consume(
            queue, lambda _c, m, p, b: self._dispatch(queue, m, p, b), auto_ack=True, callback=consuming
        )

    def stop_consuming_queue(self, queue: str) -> None:
        channel = self._muon
        for tag, name in list(self._consumers.items()):
            if name == queue:
                del self._consumers[tag]
                if channel is not None and channel.is_open:
                    channel.basic_cancel(tag)

    def _on_cancelled(self, frame: Any) -> None:
        # The broker cancels a consumer whose queue was deleted (a Muon client closing its channel).
        queue = self._consumers.pop(frame.method.consumer_tag, None)
        if queue is not None:
            self.handler.on_consumer_cancelled(self.generation, queue)

    def publish_muon(
        self, generation: int, exchange: str, key: str, bodies: Sequence[bytes], headers: dict[str, Any]
    ) -> None:
        """Publish Muon messages (in the link's thread); dropped when the connection changed."""
        if not self.is_current(generation) or self._muon is None:
            return
        channel = self._muon
        properties = BasicProperties(headers=headers, content_type=CONTENT_TYPE)
        for body in bodies:
            channel.basic_publish(exchange, key, body, properties)

    @property
    def connection(self) -> SelectConnection | None:
        return self._connection

    @property
    def muon_channel(self) -> Channel | None:
        return self._muon

    def _on_return(self, _channel: Channel, method: Basic.Return, properties: BasicProperties, _body: bytes) -> None:
        self.handler.on_return(method.routing_key, properties)

    def _close(self) -> None:
        connection = self._connection
        if connection is not None and connection.is_open:
            connection.close()

    # -- work handed in by other threads (run in the link's thread) --------------------------

    def stop_consuming(self) -> None:
        if self._commands is not None and self._commands.is_open and self._consumer_tag:
            self._commands.basic_cancel(self._consumer_tag)
            self._consumer_tag = None

    def finish_command(
        self,
        generation: int,
        delivery_tag: int,
        reply_to: str | None,
        correlation_id: str | None,
        reply_type: str,
        body: bytes,
        ack: bool,
    ) -> None:
        """Send a command's reply, then acknowledge (or reject) the command."""
        if not self.is_current(generation) or self._commands is None or self._out is None:
            return  # the broker redelivers the command on the new connection
        if reply_to:
            self._out.basic_publish(
                "",
                reply_to,
                body,
                BasicProperties(type=reply_type, correlation_id=correlation_id, content_type=CONTENT_TYPE),
            )
        if ack:
            self._commands.basic_ack(delivery_tag)
        else:
            self._commands.basic_reject(delivery_tag, requeue=False)

    def publish_to(
        self,
        generation: int,
        queue: str,
        messages: Sequence[tuple[str, bytes]],
        correlation_id: str | None,
        done: threading.Event,
    ) -> None:
        """Publish (type, body) messages to a queue through the default exchange (mandatory)."""
        try:
            if not self.is_current(generation) or self._out is None:
                return
            out = self._out
            for message_type, body in messages:
                out.basic_publish(
                    "",
                    queue,
                    body,
                    BasicProperties(type=message_type, correlation_id=correlation_id, content_type=CONTENT_TYPE),
                    mandatory=True,
                )
        finally:
            done.set()

    def publish_each(
        self,
        generation: int,
        queue: str,
        messages: Sequence[tuple[BasicProperties, bytes]],
        done: threading.Event,
    ) -> None:
        """Publish messages with their own properties to a queue (mandatory), like `publish_to`."""
        try:
            if not self.is_current(generation) or self._out is None:
                return
            out = self._out
            for properties, body in messages:
                out.basic_publish("", queue, body, properties, mandatory=True)
        finally:
            done.set()

    def publish_projection(self, name: str, body: bytes) -> None:
        if not self.ready or self._out is None:
            log.debug("projection update of %s dropped: no AMQP connection", name)
            return
        self._out.basic_publish(
            self.names.projections,
            routing_key(name),
            body,
            BasicProperties(
                type="projection",
                content_type=CONTENT_TYPE,
                delivery_mode=PERSISTENT,
                headers={"projection-name": name},
            ),
        )

    def check_queue(self, queue: str, on_missing: Callable[[], None]) -> None:
        """Find out on a throw-away channel whether a queue still exists."""
        connection = self._connection
        if connection is None or not connection.is_open:
            return

        def closed(channel: Channel, reason: BaseException) -> None:
            _PROBES.discard(channel)
            if isinstance(reason, pika.exceptions.ChannelClosedByBroker) and reason.reply_code == 404:
                on_missing()

        def opened(channel: Channel) -> None:
            _PROBES.add(channel)
            channel.add_on_close_callback(closed)
            channel.queue_declare(queue, passive=True, callback=lambda _frame: channel.close())

        connection.channel(on_open_callback=opened)

    # -- live events with publisher confirms ---------------------------------------------

    def hand_in_live(self, generation: int, events: list[RecordedEvent], timeout: float = 1.0) -> bool:
        """From the live publisher's thread: queue events for publishing, waiting for room.

        False when the connection changed (or is closing); the caller then starts again
        from `confirmed`.
        """
        with self._capacity:
            while len(self._pending) + self._queued >= MAX_LIVE_IN_FLIGHT:
                if not self.is_current(generation) or self._stopping.is_set():
                    return False
                self._capacity.wait(timeout)
            if not self.is_current(generation):
                return False
            self._queued += len(events)
        if not self.call(lambda: self._publish_live(generation, events)):
            with self._capacity:
                self._queued -= len(events)
            return False
        return True

    def _publish_live(self, generation: int, events: list[RecordedEvent]) -> None:
        with self._capacity:
            self._queued -= len(events)
        if not self.is_current(generation) or self._live is None:
            return
        live = self._live
        exchange = self.names.events
        pending = self._pending
        for event in events:
            properties = BasicProperties(
                type=EVENT,
                content_type=CONTENT_TYPE,
                delivery_mode=PERSISTENT,
                message_id=event.event_id,
                timestamp=event.event_time // 1000,
                headers={
                    "order-id": event.order_id,
                    "stream-name": event.stream_name,
                    "stream-version": event.stream_version,
                    "event-type": event.event_type,
                },
            )
            live.basic_publish(exchange, routing_key(event.stream_name), event.data, properties)
            self._next_tag += 1
            pending.append((self._next_tag, event.order_id))
        self.published += len(events)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag: int = method.delivery_tag
        if isinstance(method, Basic.Nack):
            # The broker could not take a message (an internal error on its side): resend
            # everything unconfirmed on a new connection.
            log.error("AMQP broker refused live event(s) up to delivery tag %d; reconnecting", tag)
            self._close()
            return
        pending = self._pending
        confirmed = self.confirmed
        if method.multiple:
            while pending and pending[0][0] <= tag:
                confirmed = pending.popleft()[1]
        else:
            self._acked.add(tag)
        acked = self._acked
        while pending and pending[0][0] in acked:
            acked.discard(pending[0][0])
            confirmed = pending.popleft()[1]
        self.confirmed = confirmed
        with self._capacity:
            self._capacity.notify_all()


_PROBES: weakref.WeakSet[Channel] = weakref.WeakSet()
"""The channels `check_queue` probes a queue on: the broker closes each (404: the queue is gone;
405: it is a client's exclusive queue, so it is there), the answer and not a fault."""


class _ProbeCloseFilter(logging.Filter):
    """Keeps pika's warning about a channel the broker closed out of the log for probe channels: a
    member or replay idle for a while would log one every few seconds."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and len(args) == 3 and args[2] in _PROBES)


logging.getLogger("pika.channel").addFilter(_ProbeCloseFilter())


@contextlib.contextmanager
def pika_quiet() -> Iterator[None]:
    """Pika's own log lines while the service connects at start: a failed attempt logs seven
    ERROR lines and a traceback, each saying what Photon's one error (or retry warning) says."""
    pika_log = logging.getLogger("pika")
    level = pika_log.level
    pika_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        pika_log.setLevel(level)


def connection_failure(exc: BaseException) -> str:
    """Why a connection failed: pika's AMQPConnectionError says it only in the repr of its args (their
    str, and its own, are empty): "AMQPConnectorSocketConnectError: ConnectionRefusedError(111, ...)"."""
    return str(exc) or ", ".join(str(arg) or repr(arg) for arg in exc.args) or type(exc).__name__
