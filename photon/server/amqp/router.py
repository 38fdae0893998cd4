"""The one place that decides which protocol an incoming AMQP message belongs to.

Photon listens on several queues of one connection: its own command queue (Photon's AMQP
protocol, docs/amqp.md), Muon's service queue (transport handshakes), the listen queues of
open Muon transport channels, and a queue bound to Muon's discovery broadcasts. The queue a
message arrives on says which protocol it speaks; nothing else is consulted.
"""

from __future__ import annotations

import enum

from photon.wire.amqp import Names


class Route(enum.Enum):
    PHOTON = "photon"
    """Photon's own protocol: emit, replay, cancel and consumer group requests (docs/amqp.md)."""
    MUON_HANDSHAKE = "muon-handshake"
    """A Muon client opening a transport channel (headers handshake=initiated, ...)."""
    MUON_TRANSPORT = "muon-transport"
    """A message on an open Muon transport channel (shared-channel frames, keep-alives)."""
    MUON_DISCOVERY = "muon-discovery"
    """A Muon discovery broadcast (a client asking who is there)."""


def muon_service_queue(service: str) -> str:
    """The queue Muon clients send transport handshakes to."""
    return f"service.{service}"


def discovery_queue(service: str, instance: str) -> str:
    """This Photon's private queue for Muon discovery requests."""
    return f"{service}.muon-discovery.{instance}"


def route(queue: str, names: Names) -> Route:
    if queue == names.commands:
        return Route.PHOTON
    if queue == muon_service_queue(names.service):
        return Route.MUON_HANDSHAKE
    if queue.startswith(f"{names.service}.muon-discovery."):
        return Route.MUON_DISCOVERY
    return Route.MUON_TRANSPORT
