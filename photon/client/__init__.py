"""Clients of a Photon server: `PhotonClient` (blocking) and `AsyncPhotonClient` (asyncio), over
HTTP by default (`photon.client.http`) or AMQP (`photon.client.amqp`); `photon.client.wire` holds what
both HTTP clients send and read.
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
