"""Contract: streams over their lifetime: metadata, soft and hard delete, scavenging, redaction.

Part of the backend contract suite (`BackendContract` inherits it): every backend passes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from photon.core.errors import NotFound, StreamDeleted, ValidationError, VersionConflict
from photon.core.events import CONFIG_STREAM, METADATA_STREAM, now_millis
from photon.core.store import EventStore
from photon.core.subscriptions import CaughtUp
from photon.ops.restore import restore
from photon.testing.base import ContractBase


def ev(stream: str, n: int = 0, **extra: Any) -> dict[str, Any]:
    return {"stream-name": stream, "event-type": "Happened", "payload": {"n": n}, **extra}


def versions(store: EventStore, stream: str) -> list[int]:
    return [e.stream_version for e in store.read(stream)]


def in_all(store: EventStore, stream: str) -> list[int]:
    return [e.stream_version for e in store.read() if e.stream_name == stream]


class LifetimeContract(ContractBase):
    def test_max_count_and_truncate_before_hide_at_once_and_all_sees_until_scavenged(self, store: EventStore) -> None:
        self.requires(store, "scavenging")
        store.append([ev("a", i) for i in range(10)])
        store.append([ev("b", i) for i in range(10)])
        store.set_stream_metadata("a", {"max-count": 3, "owner": "team-x"})
        store.set_stream_metadata("b", {"truncate-before": 8})
        assert versions(store, "a") == [8, 9, 10]
        assert versions(store, "b") == [8, 9, 10]
        assert [e.stream_version for e in store.read("a", from_version=9)] == [9, 10]
        assert in_all(store, "a") == list(range(1, 11))  # __all__ readers see them until a scavenge
        assert store.stream_metadata("a").user == {"owner": "team-x"}
        store.append(ev("a", 10))
        assert versions(store, "a") == [9, 10, 11]  # max-count follows the stream
        last = store.last_order_id()

        report = store.scavenge()
        assert report.removed == 8 + 7
        assert in_all(store, "a") == [9, 10, 11] and in_all(store, "b") == [8, 9, 10]
        assert store.stream_version("a") == 11
        assert store.append(ev("a"))[0].stream_version == 12  # numbering goes on
        assert store.last_order_id() > last
        again = store.scavenge()  # nothing left to do: running it again is harmless
        assert again.removed == 1  # version 9 fell out of the newest three with version 12

    def test_max_age_hides_expired_events(self, store: EventStore) -> None:
        self.requires(store, "scavenging")
        old = now_millis() - 3_600_000
        store.append([ev("c", i, **{"event-time": old}) for i in range(3)])
        store.append([ev("c", 9)])
        store.set_stream_metadata("c", {"max-age": 60})
        assert versions(store, "c") == [4]
        assert len(in_all(store, "c")) == 4
        assert store.scavenge().removed == 3
        assert in_all(store, "c") == [4]

    def test_subscriptions_and_backward_reads_follow_metadata(self, store: EventStore) -> None:
        store.append([ev("d", i) for i in range(6)])
        store.set_stream_metadata("d", {"max-count": 2})
        with store.subscribe("d", "hot-cold") as subscription:
            items = [subscription.get(5), subscription.get(5), subscription.get(5)]
        assert [i.stream_version for i in items[:2]] == [5, 6]  # type: ignore[union-attr]
        assert isinstance(items[2], CaughtUp)
        assert [e.stream_version for e in store.read_backward("d")] == [6, 5]

    def test_bad_metadata_is_refused(self, store: EventStore) -> None:
        bad: Any
        for bad, message in [
            ({"max-count": 0}, "'max-count' must be a whole number from 1 "),
            ({"max-age": "1h"}, "'max-age' must be a whole number"),
            ({"truncate-before": -2}, "'truncate-before'"),
            ({"tombstone": True}, "hard delete"),
            ([], "must be a JSON object"),
        ]:
            with pytest.raises(ValidationError, match=message):
                store.set_stream_metadata("e", bad)
        with pytest.raises(ValidationError, match="internal"):
            store.set_stream_metadata("__config__", {})
        assert store.stream_metadata("e").to_json() == {}
        assert list(store.read(METADATA_STREAM)) == []

    def test_soft_delete_reads_as_gone_and_writing_again_continues_the_numbering(self, store: EventStore) -> None:
        self.requires(store, "scavenging")
        store.append([ev("f", i) for i in range(4)])
        assert store.delete_stream("f") == 4
        assert versions(store, "f") == []
        assert not store.stream_exists("f")
        assert "f" not in [s.stream_name for s in store.streams()]
        assert len(in_all(store, "f")) == 4  # until scavenged
        with pytest.raises(NotFound):
            store.delete_stream("f")
        deleted = [e.payload for e in store.read(CONFIG_STREAM) if e.event_type == "stream-deleted"]
        assert deleted == [{"stream-name": "f", "deleted-events": 4, "mode": "soft"}]

        again = store.append(ev("f", 9), expected_version="no-stream")  # the stream is gone: no-stream holds
        assert again[0].stream_version == 5
        assert versions(store, "f") == [5] and store.stream_exists("f")
        with pytest.raises(VersionConflict):
            store.append(ev("f"), expected_version="no-stream")
        assert store.scavenge().removed == 4
        assert in_all(store, "f") == [5]

    def test_hard_delete_is_a_tombstone(self, store: EventStore) -> None:
        self.requires(store, "scavenging")
        store.append([ev("g", i) for i in range(3)])
        assert store.delete_stream("g", hard=True) == 3
        with pytest.raises(StreamDeleted, match="can never be written again"):
            store.append(ev("g"))
        with pytest.raises(StreamDeleted):
            store.append([ev("other"), ev("g")])  # nothing of a batch touching it
        with pytest.raises(StreamDeleted):
            store.set_stream_metadata("g", {})
        with pytest.raises(StreamDeleted):
            store.delete_stream("g")
        assert store.stream_version("other") == 0
        assert store.stream_metadata("g").tombstone
        store.scavenge()
        assert in_all(store, "g") == ([3] if self.scavenge_keeps_newest else [])
        with pytest.raises(StreamDeleted):
            store.append(ev("g"))

    def test_a_soft_deleted_stream_can_be_hard_deleted(self, store: EventStore) -> None:
        store.append(ev("h"))
        store.delete_stream("h")
        store.delete_stream("h", hard=True)
        with pytest.raises(StreamDeleted):
            store.append(ev("h"))

    def test_scavenge_never_frees_order_ids(self, store: EventStore, store_config: dict[str, Any]) -> None:
        self.requires(store, "scavenging")
        store.append([ev("keep")] + [ev("last", i) for i in range(5)])
        store.delete_stream("last", hard=True)
        store.scavenge()
        top = store.last_order_id()  # the scavenge's own __config__ event, after the removed ones
        assert [e.event_type for e in store.read(CONFIG_STREAM)][-1] == "scavenged"
        if self.persistent:
            store = self.reopen(store, store_config)
        try:
            assert store.last_order_id() == top
            assert store.append(ev("keep"))[0].order_id > top
            with pytest.raises(StreamDeleted):  # the tombstone is kept through a restart
                store.append(ev("last"))
        finally:
            store.close()

    def test_redaction_replaces_payloads_and_keeps_everything_else(self, store: EventStore) -> None:
        self.requires(store, "redaction")
        stored = store.append([ev("person-1", i, tags=["person:1"]) for i in range(3)] + [ev("person-2", 7)])
        assert store.redact(stream="person-1", reason="erasure request") == 3
        after = list(store.read("person-1"))
        assert [e.payload["redacted"] for e in after] == [True, True, True]
        assert after[0].payload["reason"] == "erasure request"
        assert [(e.order_id, e.event_id, e.event_type, e.stream_version, e.tags) for e in after] == [
            (e.order_id, e.event_id, e.event_type, e.stream_version, ("person:1",)) for e in stored[:3]
        ]
        assert [e.payload for e in store.read("person-2")] == [{"n": 7}]
        assert store.get_event(stored[0].event_id).payload["redacted"] is True  # type: ignore[union-attr]
        assert store.redact(event_ids=[stored[3].event_id]) == 1
        assert store.get_event(stored[3].event_id).payload["redacted"] is True  # type: ignore[union-attr]
        told = [e.payload for e in store.read(CONFIG_STREAM) if e.event_type == "events-redacted"]
        assert told[0]["stream-name"] == "person-1" and told[1]["order-ids"] == [stored[3].order_id]
        with pytest.raises(NotFound):
            store.redact(event_ids=["no-such-id"])
        with pytest.raises(ValidationError):
            store.redact(stream="person-1", event_ids=[stored[0].event_id])
        with pytest.raises(ValidationError):
            store.redact(stream="__config__")
        store.scavenge()
        assert all(b'"n":' not in e.data for e in store.read("person-1"))

    def test_backup_after_scavenge_restores_with_its_gaps(self, store: EventStore, tmp_path: Path) -> None:
        self.requires(store, "scavenging")
        self.requires(store, "redaction")
        store.append([ev("r", i, tags=["t"]) for i in range(6)])
        store.append([ev("gone", i) for i in range(2)])
        store.set_stream_metadata("r", {"max-count": 2, "k": "v"})
        store.delete_stream("gone", hard=True)
        store.append(ev("s"))
        store.redact(event_ids=[next(iter(store.read("s"))).event_id])
        store.scavenge()
        lines = [e.data + b"\n" for e in store.read()]
        for config in ({"db.backend": "memory"}, {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "r.db")}):
            with EventStore.open(config) as target:
                restore(target, lambda: iter(lines))
                assert [e.data for e in target.read()] == [line[:-1] for line in lines]
                assert versions(target, "r") == [5, 6]
                assert target.stream_metadata("r").user == {"k": "v"}
                assert next(iter(target.read("s"))).payload["redacted"] is True
                assert [e.stream_version for e in target.read_matching([{"tags": ["t"]}])] == [5, 6]
                with pytest.raises(StreamDeleted):
                    target.append(ev("gone"))
                assert target.append(ev("r"))[0].stream_version == 7
