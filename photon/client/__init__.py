"""Clients of a Photon server: `PhotonClient` (blocking) and `AsyncPhotonClient` (asyncio), over
HTTP by default or AMQP (`photon.client.blocking.amqp`), and the bare Muon wire client (`photon.client.blocking.wire`).
"""

from photon.client.blocking import (
    DEFAULT_URL,
    AsyncPhotonClient,
    ConsumerPosition,
    DurableSubscription,
    HttpTransport,
    Page,
    PhotonClient,
    RecordedEvent,
    ReplayItem,
    Transport,
)
from photon.core.subscriptions import CaughtUp

__all__ = [
    "DEFAULT_URL",
    "AsyncPhotonClient",
    "CaughtUp",
    "ConsumerPosition",
    "DurableSubscription",
    "HttpTransport",
    "Page",
    "PhotonClient",
    "RecordedEvent",
    "ReplayItem",
    "Transport",
]
