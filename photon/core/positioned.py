"""Events that carry their positions (a restore, an import): the rule they must follow, and its errors.

What is checked, for every event, against the store and the events before it:

- order-ids strictly increase, and the first is after the store's last order-id. Holes are
  allowed: a deleted stream's order-ids are never reused, so a backup of a store that deleted
  a stream skips them.
- stream-versions increase in each stream (1, 2, 3... for a new stream; past the store's version
  for an incremental backup). They may skip: a scavenge removes a stream's expired and truncated
  events, so a backup taken after it starts such a stream past version 1. A `__config__`
  `stream-deleted` event written by an earlier Photon (without a `mode`) ends its stream: the
  stream's next event is version 1 again, and when the store holds that stream (an incremental
  restore), the stream is deleted there too at that point, as in the source. Deletions of this
  Photon are soft or hard (`mode`), kept in `__metadata__`, and restored as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

import orjson

from photon.core.errors import PhotonError, ValidationError
from photon.core.events import CONFIG_STREAM, RecordedEvent

STREAM_DELETED = "stream-deleted"


class BackupFormatError(ValidationError):
    """A backup line is not a stored event, or breaks the order of the lines before it."""

    def __init__(self, line: int | None, message: str, field: str | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message, field)
        self.line = line
        self.reason = message


class RestoreConflict(PhotonError):
    """The backup does not follow what the store already holds (a restore into a non-empty store)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line


def deleted_stream(record: RecordedEvent) -> str | None:
    """The stream a `__config__` stream-deleted event ends, else None."""
    if record.stream_name != CONFIG_STREAM or record.event_type != STREAM_DELETED:
        return None
    payload = orjson.loads(record.data)["payload"]
    if "mode" in payload:
        # A soft or hard delete (kept in `__metadata__`): the stream's numbering goes on, and
        # its events stay until a scavenge. Only the deletions of earlier Photons removed them.
        return None
    name = payload.get("stream-name")
    return name if isinstance(name, str) else None


class Continuity:
    """The ordering rule of a restore: order-ids increase, stream-versions continue each stream.

    `versions` holds the known current version of each stream and is updated as events are
    accepted; `lookup` is asked for streams it does not hold yet (missing ones are at 0).
    """

    def __init__(
        self,
        last_order_id: int,
        versions: dict[str, int],
        lookup: Callable[[Collection[str]], dict[str, int]] | None = None,
    ) -> None:
        self.store_last_order_id = last_order_id
        self.last_order_id = last_order_id
        self.versions = versions
        self.lookup = lookup
        self.accepted = 0

    def prefetch(self, records: Iterable[RecordedEvent]) -> None:
        """Fetch the versions of a batch's streams in one look-up."""
        versions = self.versions
        wanted = {r.stream_name for r in records}.difference(versions)  # looks up each, not every key
        if wanted and self.lookup is not None:
            found = self.lookup(wanted)
            for name in wanted:
                versions[name] = found.get(name, 0)

    def _current(self, stream: str) -> int:
        current = self.versions.get(stream)
        if current is None:
            current = self.lookup([stream]).get(stream, 0) if self.lookup is not None else 0
            self.versions[stream] = current
        return current

    def check(self, record: RecordedEvent, line: int | None = None) -> str | None:
        """Accept `record` or raise; returns a stream that must be deleted in the store before it.

        That is the stream a stream-deleted event ends, when the store holds events of it.
        """
        if record.order_id <= self.last_order_id:
            if self.accepted == 0 and self.store_last_order_id > 0:
                raise RestoreConflict(
                    line,
                    f"the store is not empty: it holds events up to order-id {self.store_last_order_id}; "
                    "restore into an empty store, or restore an incremental backup whose first order-id "
                    f"is after {self.store_last_order_id} (this one starts at order-id {record.order_id}"
                    + (f", line {line})" if line is not None else ")"),
                )
            raise BackupFormatError(
                line, f"order-id {record.order_id} does not follow order-id {self.last_order_id}", "order-id"
            )
        stream = record.stream_name
        current = self._current(stream)
        if record.stream_version <= current:
            # Versions may jump ahead (a scavenge removes expired and truncated events, leaving
            # gaps), but never repeat or go back.
            raise BackupFormatError(
                line,
                f"stream {stream!r}: stream-version {record.stream_version} does not follow version {current}",
                "stream-version",
            )
        self.versions[stream] = record.stream_version
        self.last_order_id = record.order_id
        self.accepted += 1
        ended = deleted_stream(record)
        if ended is None:
            return None
        had_events = self._current(ended) > 0
        self.versions[ended] = 0
        return ended if had_events else None
