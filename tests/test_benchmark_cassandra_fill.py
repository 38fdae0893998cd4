"""The category-read benchmark's raw fill of Cassandra (`benchmarks.cassandra_fill`): the stores it
writes partition by partition read back as the ones appends build, so its figures hold for real stores."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import cassandra_fill
from photon.core.events import RecordedEvent


def configs(server: Any) -> Any:
    def config_for(name: str) -> dict[str, str]:
        return {
            "db.backend": "cassandra",
            "cassandra.ip": server.host,
            "cassandra.port": str(server.port),
            "cassandra.keyspace": f"bench_{name}",
        }

    return config_for


def test_a_store_filled_raw_reads_back_as_one_filled_by_appends(cassandra_server: Any) -> None:
    assert cassandra_fill.check_same_as_appends(configs(cassandra_server), size=6000) > 0


def test_the_check_fails_when_the_rows_differ(cassandra_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    made = cassandra_fill.events

    def without_tags(start: int, end: int, size: int, versions: dict[str, int]) -> list[RecordedEvent]:
        # Events written without their tag: their rows and the tags read differ from the appends'.
        return [e._replace(data=e.data.replace(b',"tags":["hot"]', b"")) for e in made(start, end, size, versions)]

    monkeypatch.setattr(cassandra_fill, "events", without_tags)
    with pytest.raises(AssertionError):
        cassandra_fill.check_same_as_appends(configs(cassandra_server), size=6000)
