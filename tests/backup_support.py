"""Shared helpers for the backup, restore and transfer tests: a varied source store and target configs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from photon.core.backend import available_backends
from photon.core.events import RecordedEvent
from photon.core.store import EventStore

# One entry per backend a backup can be restored into: a function giving a fresh, empty store's
# configuration in a test directory. A backend registered under `photon.backends` with no entry
# here is reported as skipped by the round-trip tests, so a new backend shows up until added.
TARGET_CONFIGS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "sqlite": lambda tmp: {"db.backend": "sqlite", "sqlite.path": str(tmp / "restored.db")},
    "file": lambda tmp: {"db.backend": "file", "file.path": str(tmp / "restored.jsonl")},
    "memory": lambda tmp: {"db.backend": "memory"},
    "sql": lambda tmp: {"db.backend": "sql", "sql.url": f"sqlite:///{tmp / 'restored-sql.db'}"},
}


def registered_backends() -> list[str]:
    return sorted(available_backends())


def build_source(store: EventStore, *, streams: int = 40, per_stream: int = 30) -> None:
    """Many streams, `__config__` events, client ids, causation, deleted and re-created streams."""
    store.append_internal(
        "__config__",
        "projection-registered",
        {"projection-name": "counts", "stream-name": "__all__", "language": "python", "reduction": "s + 1"},
    )
    for round_ in range(per_stream):
        batch = [
            {
                "stream-name": f"orders-{n:03d}",
                "event-type": "Created" if round_ == 0 else "Updated",
                "payload": {"n": n, "round": round_, "text": "é\u2603", "nested": {"list": [1, 2.5, None]}},
                "service-id": "shop",
            }
            for n in range(streams)
        ]
        store.append(batch)
    store.append(
        {
            "stream-name": "audit",
            "event-type": "Seen",
            "payload": {},
            "id": "client-chosen-id-1",
            "event-time": 1_000,
            "caused-by": "x",
            "caused-by-relation": "parent",
            "schema": 2,
        }
    )
    delete_the_old_way(store, "orders-003")
    delete_the_old_way(store, "orders-007")
    store.append([{"stream-name": "orders-007", "event-type": "Reborn", "payload": {"again": True}}] * 3)
    store.append_internal("__config__", "projection-registered", {"projection-name": "latest"})
    store.append({"stream-name": "tail", "event-type": "Last", "payload": {}})


def delete_the_old_way(store: EventStore, stream: str) -> int:
    """A deletion as Photon made it before soft deletes: the events go at once and the stream
    starts again at version 1. Backups of such stores hold it, and restores still replay it."""

    def delete(committer: Any) -> int:
        removed: int = committer.backend.delete_stream(stream)
        committer.versions[stream] = 0
        return removed

    removed: int = store.in_writer(delete)
    store.append_internal("__config__", "stream-deleted", {"stream-name": stream, "deleted-events": removed})
    return removed


def backup_bytes(store: EventStore, from_order_id: int = 1) -> bytes:
    """What a cold replay of `__all__` prints: each stored event's JSON on its own line."""
    return b"".join(e.data + b"\n" for e in store.read(from_order_id=from_order_id))


def everything(store: EventStore) -> list[RecordedEvent]:
    return list(store.read())
