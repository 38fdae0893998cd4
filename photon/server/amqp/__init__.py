"""Photon over AMQP (RabbitMQ, through pika): emit, live events, replay, projection updates, and
the Muon wire protocol (discovery, transport, `event`, `reactive-stream`, `rpc`: docs/muon.md)
on the same connection; `router` decides which protocol a message belongs to.

Importable without pika; pika is needed once `muon.url` is set (extra ``amqp``).
"""

from photon.server.amqp.service import AmqpService, amqp_service
from photon.wire.amqp import BrokerUnavailable, Names

__all__ = ["AmqpService", "BrokerUnavailable", "Names", "amqp_service"]
