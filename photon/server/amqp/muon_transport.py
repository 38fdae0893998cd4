"""Muon's AMQP transport and discovery, server side.

A Muon client opens a *transport channel* by sending a handshake to ``service.<name>``
(headers ``handshake=initiated``, ``protocol``, ``server_listen_q``, ``server_reply_q``). Photon
answers ``handshake=accepted`` on the reply queue, then reads the client's messages from the
listen queue and writes its own to the reply queue. A transport of protocol ``shared-channel``
(what the clients open) carries many logical channels, one per emit, replay or request, each
served by a protocol session (`muon_event`, `muon_stream`, `muon_rpc`).

Everything here runs in the link's thread (it owns the pika connection); sessions doing
blocking work (the store) do it elsewhere and hand their answers back through `Outlet.send`,
which is thread-safe. Keep-alives go out on idle transports every second; a transport that
heard nothing from its client for `IDLE_TIMEOUT` seconds, or whose listen queue is deleted,
is closed and its sessions stopped.

Discovery: Photon announces itself on the ``muon-broadcast`` exchange (routing key
``discovery``) every `ANNOUNCE_EVERY` seconds, and answers a client's ``discovery-request`` at
once with a service list, which spares the client its 5.5 s wait at start.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

import orjson

from photon.core.errors import ValidationError
from photon.server.amqp import muon_wire as wire
from photon.server.amqp.router import discovery_queue, muon_service_queue

if TYPE_CHECKING:
    from pika.channel import Channel
    from pika.spec import BasicProperties

    from photon.server.amqp.link import Link

log = logging.getLogger("photon.amqp.muon")

BROADCAST_EXCHANGE: Final = "muon-broadcast"
DISCOVERY_KEY: Final = "discovery"
DISCOVERY_REQUEST_KEY: Final = "discovery-request"
ANNOUNCE_EVERY: Final = 3.0
"""Seconds between announcements (clients forget a service not heard from for 5.5 s)."""
KEEP_ALIVE_EVERY: Final = 1.0
IDLE_TIMEOUT: Final = 10.0
"""A client pings every second while idle; this many seconds of silence close its transport."""
TICK: Final = 0.5
ANSWER_DELAYS: Final = (0.2, 0.6, 1.5)
"""Seconds after a discovery request at which Photon answers it."""
TAGS: Final = ("photon", "eventstore")
SERVER_HEADERS: Final = {wire.CONTENT_TYPE_HEADER: wire.JSON}


class Session(Protocol):
    """One logical channel's protocol, server side."""

    def receive(self, inner: dict[str, Any]) -> None:
        """A message from the client (called in the link's thread: must not block)."""

    def close(self, reason: str) -> None:
        """The channel is gone (client closed it, transport lost, Photon stopping)."""


SessionFactory = Callable[[str, "Outlet"], Session | None]
"""Builds the session for a protocol name, or None for a protocol Photon does not serve."""


class Outlet:
    """The way back to the client on one logical channel. Thread-safe."""

    def __init__(self, transport: Transport, channel_id: str | None, client: str | None) -> None:
        self.transport = transport
        self.channel_id = channel_id
        self.client = client
        self.closed = False

    def frame(self, inner: dict[str, Any]) -> bytes:
        if self.channel_id is None:
            return wire.direct_frame(inner)
        return wire.shared_frame(self.channel_id, inner, origin=self.transport.server.name, target=self.client)

    def message(
        self, protocol: str, step: str, content: Any, *, channel_op: str = wire.NORMAL, status: str | None = None
    ) -> dict[str, Any]:
        return wire.message(
            content,
            protocol=protocol,
            step=step,
            origin=self.transport.server.name,
            target=self.client,
            channel_op=channel_op,
            status=status,
        )

    def send(self, *inners: dict[str, Any]) -> bool:
        """Send messages on this channel, in order; False when the transport is gone."""
        if self.transport.closed:
            return False
        return self.transport.send([self.frame(inner) for inner in inners])

    def send_frames(self, bodies: list[bytes]) -> bool:
        if self.transport.closed:
            return False
        return self.transport.send(bodies)

    def finish(self) -> None:
        """Forget this logical channel on the server (its protocol is done)."""
        self.closed = True
        self.transport.forget(self.channel_id)


class Transport:
    """One client's transport channel: its queues, its logical channels, its liveness."""

    def __init__(self, server: MuonServer, listen: str, reply: str, protocol: str, generation: int) -> None:
        self.server = server
        self.listen = listen
        self.reply = reply
        self.protocol = protocol
        self.generation = generation
        self.sessions: dict[str | None, Session] = {}
        self.last_in = time.monotonic()
        self.last_out = 0.0
        self.closed = False
        self.lock = threading.Lock()

    def send(self, bodies: list[bytes]) -> bool:
        link = self.server.link
        if link is None:
            return False
        self.last_out = time.monotonic()
        generation, reply = self.generation, self.reply
        return link.call(lambda: link.publish_muon(generation, "", reply, bodies, SERVER_HEADERS))

    def forget(self, channel_id: str | None) -> None:
        with self.lock:
            self.sessions.pop(channel_id, None)

    def receive(self, body: bytes) -> None:
        self.last_in = time.monotonic()
        try:
            outer = wire.parse_body(body)
        except ValidationError as exc:
            log.warning("dropping a bad message on Muon transport %s: %s", self.listen, exc)
            return
        step = outer["step"]
        if step == wire.KEEP_ALIVE:
            return
        if self.protocol != wire.SHARED_CHANNEL:
            self._deliver(None, outer, str(outer.get("origin_service") or ""))
            return
        if outer.get("channel_op") == wire.CLOSED:
            # The client shut the whole transport channel down (it deletes its queues next).
            self.server.close_transport(self, "closed by the client")
            return
        try:
            frame = wire.open_frame(outer)
        except ValidationError as exc:
            log.warning("dropping a bad shared-channel frame on %s: %s", self.listen, exc)
            return
        self._deliver(frame.channel_id, frame.inner, str(outer.get("origin_service") or ""))

    def _deliver(self, channel_id: str | None, inner: dict[str, Any], client: str) -> None:
        with self.lock:
            session = self.sessions.get(channel_id)
        closing = inner.get("channel_op") == wire.CLOSED or inner.get("step") == wire.CHANNEL_SHUTDOWN
        if session is None:
            if closing:
                return  # a channel that is already finished here
            outlet = Outlet(self, channel_id, client or None)
            protocol = str(inner.get("protocol") or (self.protocol if channel_id is None else ""))
            session = self.server.sessions(protocol, outlet)
            if session is None:
                outlet.send(
                    outlet.message(
                        protocol or "unknown",
                        f"{protocol}.noprotocol",
                        {"status": "noprotocol", "message": f"Photon does not serve the Muon protocol {protocol!r}"},
                        channel_op=wire.CLOSED,
                        status="failure",
                    )
                )
                return
            with self.lock:
                self.sessions[channel_id] = session
        if closing and inner.get("step") == wire.CHANNEL_SHUTDOWN:
            self.forget(channel_id)
            session.close("closed by the client")
            return
        try:
            session.receive(inner)
        except Exception:
            log.exception("a Muon %s session failed", inner.get("protocol"))
        if closing:
            self.forget(channel_id)
            session.close("closed by the client")

    def close(self, reason: str) -> None:
        self.closed = True
        with self.lock:
            sessions = list(self.sessions.values())
            self.sessions.clear()
        for session in sessions:
            try:
                session.close(reason)
            except Exception:
                log.exception("closing a Muon session failed")


class MuonServer:
    """Photon on Muon: discovery announcements and every client's transport channels."""

    def __init__(self, name: str, url: str, sessions: SessionFactory) -> None:
        self.name = name
        self.url = url
        self.sessions = sessions
        self.instance = uuid.uuid4().hex[:12]
        self.link: Link | None = None
        self.generation = 0
        self.transports: dict[str, Transport] = {}
        self._last_announce = 0.0
        self._timer: Any = None

    @property
    def service_queue(self) -> str:
        return muon_service_queue(self.name)

    def descriptor(self) -> dict[str, Any]:
        """What Photon announces: Muon's service descriptor."""
        return {
            "identifier": self.name,
            "tags": list(TAGS),
            "codecs": [wire.JSON],
            "connectionUrls": [self.url],
        }

    # -- set-up on every (re)connect, in the link's thread ----------------------------------

    def attach(self, link: Link, generation: int, channel: Channel, done: Callable[[], None]) -> None:
        self.link = link
        self.generation = generation
        discovery = discovery_queue(self.name, self.instance)

        def declared_exchange(_frame: Any) -> None:
            channel.queue_declare(self.service_queue, durable=False, auto_delete=True, callback=declared_service)

        def declared_service(_frame: Any) -> None:
            channel.queue_declare(discovery, exclusive=True, auto_delete=True, callback=declared_discovery)

        def declared_discovery(_frame: Any) -> None:
            channel.queue_bind(discovery, BROADCAST_EXCHANGE, DISCOVERY_REQUEST_KEY, callback=bound)

        def bound(_frame: Any) -> None:
            link.consume_muon(discovery)
            link.consume_muon(self.service_queue, consuming)

        def consuming() -> None:
            log.info("Muon: serving as %r on %s", self.name, self.service_queue)
            done()
            self._announce(force=True)
            self._schedule()

        # Muon's clients declare the broadcast exchange transient and not auto-deleted: the same here.
        channel.exchange_declare(
            BROADCAST_EXCHANGE, "topic", durable=False, auto_delete=False, callback=declared_exchange
        )

    def detach(self, reason: str) -> None:
        """The connection is gone: every transport channel with it (clients open new ones)."""
        transports = list(self.transports.values())
        self.transports.clear()
        for transport in transports:
            transport.close(reason)

    def _schedule(self) -> None:
        link = self.link
        connection = link.connection if link is not None else None
        if connection is None or connection.is_closed:
            return
        generation = self.generation
        self._timer = connection.ioloop.call_later(TICK, lambda: self._tick(generation))

    def _tick(self, generation: int) -> None:
        link = self.link
        if link is None or not link.is_current(generation) or link.stopping:
            return
        try:
            self._announce(force=False)
            self._keep_alive()
        except Exception:
            log.exception("Muon keep-alive round failed")
        self._schedule()

    def _announce(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last_announce < ANNOUNCE_EVERY:
            return
        self._last_announce = now
        self._broadcast(DISCOVERY_KEY, self.descriptor())

    def _broadcast(self, key: str, content: Any) -> None:
        link = self.link
        if link is None:
            return
        link.publish_muon(
            self.generation, BROADCAST_EXCHANGE, key, [orjson.dumps(content)], {"Content-Type": wire.JSON}
        )

    def _keep_alive(self) -> None:
        now = time.monotonic()
        ping: bytes | None = None
        for transport in list(self.transports.values()):
            if now - transport.last_in > IDLE_TIMEOUT:
                self.close_transport(transport, "the client went silent")
                continue
            if now - transport.last_out >= KEEP_ALIVE_EVERY:
                ping = ping or wire.keep_alive(self.name)
                transport.last_out = now
                assert self.link is not None
                self.link.publish_muon(self.generation, "", transport.reply, [ping], SERVER_HEADERS)

    # -- messages (the router sends them here) -----------------------------------------------

    def on_discovery(self, body: bytes) -> None:
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if isinstance(request, dict) and request.get("name") == "service-list":
            return  # another service's answer
        # The asking client binds its own queue for the answer about when it asks: answer a
        # little later, and once more, so that one answer finds the queue in place.
        link = self.link
        connection = link.connection if link is not None else None
        if connection is None:
            return
        answer = {"name": "service-list", "list": [self.descriptor()]}
        for delay in ANSWER_DELAYS:
            connection.ioloop.call_later(delay, lambda: self._broadcast(DISCOVERY_REQUEST_KEY, answer))

    def on_handshake(self, properties: BasicProperties, body: bytes) -> None:
        headers: Mapping[str, Any] = properties.headers or {}

        def text(name: str) -> str:
            value = headers.get(name)
            return value.decode() if isinstance(value, bytes) else str(value or "")

        listen, reply, protocol = text(wire.LISTEN_QUEUE), text(wire.REPLY_QUEUE), text(wire.PROTOCOL)
        if text(wire.HANDSHAKE) != wire.HANDSHAKE_INITIATED or not listen or not reply or not protocol:
            log.warning(
                "ignoring a message on %s that is not a Muon handshake (headers %r)", self.service_queue, headers
            )
            return
        link = self.link
        if link is None or link.muon_channel is None:
            return
        old = self.transports.pop(listen, None)
        if old is not None:
            old.close("handshake repeated")
        transport = Transport(self, listen, reply, protocol, self.generation)
        self.transports[listen] = transport
        channel = link.muon_channel

        def declared(_frame: Any) -> None:
            link.consume_muon(listen, accept)

        def accept() -> None:
            link.publish_muon(self.generation, "", reply, [b"{}"], {wire.HANDSHAKE: wire.HANDSHAKE_ACCEPTED})
            transport.last_out = time.monotonic()
            log.debug("Muon transport %s (%s) open", listen, protocol)

        # The same flags as the client's own declaration of this queue (a mismatch is an error).
        channel.queue_declare(listen, durable=False, auto_delete=True, callback=declared)

    def on_transport(self, queue: str, body: bytes) -> None:
        transport = self.transports.get(queue)
        if transport is not None:
            transport.receive(body)

    def on_queue_gone(self, queue: str) -> None:
        transport = self.transports.get(queue)
        if transport is not None:
            self.close_transport(transport, "the client deleted its queue")

    def close_transport(self, transport: Transport, reason: str) -> None:
        if self.transports.get(transport.listen) is transport:
            del self.transports[transport.listen]
        if self.link is not None:
            self.link.stop_consuming_queue(transport.listen)
        log.debug("Muon transport %s closed: %s", transport.listen, reason)
        transport.close(reason)

    def stats(self) -> dict[str, int]:
        return {
            "transports": len(self.transports),
            "channels": sum(len(t.sessions) for t in list(self.transports.values())),
        }
