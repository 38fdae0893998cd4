"""The contract suite, the writer lease and the server-fault test on a real Cassandra server.

One Cassandra node serves the whole session (it takes seconds to start); every test gets a
keyspace of its own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from photon.core.backend import Query
from photon.core.errors import StoreLocked
from photon.core.store import EventStore
from photon.testing import BackendContract, event

from .conftest import restartable
from .faults import run_server_fault, writer_killed_while_holding_the_lock
from .kill_trials import run_kill_trials

pytestmark = pytest.mark.cassandra

KILLS = 2
"""Server kills mid-commit in CI; ``python -m benchmarks.reliability`` runs 20. A Cassandra node
takes about 30 s to start again, so CI kills it twice."""


def _session(server: Any) -> Any:
    from cassandra.cluster import Cluster

    cluster = Cluster([server.host], port=server.port, protocol_version=3)
    return cluster, cluster.connect()


@pytest.fixture
def cassandra_config(cassandra_server: Any) -> Iterator[dict[str, Any]]:
    """A store of its own on the shared node: a fresh keyspace, dropped afterwards."""
    keyspace = f"t_{uuid.uuid4().hex[:12]}"
    yield {
        "db.backend": "cassandra",
        "cassandra.ip": cassandra_server.host,
        "cassandra.port": str(cassandra_server.port),
        "cassandra.keyspace": keyspace,
        "cassandra.replication": "{'class': 'SimpleStrategy', 'replication_factor': 1}",
    }
    cluster, session = _session(cassandra_server)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
    finally:
        cluster.shutdown()


class TestCassandra(BackendContract):
    @pytest.fixture
    def store_config(self, cassandra_config: dict[str, Any]) -> dict[str, Any]:
        return cassandra_config


def test_rows_of_a_batch_whose_head_never_moved_stay_invisible(cassandra_config: dict[str, Any]) -> None:
    """A batch written but never committed (the head did not move) is not read, and its
    order-ids, versions and ids are given again afterwards."""
    with EventStore.open(cassandra_config) as store:
        (first,) = store.append(dict(event("a"), id="one"))
        backend: Any = store.backend
        ghost = [
            first._replace(order_id=2, stream_version=2, event_id="ghost-a"),
            first._replace(order_id=3, stream_name="b", stream_version=1, event_id="ghost-b"),
        ]
        # Write the rows the way an append does, but stop before the head moves.
        ps = backend._ps
        work: list[tuple[Any, Any]] = []
        for e in ghost:
            work.append((ps["insert_all"], (e.order_id // 10_000, *e)))
            work.append((ps["insert_index"], (e.stream_name, 0, e.stream_version, e.order_id)))
            work.append((ps["insert_id"], (e.event_id, e.order_id, e.stream_name, e.stream_version)))
            work.append((ps["set_stream"], (e.stream_name, e.stream_version, e.order_id)))
            for kind, key in (("c", e.stream_name), ("t", e.event_type)):
                work.append((ps["insert_read_index"], (kind, key, 0, e.order_id)))
                work.append((ps["insert_read_bucket"], (kind, key, 0)))
        backend._concurrent(work)
        assert [e.event_id for e in store.read()] == ["one"]
        # Nor through the read indexes: their rows above the head are not read.
        assert backend.read(Query(categories=frozenset({"b"}))) == []
        assert [e.event_id for e in backend.read(Query(event_types=frozenset({first.event_type})))] == ["one"]
        assert list(store.read("b")) == []
        assert store.stream_version("a") == 1 and store.stream_version("b") == 0
        assert store.get_event("ghost-a") is None
        assert [(s.stream_name, s.total_events) for s in store.streams()] == [("a", 1)]
        # The next append reuses order-id 2 for another stream: the ghost of "a" v2 stays out.
        (second,) = store.append(dict(event("c"), id="ghost-a"))
        assert second.order_id == 2 and second.stream_version == 1
        assert [e.event_id for e in store.read("a")] == ["one"]
        (third,) = store.append(event("a"))
        assert third.order_id == 3 and third.stream_version == 2
        assert [e.order_id for e in store.read("a")] == [1, 3]
        # The ghost's category row at order-id 2 now points at an event of "c": checked, and skipped.
        assert [e.order_id for e in backend.read(Query(categories=frozenset({"a"})))] == [1, 3]
        assert [e.order_id for e in backend.read(Query(categories=frozenset({"c"})))] == [2]


def test_a_store_from_before_the_read_indexes_reads_by_scanning_then_gets_them(
    cassandra_config: dict[str, Any], cassandra_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    with EventStore.open(cassandra_config) as store:
        store.append(
            [
                dict(
                    event(f"cart-{i % 3}" if i % 2 else f"shop-{i}", "Rare" if i % 5 == 0 else "Common"),
                    tags=[f"t{i % 4}"],
                )
                for i in range(40)
            ]
        )
        everything = list(store.read())
    cluster, session = _session(cassandra_server)
    keyspace = cassandra_config["cassandra.keyspace"]
    for table in ("read_index", "read_index_buckets", "read_index_state"):  # as a store from before them
        session.execute(f"TRUNCATE {keyspace}.{table}", timeout=60)
    carts = [e for e in everything if e.stream_name.startswith("cart-")]
    rare = [e for e in everything if e.event_type == "Rare"]
    tagged = [e for e in everything if e.order_id % 4 == 2]
    try:
        with EventStore.open(cassandra_config, read_only=True) as reader:  # cannot build them: scans
            assert not reader.backend._indexed  # type: ignore[attr-defined]
            assert reader.backend.read(Query(categories=frozenset({"cart"}))) == carts
            assert list(reader.read_matching([{"tags": ["t1"]}])) == tagged
        with (
            caplog.at_level(logging.INFO, logger="photon.backends.cassandra"),
            EventStore.open(cassandra_config) as store,
        ):
            assert store.backend._indexed  # type: ignore[attr-defined]
            rows = session.execute(
                f"SELECT order_id FROM {keyspace}.read_index WHERE kind = 'c' AND key = 'cart' AND bucket = 0"
            )
            assert sorted(r.order_id for r in rows) == [e.order_id for e in carts]
            assert store.backend.read(Query(categories=frozenset({"cart"}))) == carts
            assert store.backend.read(Query(event_types=frozenset({"Rare"}))) == rare
            assert list(store.read_matching([{"tags": ["t1"]}])) == tagged
        assert "read indexes: 40 of 40 events" in caplog.text
    finally:
        cluster.shutdown()


def test_writer_lease_of_a_killed_writer_expires(cassandra_config: dict[str, Any]) -> None:
    config = dict(cassandra_config, **{"cassandra.lease.ms": "2000"})
    writer_killed_while_holding_the_lock(config)
    with pytest.raises(StoreLocked, match=r"by pid \d+ on .*one process writes a store"):
        EventStore.open(config)
    time.sleep(2.5)
    with EventStore.open(config) as store:
        (stored,) = store.append(event("killed"))
        assert stored.order_id == 2 and stored.stream_version == 2


def test_a_writer_whose_lease_was_taken_over_cannot_append(cassandra_config: dict[str, Any]) -> None:
    with EventStore.open(cassandra_config) as store:
        store.append(event())
        backend: Any = store.backend
        # Another process takes the head over (what a new writer does once the lease expired).
        backend._session.execute(backend._ps["claim_head"], ("theirs", "store", backend._token))
        with pytest.raises(StoreLocked, match="another writer took the store over"):
            store.append(event())
        assert [e.order_id for e in store.backend.read(Query())] == [1]


def test_bad_settings_are_refused() -> None:
    from photon.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"cassandra\.replication"):
        EventStore.open({"db.backend": "cassandra", "cassandra.replication": "{'replication_factor': 1}; DROP"})
    with pytest.raises(ConfigError, match=r"cassandra\.keyspace"):
        EventStore.open({"db.backend": "cassandra", "cassandra.keyspace": "bad-name"})


def test_unreachable_server_is_a_clear_error() -> None:
    from photon.core.errors import BackendUnavailable

    from .servers import free_port

    with pytest.raises(BackendUnavailable, match="cassandra: cannot complete the request"):
        EventStore.open({"db.backend": "cassandra", "cassandra.port": str(free_port())})


@pytest.mark.slow
def test_server_killed_during_appends(cassandra_config: dict[str, Any], cassandra_server: Any) -> None:
    restartable(cassandra_server)
    report = run_server_fault(cassandra_config, cassandra_server.kill, cassandra_server.start, deadline=240)
    assert report.errors


@pytest.mark.slow
def test_server_killed_mid_commit_readers_end_equal_to_a_cold_read(
    cassandra_config: dict[str, Any], cassandra_server: Any, tmp_path: Any
) -> None:
    restartable(cassandra_server)
    settings = {key: str(value) for key, value in cassandra_config.items()}
    report = run_kill_trials(cassandra_server, settings, kills=KILLS, work_dir=tmp_path, deadline=300)
    assert report.kills == KILLS and report.aimed == KILLS // 2
    assert report.statuses[200] > 0
