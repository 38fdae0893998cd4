"""A backend written outside Photon, as a third party would: only the required methods, no
optional capability declared. tests/test_backend_plugins.py registers it by entry point (a
`.dist-info` folder on the path, as `pip install` leaves) and runs `photon.testing` against it."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from photon.core.backend import Backend, Query, StoreState, StreamInfo
from photon.core.errors import IntegrityError
from photon.core.events import RecordedEvent


class ToyBackend(Backend):
    name = "toy"
    description = "a dict in process (a third-party backend for the plugin test)"
    persistent = False
    in_process = True

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.lock = threading.Lock()
        self.events: dict[int, RecordedEvent] = {}  # by order-id, inserted in order
        self.versions: dict[str, int] = {}
        self.ids: dict[str, int] = {}
        self.high_water = 0
        self.table: dict[str, bytes] = {}

    def open(self, *, writer: bool) -> StoreState:
        return StoreState(self.high_water)

    def close(self) -> None:
        pass

    def append(self, events: Sequence[RecordedEvent]) -> None:
        with self.lock:
            last, versions, ids = self.high_water, dict(self.versions), set()
            for event in events:
                if event.order_id <= last or event.event_id in self.ids or event.event_id in ids:
                    raise IntegrityError(f"toy: order-id {event.order_id} or id {event.event_id!r} is taken")
                if event.stream_version <= versions.get(event.stream_name, 0):
                    raise IntegrityError(f"toy: {event.stream_name!r} version {event.stream_version} is taken")
                last, versions[event.stream_name] = event.order_id, event.stream_version
                ids.add(event.event_id)
            for event in events:
                self.events[event.order_id] = event
                self.ids[event.event_id] = event.order_id
            self.versions, self.high_water = versions, max(last, self.high_water)

    def read(self, query: Query) -> list[RecordedEvent]:
        found: list[RecordedEvent] = []
        with self.lock:
            candidates = list(self.events.values())
        for event in candidates:
            if len(found) >= query.limit or (query.to_order_id is not None and event.order_id > query.to_order_id):
                break
            if event.order_id < query.from_order_id:
                continue
            if query.stream is not None and (
                event.stream_name != query.stream or event.stream_version < query.from_version
            ):
                continue
            if query.from_time is not None and event.event_time < query.from_time:
                continue
            if query.event_types is not None and event.event_type not in query.event_types:
                continue
            found.append(event)
        return found

    def last_order_id(self) -> int:
        return self.high_water

    def stream_versions(self, streams: Collection[str]) -> dict[str, int]:
        with self.lock:
            return {name: self.versions[name] for name in streams if name in self.versions}

    def streams(self) -> Iterator[StreamInfo]:
        with self.lock:
            return iter(sorted(StreamInfo(name, version) for name, version in self.versions.items()))

    def events_by_id(self, event_ids: Collection[str]) -> dict[str, RecordedEvent]:
        with self.lock:
            return {i: self.events[self.ids[i]] for i in event_ids if i in self.ids}

    def delete_stream(self, stream: str) -> int:
        with self.lock:
            gone = [e for e in self.events.values() if e.stream_name == stream]
            for event in gone:
                del self.events[event.order_id]
                del self.ids[event.event_id]
            self.versions.pop(stream, None)
            return len(gone)

    def read_checkpoint(self, key: str) -> bytes | None:
        return self.table.get(key)

    def write_checkpoint(self, key: str, value: bytes | None) -> None:
        with self.lock:
            if value is None:
                self.table.pop(key, None)
            else:
                self.table[key] = value
