"""The contract suite, the writer lease and the server-fault test on a MongoDB-wire server.

By default the server is secantusdb (see tests/servers.py); ``PHOTON_TEST_MONGO_URL`` runs the
same tests against a real MongoDB replica set.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from photon.core.backend import Query
from photon.core.errors import StoreLocked
from photon.core.store import EventStore
from photon.testing import BackendContract, event

from .conftest import restartable
from .faults import (
    KILLED_WRITER_LEASE_SECONDS,
    open_once_the_lease_is_over,
    run_server_fault,
    writer_killed_while_holding_the_lock,
)
from .kill_trials import run_kill_trials

pytestmark = pytest.mark.mongo

KILLS = 6
"""Server kills mid-commit in CI; ``python -m benchmarks.reliability`` runs 20."""


@pytest.fixture
def mongo_config(mongo_server: Any) -> Iterator[dict[str, Any]]:
    """A store of its own on the shared server: a fresh database.

    Dropped afterwards on an external server only: secantusdb takes seconds per thousand
    documents to drop a collection, and its whole data dir goes at the end of the session anyway.
    """
    import pymongo

    name = f"t_{uuid.uuid4().hex[:12]}"
    yield {"db.backend": "mongo", "mongodb.host": mongo_server.url, "mongodb.database": name}
    if not mongo_server.external:
        return
    client: Any = pymongo.MongoClient(mongo_server.url, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(name)
    finally:
        client.close()


class TestMongo(BackendContract):
    @pytest.fixture
    def store_config(self, mongo_config: dict[str, Any]) -> dict[str, Any]:
        # The socket's limit is the larger of 30 s and mongodb.timeout.ms: the contract's append of
        # 12,000 events in one transaction took secantusdb longer than 30 s on a loaded machine.
        return dict(mongo_config, **{"mongodb.timeout.ms": "180000"})


def test_alias_and_indexes(mongo_config: dict[str, Any], mongo_server: Any) -> None:
    import pymongo

    config = dict(mongo_config, **{"db.backend": "mongodb"})
    with EventStore.open(config) as store:
        store.append(event())
    client: Any = pymongo.MongoClient(mongo_server.url)
    indexes = client[config["mongodb.database"]].events.index_information()
    client.close()
    assert indexes["stream_version"]["unique"] and indexes["event_id"]["unique"]
    assert indexes["stream_version"]["key"] == [("s", 1), ("v", 1)]


def test_category_type_and_tags_reads_walk_their_indexes(mongo_config: dict[str, Any], mongo_server: Any) -> None:
    """The find commands the backend sends for the indexed reads, explained by the server: each
    scans its own index over the key's entries only, not the collection."""
    import pymongo
    from pymongo import monitoring

    class Finds(monitoring.CommandListener):
        def __init__(self) -> None:
            self.commands: list[dict[str, Any]] = []

        def started(self, event: monitoring.CommandStartedEvent) -> None:
            if event.command_name == "find" and event.command.get("find") == "events":
                self.commands.append(dict(event.command))

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    finds = Finds()
    monitoring.register(finds)  # before the store's client is made: it sees the backend's commands
    with EventStore.open(mongo_config) as store:
        store.append(
            [
                dict(event("rare-1" if i % 10 == 0 else f"other-{i % 7}", "Rare" if i % 10 == 1 else "Common"))
                | ({"tags": ["hot"]} if i % 10 == 2 else {})
                for i in range(200)
            ]
        )
        reads = {
            "category": lambda: store.backend.read(Query(categories=frozenset({"rare"}), limit=10)),
            "event_type": lambda: store.backend.read(Query(event_types=frozenset({"Rare"}), limit=10)),
            "tags": lambda: list(store.read_matching([{"tags": ["hot"]}], limit=10)),
        }
        client: Any = pymongo.MongoClient(mongo_server.url)
        try:
            for index, read in reads.items():
                finds.commands.clear()
                assert len(read()) == 10
                (command,) = finds.commands
                command.pop("lsid", None)
                command.pop("$clusterTime", None)
                command.pop("$db", None)
                plan = client[mongo_config["mongodb.database"]].command({"explain": command})
                stage, scans = plan["queryPlanner"]["winningPlan"], []
                while stage:
                    scans.append((stage["stage"], stage.get("indexName")))
                    stage = stage.get("inputStage")
                assert ("IXSCAN", index) in scans, (index, scans)
                assert ("COLLSCAN", None) not in scans
        finally:
            client.close()


def test_a_store_from_before_the_category_index_reads_by_scanning_then_gets_the_index(
    mongo_config: dict[str, Any], mongo_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import pymongo

    with EventStore.open(mongo_config) as store:
        store.append([event(f"cart-{i % 3}" if i % 2 else f"shop-{i}", n=i) for i in range(40)])
        expected = [e for e in store.read() if e.stream_name.startswith("cart-")]
    client: Any = pymongo.MongoClient(mongo_server.url)
    events = client[mongo_config["mongodb.database"]].events
    events.update_many({}, {"$unset": {"c": ""}})  # as a store written before the category field
    events.drop_index("category")
    try:
        query = Query(categories=frozenset({"cart"}))
        reader = EventStore.open(mongo_config, read_only=True)
        try:  # a reader cannot fill it in: it answers by stream name, and says so
            assert not reader.backend._categories_ready  # type: ignore[attr-defined]
            assert reader.backend.read(query) == expected
            assert list(reader.read("__category__:cart")) == expected
        finally:
            reader.close()
        with caplog.at_level(logging.INFO, logger="photon.backends.mongo"), EventStore.open(mongo_config) as store:
            assert store.backend._categories_ready  # type: ignore[attr-defined]
            assert events.count_documents({"c": "cart"}) == len(expected)
            assert store.backend.read(query) == expected
        assert "category index complete (40 events of 23 streams)" in caplog.text
    finally:
        client.close()


def test_writer_lease_of_a_killed_writer_expires(mongo_config: dict[str, Any]) -> None:
    config = dict(mongo_config, **{"mongodb.lease.ms": str(int(KILLED_WRITER_LEASE_SECONDS * 1000))})
    writer_killed_while_holding_the_lock(config)
    with pytest.raises(StoreLocked, match=r"by pid \d+ on .*one process writes a store"):
        EventStore.open(config)
    with open_once_the_lease_is_over(config, KILLED_WRITER_LEASE_SECONDS) as store:
        (stored,) = store.append(event("killed"))
        assert stored.order_id == 2 and stored.stream_version == 2


def test_a_writer_whose_lease_was_taken_over_cannot_append(mongo_config: dict[str, Any], mongo_server: Any) -> None:
    import pymongo

    with EventStore.open(mongo_config) as store:
        store.append(event())
        client: Any = pymongo.MongoClient(mongo_server.url)
        meta = client[mongo_config["mongodb.database"]].meta
        meta.update_one({"_id": "writer"}, {"$set": {"token": "theirs", "holder": "pid 1 on elsewhere"}})
        with pytest.raises(StoreLocked, match="pid 1 on elsewhere"):
            store.append(event())
        assert [e.order_id for e in store.backend.read(Query())] == [1]
        client.close()


def test_unreachable_server_is_a_clear_error() -> None:
    from photon.core.errors import BackendUnavailable

    from .servers import free_port

    with pytest.raises(BackendUnavailable, match="mongo: cannot reach the server"):
        EventStore.open(
            {"db.backend": "mongo", "mongodb.host": f"127.0.0.1:{free_port()}", "mongodb.timeout.ms": "500"}
        )


@pytest.mark.slow
def test_server_killed_during_appends(mongo_config: dict[str, Any], mongo_server: Any) -> None:
    restartable(mongo_server)
    report = run_server_fault(mongo_config, mongo_server.kill, mongo_server.start)
    assert report.errors


@pytest.mark.slow
def test_server_killed_mid_commit_readers_end_equal_to_a_cold_read(
    mongo_config: dict[str, Any], mongo_server: Any, tmp_path: Any
) -> None:
    restartable(mongo_server)
    settings = {key: str(value) for key, value in mongo_config.items()}
    report = run_kill_trials(mongo_server, settings, kills=KILLS, work_dir=tmp_path, deadline=300)
    assert report.kills == KILLS and report.aimed == KILLS // 2
    assert report.statuses[200] > 0
