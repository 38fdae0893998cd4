"""Stream metadata: retention (`max-age`, `max-count`, `truncate-before`), deletion and user keys.

Kept as events in the internal stream `__metadata__` (one `metadata-set` event per change, the
whole metadata of one stream in its payload), so a backup carries it and a restore rebuilds it.
The core holds the latest metadata of every stream that has some (`MetadataCache`), loaded when
the store opens and updated by the writer as each metadata event is committed.

What it means for readers (the choice, as KurrentDB makes it): reads, replays and subscriptions
of a stream never return an event its metadata has expired or truncated, from the moment the
metadata is stored: the metadata becomes a lower bound on the read's version and event-time.
`__all__` readers (backups, projections over `__all__`) still see such events until a scavenge
removes them. A soft delete sets `truncate-before` past the stream's last version (the stream
reads as gone; writing to it again continues its version numbering); a hard delete also sets
`tombstone`, after which the stream can never be written again. A stream whose events are all
hidden (its current version is below its first readable version) reads as gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from photon.core.backend import Backend, Query
from photon.core.errors import ValidationError
from photon.core.events import METADATA_STREAM, RecordedEvent
from photon.core.limits import MAX_INT64

METADATA_SET: Final = "metadata-set"
MAX_AGE: Final = "max-age"
"""Seconds: events older than this are expired."""
MAX_COUNT: Final = "max-count"
"""Only the newest this many events of the stream are kept."""
TRUNCATE_BEFORE: Final = "truncate-before"
"""Events with a lower stream-version are truncated."""
TOMBSTONE: Final = "tombstone"
"""Set by a hard delete only: the stream can never be written again."""
RESERVED: Final = frozenset({MAX_AGE, MAX_COUNT, TRUNCATE_BEFORE, TOMBSTONE})
MAX_USER_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    max_age: int | None = None
    max_count: int | None = None
    truncate_before: int | None = None
    tombstone: bool = False
    user: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = dict(self.user)
        if self.max_age is not None:
            doc[MAX_AGE] = self.max_age
        if self.max_count is not None:
            doc[MAX_COUNT] = self.max_count
        if self.truncate_before is not None:
            doc[TRUNCATE_BEFORE] = self.truncate_before
        if self.tombstone:
            doc[TOMBSTONE] = True
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> StreamMetadata:
        """From a stored `metadata-set` payload (trusted: written by the core)."""
        return cls(
            doc.get(MAX_AGE),
            doc.get(MAX_COUNT),
            doc.get(TRUNCATE_BEFORE),
            bool(doc.get(TOMBSTONE)),
            {k: v for k, v in doc.items() if k not in RESERVED},
        )

    def first_version(self, last_version: int) -> int:
        """The lowest stream-version a reader may see, given the stream's current version."""
        first = 1
        if self.truncate_before is not None:
            first = max(first, self.truncate_before)
        if self.max_count is not None:
            first = max(first, last_version - self.max_count + 1)
        return first

    def first_time(self, now: int) -> int | None:
        """The lowest event-time (epoch ms) a reader may see at `now`; None without `max-age`."""
        return None if self.max_age is None else now - self.max_age * 1000

    @property
    def limits_reads(self) -> bool:
        return self.max_age is not None or self.max_count is not None or self.truncate_before is not None


def parse_metadata(doc: Any) -> StreamMetadata:
    """Metadata as a client sets it: `max-age` (seconds), `max-count`, `truncate-before` (each a whole
    number of at least 1, or null to clear it) and any other keys, kept as given (user keys).
    `tombstone` is set by a hard delete only."""
    if type(doc) is not dict:
        raise ValidationError("stream metadata must be a JSON object", "metadata")
    if TOMBSTONE in doc:
        raise ValidationError("metadata key 'tombstone' is set by a hard delete of the stream, not directly", TOMBSTONE)
    values: dict[str, int | None] = {}
    for key in (MAX_AGE, MAX_COUNT, TRUNCATE_BEFORE):
        value = doc.get(key)
        if value is not None and (type(value) is not int or not 1 <= value <= MAX_INT64):
            raise ValidationError(
                f"metadata {key!r} must be a whole number from 1 to {MAX_INT64} (or null), got {value!r}", key
            )
        values[key] = value
    user = {k: v for k, v in doc.items() if k not in RESERVED}
    for key in user:
        if not key or len(key) > 256:
            raise ValidationError("metadata keys must be 1 to 256 characters", "metadata")
    if len(orjson.dumps(user)) > MAX_USER_BYTES:
        raise ValidationError(f"user metadata is over the limit of {MAX_USER_BYTES} bytes", "metadata")
    return StreamMetadata(values[MAX_AGE], values[MAX_COUNT], values[TRUNCATE_BEFORE], user=user)


class MetadataCache:
    """The latest metadata of each stream that has some. Written by the writer thread only."""

    def __init__(self) -> None:
        self.streams: dict[str, StreamMetadata] = {}
        self.tombstoned: set[str] = set()
        self.position = 0
        """The order-id of the last `__metadata__` event taken in."""

    def get(self, stream: str) -> StreamMetadata | None:
        return self.streams.get(stream)

    def apply(self, records: Iterable[RecordedEvent]) -> None:
        """Take in committed `__metadata__` events (others are ignored)."""
        for record in records:
            if record.stream_name == METADATA_STREAM and record.event_type == METADATA_SET:
                self.position = max(self.position, record.order_id)
                payload = orjson.loads(record.data)["payload"]
                stream = payload["stream-name"]
                metadata = StreamMetadata.from_json(payload["metadata"])
                self.streams[stream] = metadata
                if metadata.tombstone:
                    self.tombstoned.add(stream)
                else:
                    self.tombstoned.discard(stream)

    def load(self, backend: Backend) -> None:
        """Read every stream's metadata from the store again (at open, after a restore)."""
        streams: dict[str, StreamMetadata] = {}
        loaded = MetadataCache()
        loaded.streams = streams
        position = 1
        while True:
            page = backend.read(Query(stream=METADATA_STREAM, from_order_id=position, limit=backend.read_page_size))
            loaded.apply(page)
            if len(page) < backend.read_page_size:
                break
            position = page[-1].order_id + 1
        self.streams, self.tombstoned, self.position = loaded.streams, loaded.tombstoned, loaded.position

    def refresh(self, backend: Backend) -> None:
        """Take in the `__metadata__` events stored since the last one taken in: what a read-only
        store (a projection worker's, which no writer of its own keeps current) does before a read."""
        while True:
            page = backend.read(
                Query(stream=METADATA_STREAM, from_order_id=self.position + 1, limit=backend.read_page_size)
            )
            self.apply(page)
            if len(page) < backend.read_page_size:
                break


def within_bounds(stream_version: int, event_time: int, from_version: int | None, from_time: int | None) -> bool:
    """Whether an event of a stream is in a read of that stream narrowed to `from_version` and
    `from_time` (what `StoreReads.read_bounds` answers; None: not narrowed)."""
    return (from_version is None or stream_version >= from_version) and (from_time is None or event_time >= from_time)


def metadata_event(stream: str, metadata: StreamMetadata) -> dict[str, Any]:
    """The `__metadata__` event that records `metadata` for `stream`."""
    return {
        "stream-name": METADATA_STREAM,
        "event-type": METADATA_SET,
        "payload": {"stream-name": stream, "metadata": metadata.to_json()},
        "service-id": "photon",
    }
