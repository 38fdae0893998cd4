"""The error hierarchy shared by the core, every backend and every front end.

Backends translate their drivers' exceptions into these types, so callers (HTTP, TCP,
AMQP, CLI) map one small set of errors to status codes and messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class PhotonError(Exception):
    """Base class of every error Photon raises on purpose."""


class ValidationError(PhotonError, ValueError):
    """An event or request is malformed; `field` names the offending field when there is one,
    `index` the refused event's position in its batch (0 first) when a batch of several was refused."""

    def __init__(self, message: str, field: str | None = None, index: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.index = index


EVENT_INDEX = "event-index"
"""The key of an error answer (HTTP, AMQP) that holds `ValidationError.index`."""


def event_index(body: Mapping[str, Any]) -> int | None:
    """The refused event's position an error answer carries (`EVENT_INDEX`), or None."""
    index = body.get(EVENT_INDEX)
    return index if isinstance(index, int) and not isinstance(index, bool) and index >= 0 else None


class EventTooLarge(ValidationError):
    """An event is over `payload.max.bytes` once encoded (HTTP 413)."""


class InternalStreamError(ValidationError):
    """A client tried to write to a stream whose name starts with `__` (written only by the core)."""


class VersionConflict(PhotonError):
    """`expected-version` did not match the stream's current version; nothing was stored."""

    def __init__(self, stream: str, expected: int | str, current: int) -> None:
        super().__init__(
            f"version conflict on stream {stream!r}: expected-version {expected}, "
            f"but the stream is at version {current}"
        )
        self.stream = stream
        self.expected = expected
        self.current = current


class EventIdConflict(PhotonError):
    """An event `id` given by the client is already stored for an event of another stream."""

    def __init__(self, event_id: str, stream: str, stored_stream: str, order_id: int) -> None:
        super().__init__(
            f"event id {event_id!r} is already stored in stream {stored_stream!r} (order-id {order_id}), "
            f"not in {stream!r}: an id names one event; give this event another id"
        )
        self.event_id = event_id
        self.stream = stream
        self.stored_stream = stored_stream


class AppendConditionFailed(PhotonError):
    """An append's condition failed: an event matching its query was stored after its position.

    Names the first such event; nothing of the append was stored.
    """

    def __init__(self, after: int, order_id: int, stream: str, event_type: str, event_id: str) -> None:
        super().__init__(
            f"append condition failed: event {event_id!r} ({event_type!r} in stream {stream!r}, order-id "
            f"{order_id}) matches the condition's query and was stored after position {after}"
        )
        self.after = after
        self.order_id = order_id
        self.stream = stream
        self.event_type = event_type
        self.event_id = event_id

    def fields(self) -> dict[str, Any]:
        """What an error answer carries besides the message (HTTP body, AMQP reply)."""
        return {
            "after": self.after,
            "order-id": self.order_id,
            "stream-name": self.stream,
            "event-type": self.event_type,
            "id": self.event_id,
        }

    @classmethod
    def from_fields(cls, body: Mapping[str, Any], message: str) -> AppendConditionFailed:
        """The error again from an answer's `fields` (the clients' side)."""
        error = cls(
            int(body.get("after", 0)),
            int(body.get("order-id", 0)),
            str(body.get("stream-name", "")),
            str(body.get("event-type", "")),
            str(body.get("id", "")),
        )
        error.args = (message,)
        return error


class StreamDeleted(PhotonError):
    """The stream was hard deleted (a tombstone): it can never be written again."""

    def __init__(self, stream: str) -> None:
        super().__init__(f"stream {stream!r} was hard deleted (tombstoned) and can never be written again")
        self.stream = stream


class NotFound(PhotonError, LookupError):
    """The stream, event or projection asked for does not exist."""


class Conflict(PhotonError):
    """The request conflicts with what exists (a consumer group of that name already exists, ...)."""


class NotReady(PhotonError):
    """What was asked for is not available yet (a projection still loading its checkpoint): try again shortly."""


class StoreClosed(PhotonError):
    """The store was closed (or is shutting down) and takes no more work."""


class ReadOnlyStore(PhotonError):
    """The store was opened for reading only."""


class BackendError(PhotonError):
    """The storage backend failed. The operation was not acknowledged."""


class BackendUnavailable(BackendError):
    """The backend's server cannot be reached or stopped answering."""


class StoreLocked(BackendError):
    """Another process holds the store's writer lock (one writer per store)."""


class StoreLost(BackendError):
    """The store no longer holds events it acknowledged (a server that came back without its data).

    The writer stops: numbering on would hand out order-ids again over a store that lost events.
    """


class IntegrityError(BackendError):
    """The backend refused a write that would break an invariant (duplicate order-id, version or id)."""


class ConfigError(PhotonError):
    """A configuration key is unknown or its value is invalid."""


class UnknownBackend(ConfigError):
    """`db.backend` names no installed backend plugin."""


class MissingDriver(ConfigError):
    """`db.backend` names a backend whose driver is not installed; the message names the pip extra."""


class NotAuthorized(PhotonError):
    """The credentials or the token were refused (HTTP 401)."""


class ServerUnreachable(PhotonError):
    """The Photon server could not be reached (refused, unknown host, timed out, cut off)."""


class CannotListen(PhotonError):
    """A port cannot be listened on (in use, not allowed, unknown host); the message names its key."""
