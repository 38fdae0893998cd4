"""Clients of a Photon server: `PhotonClient` (blocking) and `AsyncPhotonClient` (asyncio), over
HTTP by default (`photon.client.http`, `photon.client.http_async`) or AMQP (`photon.client.amqp` on
pika, `photon.client.amqp_async` on aio-pika). `photon.client.wire` and `photon.client.http_calls` hold
what both HTTP transports send and read, `photon.client.amqp_calls` what both AMQP clients send and
read; none of them does I/O, so each client keeps only its sending and receiving.
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
