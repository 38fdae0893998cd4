"""`memory` (alias `dummy`): events kept in process, gone when it ends. For tests and throwaway runs."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from photon.core.backend import Backend, Query, StoreState, StreamInfo
from photon.core.errors import IntegrityError
from photon.core.events import RecordedEvent


class MemoryBackend(Backend):
    name = "memory"
    aliases: ClassVar[tuple[str, ...]] = ("dummy",)
    description = "in process, lost at exit (tests, throwaway runs)"
    persistent = False
    in_process = True
    scavenging = True
    redaction = True
    listing_checkpoints = True

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self._lock = threading.RLock()
        self._all: list[RecordedEvent] = []
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._ids: dict[str, RecordedEvent] = {}
        self._checkpoints: dict[str, bytes] = {}
        self._versions: dict[str, int] = {}
        """Each stream's current version (kept apart: a scavenge may remove its events)."""
        self._high_water = 0

    def open(self, *, writer: bool) -> StoreState:
        return StoreState(self.last_order_id())

    def close(self) -> None:
        pass

    def _check(self, events: Sequence[RecordedEvent]) -> None:
        last = self._high_water
        seen: set[str] = set()
        for event in events:
            if event.order_id <= last:
                raise IntegrityError(f"order-id {event.order_id} is not after {last}")
            last = event.order_id
            if event.event_id in self._ids or event.event_id in seen:
                raise IntegrityError(f"event id {event.event_id!r} is already stored")
            seen.add(event.event_id)
        versions: dict[str, int] = {}
        for event in events:
            current = versions.get(event.stream_name)
            if current is None:
                current = self._versions.get(event.stream_name, 0)
            if event.stream_version <= current:  # ahead is allowed: a restore of a scavenged store
                raise IntegrityError(
                    f"stream {event.stream_name!r} version {event.stream_version} does not follow {current}"
                )
            versions[event.stream_name] = event.stream_version

    def _apply(self, events: Sequence[RecordedEvent]) -> None:
        self._all.extend(events)
        for event in events:
            self._streams.setdefault(event.stream_name, []).append(event)
            self._ids[event.event_id] = event
            self._versions[event.stream_name] = event.stream_version
        self._high_water = events[-1].order_id

    def append(self, events: Sequence[RecordedEvent]) -> None:
        if not events:
            return
        with self._lock:
            self._check(events)
            self._apply(events)

    def read(self, query: Query) -> list[RecordedEvent]:
        with self._lock:
            if query.stream is None:
                source = self._all
                start = bisect_left(source, query.from_order_id, key=_order_id)
            else:
                source = self._streams.get(query.stream, [])
                start = max(
                    bisect_left(source, query.from_order_id, key=_order_id),
                    bisect_left(source, query.from_version, key=_version),
                )
            return _select(source, start, query)

    def last_order_id(self) -> int:
        return self._high_water

    def stream_versions(self, streams: Collection[str]) -> dict[str, int]:
        with self._lock:
            return {name: self._versions[name] for name in streams if self._versions.get(name)}

    def streams(self) -> Iterator[StreamInfo]:
        with self._lock:
            found = [StreamInfo(name, version) for name, version in self._versions.items() if version]
        return iter(sorted(found))

    def events_by_id(self, event_ids: Collection[str]) -> dict[str, RecordedEvent]:
        with self._lock:
            return {i: self._ids[i] for i in event_ids if i in self._ids}

    def delete_stream(self, stream: str) -> int:
        with self._lock:
            removed = self._streams.pop(stream, [])
            self._versions.pop(stream, None)
            if removed:
                gone = {e.order_id for e in removed}
                self._all = [e for e in self._all if e.order_id not in gone]
                for event in removed:
                    self._ids.pop(event.event_id, None)
            return len(removed)

    def truncate_stream(self, stream: str, before_version: int) -> int:
        with self._lock:
            return len(self._truncate(stream, before_version))

    def _truncate(self, stream: str, before_version: int) -> list[RecordedEvent]:
        events = self._streams.get(stream)
        if not events:
            return []
        cut = bisect_left(events, before_version, key=_version)
        removed = events[:cut]
        if removed:
            del events[:cut]
            gone = {e.order_id for e in removed}
            self._all = [e for e in self._all if e.order_id not in gone]
            for event in removed:
                self._ids.pop(event.event_id, None)
        return removed

    def replace_events(self, events: Sequence[RecordedEvent]) -> None:
        with self._lock:
            self._replace(events)

    def _replace(self, events: Sequence[RecordedEvent]) -> None:
        for event in events:
            at = bisect_left(self._all, event.order_id, key=_order_id)
            if at == len(self._all) or self._all[at].order_id != event.order_id:
                continue
            self._all[at] = event
            stream = self._streams[event.stream_name]
            stream[bisect_left(stream, event.stream_version, key=_version)] = event
            self._ids[event.event_id] = event

    def read_checkpoint(self, key: str) -> bytes | None:
        return self._checkpoints.get(key)

    def checkpoints(self, prefix: str) -> dict[str, bytes]:
        with self._lock:
            return {k: v for k, v in self._checkpoints.items() if k.startswith(prefix)}

    def write_checkpoint(self, key: str, value: bytes | None) -> None:
        with self._lock:
            if value is None:
                self._checkpoints.pop(key, None)
            else:
                self._checkpoints[key] = value


def _order_id(event: RecordedEvent) -> int:
    return event.order_id


def _version(event: RecordedEvent) -> int:
    return event.stream_version


def _select(source: Sequence[RecordedEvent], start: int, query: Query) -> list[RecordedEvent]:
    """Apply a query's remaining conditions to events already in order, from index `start`."""
    to = query.to_order_id
    types = query.event_types
    from_time = query.from_time
    limit = query.limit
    if to is None and types is None and from_time is None:
        return list(source[start : start + limit])
    found: list[RecordedEvent] = []
    for index in range(start, len(source)):
        event = source[index]
        if to is not None and event.order_id > to:
            break
        if types is not None and event.event_type not in types:
            continue
        if from_time is not None and event.event_time < from_time:
            continue
        found.append(event)
        if len(found) >= limit:
            break
    return found
