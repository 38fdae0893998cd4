"""Photon: an event store with ordered streams, cold/hot/hot-cold replay and reduce projections."""

from .errors import (
    BackendError,
    BackendUnavailable,
    ConfigError,
    NotFound,
    PhotonError,
    StoreLocked,
    ValidationError,
    VersionConflict,
)
from .events import ALL_STREAM, CONFIG_STREAM, RecordedEvent
from .store import EventStore
from .subscriptions import CaughtUp, Subscription

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
