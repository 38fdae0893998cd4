"""Muon's `event` protocol: ``muon.emit(event)`` stores one event and answers its fate.

The client sends step ``EventEmitted`` with the event; Photon answers ``EventProcessed`` with
``{"status": "PERSISTED", "orderId", "eventTime"}`` once the event is durable, or
``{"status": "FAILED", "cause": ...}`` naming why it was refused (nothing of it is stored).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from photon.core.errors import PhotonError
from photon.server.amqp import muon_wire as wire

if TYPE_CHECKING:
    from photon.server.amqp.muon_context import MuonContext
    from photon.server.amqp.muon_transport import Outlet

log = logging.getLogger("photon.amqp.muon")

PROTOCOL: Final = "event"
EMITTED: Final = "EventEmitted"
PROCESSED: Final = "EventProcessed"
PERSISTED: Final = "PERSISTED"
FAILED: Final = "FAILED"


def persisted(order_id: int, event_time: int) -> dict[str, Any]:
    return {"status": PERSISTED, "orderId": order_id, "eventTime": event_time, "cause": None}


def failed(cause: str) -> dict[str, Any]:
    return {"status": FAILED, "orderId": None, "eventTime": None, "cause": cause}


class EventSession:
    def __init__(self, context: MuonContext, outlet: Outlet) -> None:
        self.context = context
        self.outlet = outlet

    def receive(self, inner: dict[str, Any]) -> None:
        step = inner.get("step")
        if step != EMITTED:
            self._answer(failed(f"unexpected step {step!r} in the event protocol; expected {EMITTED!r}"))
            return
        try:
            event = wire.decode_payload(inner.get("payload"))
        except PhotonError as exc:
            self._answer(failed(str(exc)))
            return
        self.context.run(self._store(event))

    async def _store(self, event: Any) -> None:
        try:
            if not isinstance(event, dict):
                raise PhotonError("an emitted event must be a JSON object")
            stored = await self.context.store.append_async(event)
            answer = persisted(stored[0].order_id, stored[0].event_time)
        except PhotonError as exc:
            answer = failed(str(exc))
        except Exception as exc:
            log.exception("a Muon emit failed")
            answer = failed(f"internal error: {exc!r}")
        self._answer(answer)

    def _answer(self, answer: dict[str, Any]) -> None:
        self.outlet.send(self.outlet.message(PROTOCOL, PROCESSED, answer))
        self.outlet.finish()

    def close(self, reason: str) -> None:
        pass
