"""Muon's `reactive-stream` protocol: ``muon.replay(stream, args)`` and ``muon.subscribe(url)``.

Endpoints, as the Clojure Photon served them:

- ``stream``: a replay of ``args["stream-name"]`` (default ``__all__``) with Photon's replay
  options by their usual names (``stream-type`` cold | hot | hot-cold, default hot-cold;
  ``from``, ``from-version``, ``from-time``, ``to``, ``event-types``, ``limit``);
- ``projection/<name>``: the projection's updates as they come (its current state first).

Flow control is the client's: ``DataRequested {"request": n}`` grants credit, and Photon sends
one ``Data`` message per event, never more than granted. Until credit comes, nothing more is
read from the store (and a live replay's buffer is bounded by the core's subscription), so a
slow client does not make Photon's memory grow. A cold replay ends with ``Completed``; a bad
request or a failure with ``Errored {"error": ...}``; the client's ``Cancelled`` (or closing the
channel) stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from typing import TYPE_CHECKING, Any, Final

from photon.core.errors import PhotonError, StoreClosed, ValidationError
from photon.core.events import RecordedEvent
from photon.server.amqp import muon_wire as wire
from photon.server.amqp.protocol import replay_request

if TYPE_CHECKING:
    from photon.core.subscriptions import Subscription
    from photon.server.amqp.muon_context import MuonContext
    from photon.server.amqp.muon_transport import Outlet

log = logging.getLogger("photon.amqp.muon")

PROTOCOL: Final = "reactive-stream"
SUBSCRIBE: Final = "SubscriptionRequested"
REQUEST: Final = "DataRequested"
CANCEL: Final = "Cancelled"
STREAM_ENDPOINT: Final = "stream"
PROJECTION_ENDPOINT: Final = "projection/"
BATCH: Final = 200
"""Data messages handed to the connection at once (at most the credit granted)."""
PROJECTION_BACKLOG: Final = 16
"""Projection updates kept for a client without credit (each carries the whole state)."""


def replay_args(args: Any) -> dict[str, Any]:
    """Muon's replay args as a JSON object (none: `{}`; the stream defaults to `__all__`)."""
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise ValidationError("the replay args must be a JSON object", "args")
    return args


class Credit:
    """Data the client asked for and has not had yet."""

    def __init__(self) -> None:
        self.available = 0
        self.cancelled = False
        self._changed = threading.Condition()

    def grant(self, amount: int) -> None:
        with self._changed:
            self.available += amount
            self._changed.notify_all()

    def cancel(self) -> None:
        with self._changed:
            self.cancelled = True
            self._changed.notify_all()

    def wait(self, timeout: float) -> int:
        """The credit available, waiting up to `timeout` seconds for some; 0 when cancelled."""
        with self._changed:
            if self.available <= 0 and not self.cancelled:
                self._changed.wait(timeout)
            return 0 if self.cancelled else self.available

    def spend(self, amount: int) -> None:
        with self._changed:
            self.available -= amount


class StreamSession:
    def __init__(self, context: MuonContext, outlet: Outlet) -> None:
        self.context = context
        self.outlet = outlet
        self.credit = Credit()
        self._thread: threading.Thread | None = None
        self._task: Any = None

    # -- messages from the client (link thread) -----------------------------------------------

    def receive(self, inner: dict[str, Any]) -> None:
        step = inner.get("step")
        if step == SUBSCRIBE:
            self._subscribe(inner)
        elif step == REQUEST:
            try:
                amount = wire.decode_payload(inner.get("payload")).get("request")
            except (PhotonError, AttributeError):
                amount = None
            if isinstance(amount, int) and amount > 0:
                self.credit.grant(amount)
        elif step == CANCEL:
            self.close("cancelled")
            self.outlet.finish()

    def close(self, reason: str) -> None:
        self.credit.cancel()
        self.outlet.closed = True
        task = self._task
        if task is not None:
            self.context.loop.call_soon_threadsafe(task.cancel)

    # -- starting ----------------------------------------------------------------------------

    def _subscribe(self, inner: dict[str, Any]) -> None:
        if self._thread is not None:
            return
        try:
            request = wire.decode_payload(inner.get("payload"))
            endpoint = str(request.get("streamName") or "").strip("/")
            args = request.get("args")
        except (PhotonError, AttributeError):
            self._error("a SubscriptionRequested needs {streamName, args}")
            return
        if endpoint == STREAM_ENDPOINT:
            self._thread = threading.Thread(target=self._replay, args=(args,), name="photon-muon-replay", daemon=True)
        elif endpoint.startswith(PROJECTION_ENDPOINT) and self._projection_known(endpoint[len(PROJECTION_ENDPOINT) :]):
            name = endpoint[len(PROJECTION_ENDPOINT) :]
            self._thread = threading.Thread(
                target=self._projection, args=(name,), name="photon-muon-projection", daemon=True
            )
        else:
            self._send("SubNack", {"message": f"no stream endpoint {endpoint!r}"}, closing=True)
            return
        self._send("SubAck", {})
        self._thread.start()

    def _projection_known(self, name: str) -> bool:
        manager = self.context.projections
        return manager is not None and name in manager.projections

    # -- sending -----------------------------------------------------------------------------

    def _send(self, step: str, content: Any, *, closing: bool = False) -> bool:
        sent = self.outlet.send(
            self.outlet.message(PROTOCOL, step, content, channel_op=wire.CLOSED if closing else wire.NORMAL)
        )
        if closing:
            self.outlet.finish()
        return sent

    def _error(self, message: str) -> None:
        self._send("Errored", {"error": message}, closing=True)

    def _send_data(self, datas: list[bytes]) -> bool:
        """Send events (or updates) as `Data`; False, sending nothing, once the client cancelled
        (an event read while the cancel came in was not in flight yet: it is not sent)."""
        if self.credit.cancelled:
            return False
        outlet = self.outlet
        frames = [
            outlet.frame(
                wire.message(
                    None,
                    protocol=PROTOCOL,
                    step="Data",
                    origin=outlet.transport.server.name,
                    target=outlet.client,
                    encoded=list(data),
                )
            )
            for data in datas
        ]
        self.credit.spend(len(datas))
        return outlet.send_frames(frames)

    # -- a replay of a stream (its own thread) ----------------------------------------------

    def _replay(self, args: Any) -> None:
        try:
            # Numbers may come as text, as the Clojure Photon took them.
            request = replay_request(replay_args(args), numbers_as_text=True)
            subscription = self.context.store.subscribe(request.stream, request.stream_type, **request.subscribe_args())
        except PhotonError as exc:
            self._error(str(exc))
            return
        try:
            with subscription:
                self._pump(subscription)
        except StoreClosed:
            self._error("Photon is stopping")
        except Exception as exc:
            log.exception("a Muon replay failed")
            self._error(f"internal error: {exc!r}")

    def _pump(self, subscription: Subscription) -> None:
        while True:
            credit = self.credit.wait(1.0)
            if self.credit.cancelled or self.outlet.transport.closed:
                return
            if credit <= 0:
                continue
            datas: list[bytes] = []
            ended = False
            timeout: float | None = 0.5
            while len(datas) < min(credit, BATCH):
                try:
                    item = subscription.get(timeout)
                except StopIteration:
                    ended = True
                    break
                if item is None:
                    break
                timeout = 0
                if isinstance(item, RecordedEvent):
                    datas.append(item.data)
            if datas and not self._send_data(datas):
                return
            if ended:
                self._send("Completed", {}, closing=True)
                return

    # -- a projection's updates (its own thread, fed from the server's loop) -----------------

    def _projection(self, name: str) -> None:
        updates: queue.Queue[bytes | None] = queue.Queue(PROJECTION_BACKLOG)
        manager = self.context.projections
        assert manager is not None

        def offer(item: bytes | None) -> None:
            while True:
                try:
                    updates.put_nowait(item)
                    return
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        updates.get_nowait()  # the newest state is what matters

        async def follow() -> None:
            try:
                async for line in manager.follow_raw(name):
                    offer(line)
            finally:
                offer(None)

        def start() -> None:
            self._task = asyncio.ensure_future(follow())

        self.context.loop.call_soon_threadsafe(start)
        while True:
            credit = self.credit.wait(1.0)
            if self.credit.cancelled or self.outlet.transport.closed:
                return
            if credit <= 0:
                continue
            try:
                line = updates.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                self._send("Completed", {}, closing=True)
                return
            if not self._send_data([line]):
                return
