"""Stream administration: deletion (soft and hard), stream metadata, scavenge and redaction.

Mixed into `EventStore` (`photon.core.store`): each is written through the store's single writer
as internal events (`__metadata__`, `__config__`), so a backup carries it and a restore rebuilds it
(see `photon.core.stream_metadata`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from photon.core.append_request import AppendOptions
from photon.core.errors import NotFound, StreamDeleted, ValidationError, VersionConflict
from photon.core.event_validation import check_client_stream_name
from photon.core.events import CONFIG_STREAM, RecordedEvent, is_internal
from photon.core.reads import StoreReads
from photon.core.stream_metadata import StreamMetadata, metadata_event, parse_metadata

if TYPE_CHECKING:
    from photon.core.committer import Committer
    from photon.core.scavenge import ScavengeReport
    from photon.core.store import EventStore


class StreamAdmin(StoreReads):
    """Deleting streams and setting their metadata, through the writer of `EventStore`."""

    _committer: Committer | None

    def _append_internal(self, events: list[dict[str, Any]], options: AppendOptions) -> list[RecordedEvent]:
        """Append events to internal streams atomically: the store's own."""
        raise NotImplementedError

    def delete_stream(self, stream: str, *, hard: bool = False) -> int:
        """Delete a client stream; returns how many of its events it held (its current version).

        Soft (the default, as KurrentDB): the stream reads as gone at once (its metadata's
        `truncate-before` goes past its last version); writing to it again continues its version
        numbering. Hard: also a tombstone, and the stream can never be written again. Both are
        recorded in `__metadata__` and, as `stream-deleted`, in `__config__`, in one atomic
        append; a scavenge removes the events. Raises `NotFound` for a stream that reads as gone
        (`StreamDeleted` once tombstoned), unless `hard` turns a soft-deleted stream into a tombstone.
        """
        if is_internal(stream):
            raise ValidationError(f"stream {stream!r} is internal and cannot be deleted", "stream-name")
        if self._committer is not None and self._committer.halted is not None:
            raise self._committer.halted  # the store lost events: nothing is written, nor looked up
        while True:
            current = self.stream_version(stream)
            metadata = self._metadata.get(stream) or StreamMetadata()
            if metadata.tombstone:
                raise StreamDeleted(stream)
            visible = current > 0 and current >= metadata.first_version(current)
            if not visible and not (hard and current > 0):
                raise NotFound(f"stream {stream!r} does not exist")
            deleted = replace(metadata, truncate_before=current + 1, tombstone=hard)
            events = [
                metadata_event(stream, deleted),
                {
                    "stream-name": CONFIG_STREAM,
                    "event-type": "stream-deleted",
                    "payload": {"stream-name": stream, "deleted-events": current, "mode": "hard" if hard else "soft"},
                    "service-id": "photon",
                },
            ]
            # The stream must still be at `current` when the deletion is written: an append in
            # between would otherwise be hidden with the rest.
            options = AppendOptions(expected_versions={stream: current})
            try:
                self._append_internal(events, options)
            except VersionConflict:
                continue
            return current

    def stream_metadata(self, stream: str) -> StreamMetadata:
        """The stream's metadata (empty when it has none)."""
        return self._metadata.get(stream) or StreamMetadata()

    def set_stream_metadata(self, stream: str, metadata: Mapping[str, Any] | StreamMetadata) -> StreamMetadata:
        """Set a client stream's metadata: `max-age` (seconds), `max-count`, `truncate-before`, user keys.

        Replaces the whole metadata (as KurrentDB's does); the stream need not exist. Takes
        effect for readers at once. Raises `ValidationError` for bad values and `StreamDeleted`
        for a tombstoned stream.
        """
        if is_internal(stream):
            raise ValidationError(f"stream {stream!r} is internal: it has no metadata", "stream-name")
        check_client_stream_name(stream)
        parsed = metadata if isinstance(metadata, StreamMetadata) else parse_metadata(metadata)
        current = self._metadata.get(stream)
        if current is not None and current.tombstone:
            raise StreamDeleted(stream)
        if parsed.tombstone:
            raise ValidationError("a tombstone is set by a hard delete", "tombstone")
        self._append_internal([metadata_event(stream, parsed)], AppendOptions())
        return parsed

    def metadata_snapshot(self) -> dict[str, StreamMetadata]:
        """Every stream's metadata, as it is now (streams without any left out)."""
        return dict(self._metadata.streams)

    def scavenge(self, progress: Callable[[int, int], None] | None = None) -> ScavengeReport:
        """Remove deleted, expired and truncated events online, then give the space back: see `photon.core.scavenge`."""
        from photon.core.scavenge import scavenge

        return scavenge(cast("EventStore", self), progress)

    def redact(
        self, *, stream: str | None = None, event_ids: Sequence[str] | None = None, reason: str | None = None
    ) -> int:
        """Replace the payload of a stream's events, or of the events with these ids, with a
        redaction marker (see `photon.core.redaction`); returns how many were redacted."""
        from photon.core.redaction import redact

        return redact(cast("EventStore", self), stream=stream, event_ids=event_ids, reason=reason)
