"""Photon: an event store with ordered streams, cold/hot/hot-cold replay and reduce projections."""

from photon.core.errors import (
    BackendError,
    BackendUnavailable,
    ConfigError,
    NotFound,
    PhotonError,
    StoreLocked,
    ValidationError,
    VersionConflict,
)
from photon.core.events import ALL_STREAM, CONFIG_STREAM, RecordedEvent
from photon.core.store import EventStore
from photon.core.subscriptions import CaughtUp, Subscription

__version__ = "0.1.0"

__all__ = [
    "ALL_STREAM",
    "CONFIG_STREAM",
    "BackendError",
    "BackendUnavailable",
    "CaughtUp",
    "ConfigError",
    "EventStore",
    "NotFound",
    "PhotonError",
    "RecordedEvent",
    "StoreLocked",
    "Subscription",
    "ValidationError",
    "VersionConflict",
    "__version__",
]
