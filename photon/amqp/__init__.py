"""Photon over AMQP (RabbitMQ, through pika): emit, live events, replay, projection updates.

Importable without pika; pika is needed once `muon.url` is set (extra ``amqp``).
"""

from .protocol import BrokerUnavailable, Names
from .service import AmqpService, amqp_service

__all__ = ["AmqpService", "BrokerUnavailable", "Names", "amqp_service"]
