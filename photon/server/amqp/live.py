"""Live events: every stored event goes to the events exchange, at least once, in order.

A thread follows `__all__` from the last order-id the broker confirmed and hands batches to
the link, which publishes them persistent, with publisher confirms. The confirmed position
is saved as a store checkpoint, so neither a broker outage nor a restart of Photon skips an
event: after either, publishing resumes from the checkpoint (events published but not yet
confirmed at the moment of the failure go out again; consumers de-duplicate by order-id).
"""

from __future__ import annotations

import logging
import threading
import time

from photon.core.errors import StoreClosed
from photon.core.events import ALL_STREAM, RecordedEvent
from photon.core.store import EventStore
from photon.core.subscriptions import Subscription
from photon.server.amqp.link import Link

log = logging.getLogger("photon.amqp")

BATCH = 1000
CHECKPOINT_EVERY = 0.5  # seconds


def initial_position(store: EventStore, key: str) -> int:
    """The order-id live publishing continues after.

    With no checkpoint yet (AMQP turned on for the first time) publishing starts with the
    next event stored: the store's history is there to replay, not to flood the exchange.
    """
    saved = store.read_checkpoint(key)
    last = store.last_order_id()
    if isinstance(saved, dict) and isinstance(saved.get("order-id"), int):
        return min(int(saved["order-id"]), last)
    store.write_checkpoint(key, {"order-id": last})
    return last


def take_batch(subscription: Subscription, wait: float) -> list[RecordedEvent]:
    """Up to BATCH events: waits up to `wait` seconds for the first, not at all for the rest."""
    batch: list[RecordedEvent] = []
    timeout: float | None = wait
    while len(batch) < BATCH:
        item = subscription.get(timeout)
        if item is None:
            break
        if isinstance(item, RecordedEvent):
            batch.append(item)
        timeout = 0
    return batch


class LivePublisher(threading.Thread):
    def __init__(self, store: EventStore, link: Link, checkpoint_key: str) -> None:
        super().__init__(name="photon-amqp-live", daemon=True)
        self.store = store
        self.link = link
        self.checkpoint_key = checkpoint_key
        self._stopping = threading.Event()
        self._saved = link.confirmed
        self._saved_at = time.monotonic()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                generation = self.link.wait_ready(0.5)
                if generation is None:
                    self._save(force=False)
                    continue
                self._follow(generation)
        except StoreClosed:
            pass
        except Exception:
            log.exception("live event publishing stopped")
        finally:
            try:
                self._save(force=True)
            except Exception:
                log.exception("cannot save the live publishing checkpoint")

    def _follow(self, generation: int) -> None:
        start = self.link.confirmed + 1
        log.debug("publishing live events from order-id %d", start)
        with self.store.subscribe(ALL_STREAM, "hot-cold", from_order_id=start) as subscription:
            while not self._stopping.is_set() and self.link.is_current(generation):
                batch = take_batch(subscription, 0.2)
                if batch and not self.link.hand_in_live(generation, batch):
                    return
                self._save(force=False)

    def _save(self, *, force: bool) -> None:
        confirmed = self.link.confirmed
        now = time.monotonic()
        if confirmed != self._saved and (force or now - self._saved_at >= CHECKPOINT_EVERY):
            if self.store.closed:
                return
            self.store.write_checkpoint(self.checkpoint_key, {"order-id": confirmed})
            self._saved = confirmed
            self._saved_at = now

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self.join(timeout)
