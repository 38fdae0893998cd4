"""Replays requested over AMQP: a store subscription streamed to the requester's queue.

Each replay runs in its own thread (reads from the store block) and hands batches of
messages to the link, one batch at a time, so a replay never queues more than one batch in
memory. It ends when a cold replay is done (an `end` message), when the requester cancels,
when its queue goes away (a message comes back as unroutable, or a check while idle finds
the queue gone), when the connection drops (the requester replays from its last order-id),
or when the service stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from photon.core.errors import PhotonError, StoreClosed
from photon.core.events import RecordedEvent
from photon.core.store import EventStore
from photon.core.subscriptions import CaughtUp
from photon.server.amqp.link import Link
from photon.server.amqp.protocol import ReplayRequest
from photon.wire.amqp import CAUGHT_UP, END, ERROR, EVENT, dumps, error_body

log = logging.getLogger("photon.amqp")

BATCH = 500
IDLE_CHECK = 5.0  # seconds between checks that an idle live replay's queue still exists
HAND_IN_TIMEOUT = 30.0


class ReplayWorker(threading.Thread):
    def __init__(
        self,
        store: EventStore,
        link: Link,
        generation: int,
        request: ReplayRequest,
        reply_to: str,
        correlation_id: str | None,
        on_done: Callable[[ReplayWorker], None],
    ) -> None:
        super().__init__(name=f"photon-amqp-replay-{reply_to}", daemon=True)
        self.store = store
        self.link = link
        self.generation = generation
        self.request = request
        self.reply_to = reply_to
        self.correlation_id = correlation_id
        self.on_done = on_done
        self.reason: str | None = None
        self._cancelled = threading.Event()
        self.sent = 0

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.reply_to, self.correlation_id)

    def cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self._cancelled.set()

    def run(self) -> None:
        try:
            self._run()
        except StoreClosed:
            self.cancel("the store closed")
        except Exception as exc:
            log.exception("replay to %s failed", self.reply_to)
            self._send([(ERROR, error_body(exc))])
        finally:
            log.debug("replay to %s ended: %s (%d events)", self.reply_to, self.reason or "done", self.sent)
            self.on_done(self)

    def _run(self) -> None:
        request = self.request
        try:
            subscription = self.store.subscribe(request.stream, request.stream_type, **request.subscribe_args())
        except PhotonError as exc:
            self._send([(ERROR, error_body(exc))])
            return
        idle_since = time.monotonic()
        with subscription:
            while not self._cancelled.is_set():
                messages: list[tuple[str, bytes]] = []
                ended = False
                timeout: float | None = 0.5
                while len(messages) < BATCH:
                    try:
                        item = subscription.get(timeout)
                    except StopIteration:
                        ended = True
                        break
                    if item is None:
                        break
                    timeout = 0
                    if isinstance(item, RecordedEvent):
                        messages.append((EVENT, item.data))
                        self.sent += 1
                    elif isinstance(item, CaughtUp):
                        messages.append((CAUGHT_UP, dumps({"order-id": item.order_id})))
                if ended:
                    messages.append((END, dumps({"count": self.sent, "order-id": subscription.position})))
                if messages:
                    idle_since = time.monotonic()
                    if not self._send(messages):
                        return
                elif time.monotonic() - idle_since >= IDLE_CHECK:
                    idle_since = time.monotonic()
                    self.link.call(lambda: self.link.check_queue(self.reply_to, lambda: self.cancel("queue gone")))
                if ended:
                    self.reason = "done"
                    return

    def _send(self, messages: list[tuple[str, bytes]]) -> bool:
        """Hand a batch to the link and wait until it is written; False when the replay must end."""
        if not self.link.is_current(self.generation):
            self.cancel("connection lost")
            return False
        done = threading.Event()
        handed = self.link.call(
            lambda: self.link.publish_to(self.generation, self.reply_to, messages, self.correlation_id, done)
        )
        deadline = time.monotonic() + HAND_IN_TIMEOUT
        while handed and not done.wait(0.5):
            if not self.link.is_current(self.generation) or time.monotonic() > deadline:
                break
        if not done.is_set() or not self.link.is_current(self.generation):
            self.cancel("connection lost")
            return False
        return not self._cancelled.is_set()
