"""`AmqpService`: Photon on RabbitMQ (emit, live events, replay, projection updates).

Built like every service of the server, ``AmqpService(store, config)`` with ``await start()``
and ``await stop()``. Without `muon.url` it does nothing at all. See docs/amqp.md for the
queues, exchanges and message formats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from photon.core.errors import (
    AppendConditionFailed,
    ConfigError,
    NotFound,
    PhotonError,
    StreamDeleted,
    ValidationError,
    VersionConflict,
)
from photon.core.store import EventStore
from photon.server.amqp.lifetime_messages import answer as lifetime_answer
from photon.server.amqp.protocol import join_events, parse_emit, parse_replay
from photon.wire.amqp import (
    CANCEL,
    DONE,
    EMIT,
    EMITTED,
    ERROR,
    REPLAY,
    REQUEST_TYPES,
    BrokerUnavailable,
    Names,
    dumps,
    error_body,
    redact,
)
from photon.wire.amqp_groups import GROUP_REQUEST_TYPES
from photon.wire.amqp_lifetime import LIFETIME_CALLS

if TYPE_CHECKING:
    from pika.channel import Channel
    from pika.spec import BasicProperties

    from photon.projections.manager import ProjectionManager
    from photon.server.amqp.groups import AmqpGroups
    from photon.server.amqp.link import Link
    from photon.server.amqp.live import LivePublisher
    from photon.server.amqp.muon_context import MuonContext
    from photon.server.amqp.muon_transport import MuonServer
    from photon.server.amqp.replay import ReplayWorker
    from photon.server.amqp.router import Route

log = logging.getLogger("photon.amqp")

EMIT_WORKERS = 32
"""Emits handled at once; the store's group commit writes concurrent emits together."""
MAX_REPLAYS = 256
READY_TIMEOUT = 30.0
DRAIN_TIMEOUT = 10.0

ProjectionUpdate = tuple[str, Any] | Mapping[str, Any]


def _check_url(url: str) -> None:
    if not url.startswith(("amqp://", "amqps://")):
        raise ConfigError(f"bad value for muon.url: expected amqp://user:pass@host:port/vhost, got {url!r}")


class AmqpService:
    """Photon's AMQP front end. Thread-safe where it says so; start and stop from one event loop."""

    def __init__(
        self,
        store: EventStore,
        config: Mapping[str, Any],
        *,
        projection_updates: AsyncIterator[ProjectionUpdate] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.url: str | None = config.get("muon.url") or None
        self.wait: int = int(config.get("muon.wait") or 0)
        self.names = Names(str(config.get("microservice.name") or "photon"))
        self.enabled = self.url is not None
        if self.url is not None:
            _check_url(self.url)
        self._projection_sources: list[AsyncIterator[ProjectionUpdate]] = []
        if projection_updates is not None:
            self._projection_sources.append(projection_updates)
        self._tasks: list[asyncio.Task[None]] = []
        self._link: Link | None = None
        self._live: LivePublisher | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._replays: dict[tuple[str, str | None], ReplayWorker] = {}
        self._replays_lock = threading.Lock()
        self._in_flight = 0
        self._in_flight_lock = threading.Condition()
        self._accepting = False
        self.emitted = 0
        self._muon: MuonServer | None = None
        self._muon_context: MuonContext | None = None
        self._projections: ProjectionManager | None = None
        self._rest_url: Callable[[], str] | None = None
        self._groups: AmqpGroups | None = None

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to the broker (waiting up to `muon.wait` seconds for it) and start serving.

        Raises `BrokerUnavailable` when the broker cannot be reached in time.
        """
        if not self.enabled:
            log.debug("muon.url is not set: AMQP is off")
            return
        from photon.server.amqp.muon_context import MuonContext
        from photon.server.amqp.muon_transport import MuonServer

        assert self.url is not None
        self._muon_context = MuonContext(
            self.store, self.config, asyncio.get_running_loop(), self._projections, self._rest_url
        )
        self._muon = MuonServer(self.names.service, self.url, self._muon_context.session)
        await asyncio.to_thread(self._start_threads)
        for source in self._projection_sources:
            self._tasks.append(asyncio.create_task(self._forward_projections(source)))

    def _start_threads(self) -> None:
        try:
            import pika
        except ImportError:
            raise ConfigError(
                "muon.url is set but pika is not installed: pip install 'photon-eventstore[amqp]'"
            ) from None
        from photon.server.amqp.groups import AmqpGroups
        from photon.server.amqp.link import (
            Link,
            connection_failure,
            connection_parameters,
            declare_topology,
            pika_quiet,
        )
        from photon.server.amqp.live import LivePublisher, initial_position

        assert self.url is not None
        params = connection_parameters(self.url)
        deadline = time.monotonic() + self.wait
        delay = 0.25
        while True:
            try:
                with pika_quiet():
                    declare_topology(params, self.names)
                break
            except Exception as exc:
                reason = connection_failure(exc)
                refused = isinstance(exc, pika.exceptions.ProbableAuthenticationError)
                if refused or time.monotonic() + delay > deadline:
                    waited = f" after waiting {self.wait}s" if self.wait and not refused else ""
                    if refused:
                        hint = " (check the user and password in muon.url)"
                    else:
                        hint = "" if self.wait else " (set muon.wait to keep retrying at start)"
                    raise BrokerUnavailable(
                        f"cannot connect to the AMQP broker at muon.url={redact(self.url)}{waited}: {reason}{hint}"
                    ) from None
                log.warning("AMQP broker %s not reachable yet (%s); retrying in %.2fs", redact(self.url), reason, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

        confirmed = initial_position(self.store, self.names.checkpoint)
        self._pool = ThreadPoolExecutor(EMIT_WORKERS, thread_name_prefix="photon-amqp-emit")
        self._groups = AmqpGroups(self.store)
        self._accepting = True
        link = Link(self.url, self.names, self, confirmed=confirmed)
        self._link = link
        link.start()
        if link.wait_ready(READY_TIMEOUT) is None:
            link.stop()
            raise BrokerUnavailable(f"the AMQP broker at {redact(self.url)} did not accept the service in time")
        self._live = LivePublisher(self.store, link, self.names.checkpoint)
        self._live.start()

    async def stop(self) -> None:
        """Stop taking commands, finish the ones in progress, publish what is stored, disconnect."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._link is not None:
            await asyncio.to_thread(self._stop_threads)

    def _stop_threads(self) -> None:
        link = self._link
        assert link is not None
        self._accepting = False
        link.call(link.stop_consuming)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        with self._in_flight_lock:
            while self._in_flight and time.monotonic() < deadline:
                self._in_flight_lock.wait(0.1)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        # Let the live publisher get what is stored out and confirmed, then save its position.
        last = self.store.last_order_id() if not self.store.closed else 0
        while link.ready and link.confirmed < last and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._replays_lock:
            replays = list(self._replays.values())
        for replay in replays:
            replay.cancel("service stopping")
        for replay in replays:
            replay.join(5)
        if self._groups is not None:
            self._groups.stop()
        if self._live is not None:
            self._live.stop()
        if self._muon is not None:
            muon = self._muon
            link.call(lambda: muon.detach("Photon stopping"))
        link.stop()
        self._link = None
        self._live = None

    # -- state, for metrics and tests ----------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.ready

    @property
    def published(self) -> int:
        """Order-id up to which the broker confirmed the live events."""
        return self._link.confirmed if self._link is not None else 0

    def stats(self) -> dict[str, Any]:
        link = self._link
        return {
            "connected": self.connected,
            "connects": link.connects if link else 0,
            "emitted": self.emitted,
            "live-confirmed-order-id": self.published,
            "replays": len(self._replays),
            "group-members": self._groups.count if self._groups is not None else 0,
            "muon": self._muon.stats() if self._muon is not None else {},
        }

    def attach_rest_url(self, url: Callable[[], str]) -> None:
        """Where the HTTP API listens (Muon's rpc endpoint `rest-url` answers it)."""
        self._rest_url = url
        if self._muon_context is not None:
            self._muon_context.rest_url = url

    def attach_projections(self, manager: ProjectionManager) -> None:
        """The projection engine Muon's rpc endpoints and projection streams answer from."""
        self._projections = manager
        if self._muon_context is not None:
            self._muon_context.projections = manager

    # -- projection updates -------------------------------------------------------------------

    def publish_projection_update(self, name: str, state: Any) -> bool:
        """Publish a projection's new state on ``<service>.projections``, routed by its name.

        Thread-safe. Best effort: with no connection the update is dropped (the next update
        carries the whole state again). Returns whether it was handed to the connection.
        """
        link = self._link
        if link is None or not link.ready:
            return False
        body = dumps(state)
        return link.call(lambda: link.publish_projection(name, body))

    def add_projection_source(self, source: AsyncIterator[ProjectionUpdate]) -> None:
        """Publish every update an async iterator yields: ``(name, state)`` pairs or dicts
        with a `projection-name`. Call before `start()`, or after it from the event loop."""
        if self._link is not None:
            self._tasks.append(asyncio.get_running_loop().create_task(self._forward_projections(source)))
        else:
            self._projection_sources.append(source)

    async def _forward_projections(self, source: AsyncIterator[ProjectionUpdate]) -> None:
        async for update in source:
            if isinstance(update, tuple):
                name, state = update
            else:
                name, state = str(update.get("projection-name")), update
            try:
                self.publish_projection_update(name, state)
            except Exception:
                log.exception("cannot publish the update of projection %s", name)

    # -- the link's news (called in the link's thread: never block here) ---------------------

    def on_ready(self, generation: int) -> None:
        pass

    def on_muon_channel(self, generation: int, channel: Channel, done: Callable[[], None]) -> None:
        assert self._muon is not None and self._link is not None
        self._muon.attach(self._link, generation, channel, done)

    def on_muon(self, generation: int, route: Route, queue: str, properties: BasicProperties, body: bytes) -> None:
        from photon.server.amqp.router import Route

        muon = self._muon
        if muon is None:
            return
        if route is Route.MUON_TRANSPORT:
            muon.on_transport(queue, body)
        elif route is Route.MUON_HANDSHAKE:
            muon.on_handshake(properties, body)
        elif route is Route.MUON_DISCOVERY:
            muon.on_discovery(body)

    def on_consumer_cancelled(self, generation: int, queue: str) -> None:
        if self._muon is not None:
            self._muon.on_queue_gone(queue)

    def on_lost(self, generation: int) -> None:
        if self._muon is not None:
            self._muon.detach("connection lost")
        with self._replays_lock:
            replays = [r for r in self._replays.values() if r.generation == generation]
        for replay in replays:
            replay.cancel("connection lost")
        if self._groups is not None:
            self._groups.on_lost(generation)

    def on_return(self, routing_key: str, properties: BasicProperties) -> None:
        with self._replays_lock:
            replay = self._replays.get((routing_key, properties.correlation_id))
        if replay is not None:
            replay.cancel("queue gone")
        if self._groups is not None:
            self._groups.on_return(routing_key, properties.correlation_id)

    def on_command(self, generation: int, delivery_tag: int, properties: BasicProperties, body: bytes) -> None:
        link = self._link
        pool = self._pool
        if link is None or pool is None:
            return
        kind = properties.type or EMIT
        if kind == EMIT:
            with self._in_flight_lock:
                self._in_flight += 1
            try:
                pool.submit(self._emit, generation, delivery_tag, properties, body)
            except RuntimeError:  # the pool is shutting down: the broker redelivers later
                self._emit_done()
            return
        if kind == REPLAY:
            self._start_replay(generation, delivery_tag, properties, body)
            return
        if kind == CANCEL:
            with self._replays_lock:
                replay = self._replays.get((properties.reply_to or "", properties.correlation_id))
            if replay is not None:
                replay.cancel("cancelled")
            elif self._groups is not None:
                self._groups.cancel(properties.reply_to or "", properties.correlation_id)
            link.finish_command(generation, delivery_tag, None, None, "", b"", ack=True)
            return
        if kind in LIFETIME_CALLS:
            with contextlib.suppress(RuntimeError):  # shutting down: the broker redelivers later
                pool.submit(self._lifetime_request, kind, generation, delivery_tag, properties, body)
            return
        if self._groups is not None and self._groups.handles(kind):
            self._groups.on_command(kind, link, pool, generation, delivery_tag, properties, body)
            return
        known = ", ".join(dict.fromkeys((*REQUEST_TYPES, *LIFETIME_CALLS, *GROUP_REQUEST_TYPES)))
        error = ValidationError(f"unknown message type {kind!r}; expected one of {known}", "type")
        self._reply_and_reject(generation, delivery_tag, properties, error)

    def _lifetime_request(
        self, kind: str, generation: int, delivery_tag: int, properties: BasicProperties, body: bytes
    ) -> None:
        """Stream metadata, deletes, scavenging, redaction and reads by query, in the worker pool;
        the answer as HTTP gives it (`lifetime_messages`)."""
        link = self._link
        if link is None:
            return
        ack = True
        try:
            reply_type, reply = DONE, lifetime_answer(self.store, kind, body)
        except (NotFound, StreamDeleted) as exc:  # well-formed, refused: nothing to dead-letter
            reply_type, reply = ERROR, error_body(exc)
        except Exception as exc:
            reply_type, reply, ack = ERROR, error_body(exc), False
        reply_to, correlation_id = properties.reply_to, properties.correlation_id
        link.call(
            lambda: link.finish_command(generation, delivery_tag, reply_to, correlation_id, reply_type, reply, ack=ack)
        )

    def _reply_and_reject(
        self, generation: int, delivery_tag: int, properties: BasicProperties, error: BaseException
    ) -> None:
        assert self._link is not None
        reply_to, correlation_id = properties.reply_to, properties.correlation_id
        reply = error_body(error)
        self._link.finish_command(generation, delivery_tag, reply_to, correlation_id, ERROR, reply, ack=False)

    # -- emit (in the worker pool) ------------------------------------------------------------

    def _emit(self, generation: int, delivery_tag: int, properties: BasicProperties, body: bytes) -> None:
        try:
            link = self._link
            if link is None:
                return
            ack = True
            try:
                request = parse_emit(body, properties.headers, properties.message_id)
                stored = self.store.append_request(request.events, request.options)
                reply_type, reply = EMITTED, join_events([event.data for event in stored])
                self.emitted += len(stored)
            except (VersionConflict, AppendConditionFailed) as exc:
                # A well-formed command answered with a refusal: nothing to dead-letter.
                reply_type, reply = ERROR, error_body(exc)
            except PhotonError as exc:
                reply_type, reply, ack = ERROR, error_body(exc), False
            except Exception as exc:
                log.exception("emit over AMQP failed")
                reply_type, reply, ack = ERROR, error_body(exc), False
            reply_to, correlation_id = properties.reply_to, properties.correlation_id
            link.call(
                lambda: link.finish_command(
                    generation, delivery_tag, reply_to, correlation_id, reply_type, reply, ack=ack
                )
            )
        finally:
            self._emit_done()

    def _emit_done(self) -> None:
        with self._in_flight_lock:
            self._in_flight -= 1
            self._in_flight_lock.notify_all()

    # -- replay ---------------------------------------------------------------------------

    def _start_replay(self, generation: int, delivery_tag: int, properties: BasicProperties, body: bytes) -> None:
        from photon.server.amqp.replay import ReplayWorker

        link = self._link
        assert link is not None
        try:
            if not properties.reply_to:
                raise ValidationError("a replay request needs a reply_to queue", "reply_to")
            request = parse_replay(body)
            with self._replays_lock:
                if len(self._replays) >= MAX_REPLAYS:
                    raise PhotonError(f"too many replays running (at most {MAX_REPLAYS}); try again later")
                key = (properties.reply_to, properties.correlation_id)
                if key in self._replays:
                    raise ValidationError("a replay with this reply_to and correlation_id is already running")
                if not self._accepting:
                    raise PhotonError("the service is stopping")
                worker = ReplayWorker(
                    self.store,
                    link,
                    generation,
                    request,
                    properties.reply_to,
                    properties.correlation_id,
                    self._replay_done,
                )
                self._replays[key] = worker
        except PhotonError as exc:
            self._reply_and_reject(generation, delivery_tag, properties, exc)
            return
        link.finish_command(generation, delivery_tag, None, None, "", b"", ack=True)
        worker.start()

    def _replay_done(self, worker: ReplayWorker) -> None:
        with self._replays_lock:
            if self._replays.get(worker.key) is worker:
                del self._replays[worker.key]


def amqp_service(store: EventStore, config: Mapping[str, Any]) -> AmqpService | None:
    """The AMQP service when `muon.url` is set, else None (nothing AMQP is used)."""
    return AmqpService(store, config) if config.get("muon.url") else None
