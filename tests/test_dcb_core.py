"""The core's conditional appends and reads by query can back the `eventsourcing` library's DCB
recorder directly: a thin adapter (the shape `photon.eventsourcing` takes) passes the library's own
`DCBRecorderTestCase` on the embedded backends."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.dcb.api import (
    DCBAppendCondition,
    DCBEvent,
    DCBQuery,
    DCBReadResponse,
    DCBRecorder,
    DCBSequencedEvent,
)
from eventsourcing.dcb.tests import DCBRecorderTestCase
from eventsourcing.persistence import IntegrityError

from photon.core.append_request import AppendCondition, QueryItem
from photon.core.errors import AppendConditionFailed
from photon.core.store import EventStore


def items(query: DCBQuery | None) -> tuple[QueryItem, ...]:
    return tuple(QueryItem(frozenset(i.types), frozenset(i.tags)) for i in (query.items if query else []))


class Response(DCBReadResponse):
    def __init__(self, events: Iterator[DCBSequencedEvent], head: int | None) -> None:
        self._events, self._head = events, head

    @property
    def head(self) -> int | None:
        return self._head

    def __next__(self) -> DCBSequencedEvent:
        return next(self._events)


class CoreRecorder(DCBRecorder):
    def __init__(self, store: EventStore) -> None:
        self.store = store

    def read(self, query: DCBQuery | None = None, *, after: int | None = None, limit: int | None = None) -> Any:
        head = self.store.last_order_id()  # before the read: a safe position for a condition
        found = [
            DCBSequencedEvent(DCBEvent(e.event_type, e.payload["data"].encode("latin-1"), list(e.tags)), e.order_id)
            for e in self.store.read_matching(items(query), after=after or 0, limit=limit)
        ]
        if limit is not None:
            head = found[-1].position if found else None
        return Response(iter(found), head or None)

    def append(self, events: Sequence[DCBEvent], condition: DCBAppendCondition | None = None) -> int:
        batch = [
            {"stream-name": "dcb", "event-type": e.type, "payload": {"data": e.data.decode("latin-1")}, "tags": e.tags}
            for e in events
        ]
        photon_condition = (
            AppendCondition(items(condition.fail_if_events_match), condition.after or 0) if condition else None
        )
        try:
            return self.store.append(batch, condition=photon_condition)[-1].order_id
        except AppendConditionFailed as exc:
            raise IntegrityError(str(exc)) from exc

    def subscribe(self, query: DCBQuery | None = None, *, after: int | None = None) -> Any:
        raise NotImplementedError


@pytest.mark.parametrize("backend", ["memory", "sqlite", "file"])
def test_the_libraries_dcb_recorder_test_case_passes(backend: str, tmp_path: Path) -> None:
    config = {"db.backend": backend, "sqlite.path": str(tmp_path / "s.db"), "file.path": str(tmp_path / "s.jsonl")}
    with EventStore.open(config) as store:
        case = DCBRecorderTestCase()
        case._test_append_read(CoreRecorder(store))
