"""The contract suite, the writer lease and the server-fault test on a real Cassandra server.

One Cassandra node serves the whole session (it takes seconds to start); every test gets a
keyspace of its own.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from photon.core.backend import Query
from photon.core.errors import StoreLocked
from photon.core.store import EventStore
from photon.testing import BackendContract, event
from photon.testing.indexes import IndexContract

from .conftest import restartable
from .faults import (
    KILLED_WRITER_LEASE_SECONDS,
    open_once_the_lease_is_over,
    run_server_fault,
    writer_killed_while_holding_the_lock,
)
from .kill_trials import run_kill_trials

pytestmark = pytest.mark.cassandra

KILLS = 2
"""Server kills mid-commit in CI; ``python -m benchmarks.reliability`` runs 20. A Cassandra node
takes about 30 s to start again, so CI kills it twice."""


def _session(server: Any) -> Any:
    from cassandra.cluster import Cluster

    cluster = Cluster([server.host], port=server.port, protocol_version=3)
    return cluster, cluster.connect()


def _session_of(config: dict[str, Any]) -> Any:
    from cassandra.cluster import Cluster

    cluster = Cluster([config["cassandra.ip"]], port=int(config["cassandra.port"]), protocol_version=3)
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


class TestCassandraSmallParts(IndexContract):
    """The index contract with parts of 4 rows: reads, deletes, scavenges and redactions across parts."""

    scavenge_keeps_newest = TestCassandra.scavenge_keeps_newest

    @pytest.fixture
    def store_config(self, cassandra_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        from photon_backends import cassandra

        monkeypatch.setattr(cassandra, "PART_ENTRIES", 4)
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
        stamp = backend._stamp()
        work: list[tuple[Any, Any]] = []
        for e in ghost:
            work.append((ps["insert_all"], (e.order_id // 10_000, *e, stamp)))
            work.append((ps["insert_index"], (e.stream_name, 0, e.stream_version, e.order_id, stamp)))
            work.append((ps["insert_id"], (e.event_id, e.order_id, e.stream_name, e.stream_version, stamp)))
            work.append((ps["set_stream"], (e.stream_name, e.stream_version, e.order_id, stamp)))
            for kind, key in (("c", e.stream_name), ("t", e.event_type)):
                # Each key's part begun by this batch, above the head (as once a part is full).
                work.append(
                    (ps["insert_key_index"], (kind, key, e.order_id, e.order_id, backend._epoch, *e[1:], stamp))
                )
                work.append((ps["set_part"], (kind, key, e.order_id, 1, backend._epoch, stamp)))
        # And a row with a copy of ghost-a in category a's part, the one a committed batch writes on in.
        work.append((ps["insert_key_index"], ("c", "a", 1, 2, backend._epoch, *ghost[0][1:], stamp)))
        backend._concurrent(work)
        backend._forget()  # as the append whose head update failed does
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
        # The ghost's category row at order-id 2 (its copy stamped with the epoch the failure
        # ended) now points at an event of "c": checked against events_all, and skipped.
        assert [e.order_id for e in backend.read(Query(categories=frozenset({"a"})))] == [1, 3]
        assert [e.order_id for e in backend.read(Query(categories=frozenset({"c"})))] == [2]
        assert [e.order_id for e in backend.read(Query(event_types=frozenset({first.event_type})))] == [1, 2, 3]
        # The event type's parts begun above the head were removed before its next row was written.
        assert _parts(backend, "t", first.event_type) == [(1, 3)]


def _parts(backend: Any, kind: str, key: str) -> list[tuple[int, int]]:
    """A key's key_index parts: (first order-id, entries)."""
    rows = backend._session.execute(
        "SELECT part, entries FROM key_index_parts WHERE kind = %s AND key = %s", (kind, key)
    )
    return [(r.part, r.entries) for r in rows]


def _counting(backend: Any) -> dict[str, int]:
    """Count the key-index requests the backend sends, by statement name."""
    counts: dict[str, int] = {}
    run = backend._run

    def counted(name: str, params: Any, **kwargs: Any) -> list[Any]:
        counts[name] = counts.get(name, 0) + 1
        return list(run(name, params, **kwargs))

    backend._run = counted
    return counts


def test_a_keys_rows_fill_parts_of_their_own_however_spread_its_events_are(
    cassandra_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key's rows go into parts of PART_ENTRIES rows each, whatever lies between its events in
    the store: a read of a key costs the same requests in a store ten times the size."""
    from photon_backends import cassandra

    monkeypatch.setattr(cassandra, "PART_ENTRIES", 5)
    requests: dict[int, dict[str, int]] = {}
    for size in (300, 3000):
        config = dict(cassandra_config, **{"cassandra.keyspace": f"{cassandra_config['cassandra.keyspace']}_{size}"})
        every = size // 12
        try:
            with EventStore.open(config) as store:
                batch = [
                    event("rare-1" if i % every == 0 else f"other-{i % 7}", "Rare" if i % every == 1 else "Common")
                    for i in range(size)
                ]
                for start in range(0, size, 500):
                    store.append(batch[start : start + 500])
                backend: Any = store.backend
                rare = [e.order_id for e in store.read() if e.stream_name == "rare-1"]
                assert _parts(backend, "c", "rare") == [(rare[0], 5), (rare[5], 5), (rare[10], 2)]
                counts = _counting(backend)
                found = backend.read(Query(categories=frozenset({"rare"}), from_order_id=rare[3], limit=4))
                assert [e.order_id for e in found] == rare[3:7]  # across the first two parts
                assert [e.order_id for e in backend.read(Query(event_types=frozenset({"Rare"})))] == [
                    o + 1 for o in rare
                ]
                requests[size] = {k: v for k, v in counts.items() if k in ("part_at", "parts_after", "key_index_range")}
        finally:
            cluster, session = _session_of(config)
            with contextlib.suppress(Exception):
                session.execute(f"DROP KEYSPACE IF EXISTS {config['cassandra.keyspace']}", timeout=60)
            cluster.shutdown()
    assert requests[300] == requests[3000], requests


def test_a_store_of_the_order_id_bucketed_index_is_reindexed_by_key_when_a_writer_opens_it(
    cassandra_config: dict[str, Any], cassandra_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The upgrade from the read_index layout (partitioned by order-id bucket): a reader scans
    until a writer has built the key index from events_all, then reads it; an older writer
    appending without the key index later makes readers scan and the next writer build it again."""
    import logging

    def fill(store: EventStore, start: int) -> None:
        store.append(
            [
                dict(
                    event(f"cart-{i % 3}" if i % 2 else f"shop-{i}", "Rare" if i % 5 == 0 else "Common"),
                    tags=[f"t{i % 4}"],
                )
                for i in range(start, start + 40)
            ]
        )

    with EventStore.open(cassandra_config) as store:
        fill(store, 0)
    cluster, session = _session(cassandra_server)
    keyspace = cassandra_config["cassandra.keyspace"]

    def as_the_old_layout_leaves_it() -> None:
        # What a store of the layout before has: events, no key index, read_index_state 'store' complete.
        for table in ("key_index", "key_index_parts", "read_index_state"):
            session.execute(f"TRUNCATE {keyspace}.{table}", timeout=60)
        session.execute(f"INSERT INTO {keyspace}.read_index_state (id, built_to, complete) VALUES ('store', 40, true)")

    def check(store: EventStore, indexed: bool) -> None:
        everything = list(store.read())
        assert store.backend._indexed is indexed  # type: ignore[attr-defined]
        carts = [e for e in everything if e.stream_name.startswith("cart-")]
        assert store.backend.read(Query(categories=frozenset({"cart"}))) == carts
        rare = [e for e in everything if e.event_type == "Rare"]
        assert store.backend.read(Query(event_types=frozenset({"Rare"}))) == rare
        tagged = [e for e in everything if (e.order_id - 1) % 4 == 1]
        assert list(store.read_matching([{"tags": ["t1"]}])) == tagged

    try:
        as_the_old_layout_leaves_it()
        with EventStore.open(cassandra_config, read_only=True) as reader:  # cannot build it: scans
            check(reader, indexed=False)
        with (
            caplog.at_level(logging.INFO, logger="photon.backends.cassandra"),
            EventStore.open(cassandra_config) as store,
        ):
            check(store, indexed=True)
            rows = session.execute(
                f"SELECT order_id FROM {keyspace}.key_index WHERE kind = 'c' AND key = 'cart' AND part = 2"
            )
            assert [r.order_id for r in rows] == list(range(2, 41, 2))
            fill(store, 40)
            check(store, indexed=True)
        assert "key index: 40 of 40 events" in caplog.text
        old = session.execute(f"SELECT complete FROM {keyspace}.read_index_state WHERE id = 'store'").one()
        assert old.complete is False  # an older reader scans rather than read an index no longer written
        # An older writer opens it again, builds its own index (marking it complete) and appends
        # events the key index does not have.
        session.execute(f"UPDATE {keyspace}.read_index_state SET complete = true WHERE id = 'store'")
        session.execute(f"TRUNCATE {keyspace}.key_index", timeout=60)
        with EventStore.open(cassandra_config, read_only=True) as reader:
            check(reader, indexed=False)
        with EventStore.open(cassandra_config) as store:
            check(store, indexed=True)
    finally:
        cluster.shutdown()


def test_writer_lease_of_a_killed_writer_expires(cassandra_config: dict[str, Any]) -> None:
    config = dict(cassandra_config, **{"cassandra.lease.ms": str(int(KILLED_WRITER_LEASE_SECONDS * 1000))})
    writer_killed_while_holding_the_lock(config)
    with pytest.raises(StoreLocked, match=r"by pid \d+ on .*one process writes a store"):
        EventStore.open(config)
    with open_once_the_lease_is_over(config, KILLED_WRITER_LEASE_SECONDS) as store:
        (stored,) = store.append(event("killed"))
        assert stored.order_id == 2 and stored.stream_version == 2


def test_a_writer_whose_lease_was_taken_over_cannot_append(cassandra_config: dict[str, Any]) -> None:
    with EventStore.open(cassandra_config) as store:
        store.append(event())
        backend: Any = store.backend
        # Another process takes the head over (what a new writer does once the lease expired).
        head = backend._head_row(serial=True)
        backend._session.execute(
            backend._ps["claim_head"], ("theirs", head.epoch + 1, "store", backend._token, head.last_order_id)
        )
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


def test_a_new_writer_does_not_trust_copies_a_dead_writer_left_above_the_head(cassandra_config: dict[str, Any]) -> None:
    """A writer that died between writing its rows and moving the head leaves index rows with
    copies of events that were never committed; the next writer's epoch begins at the head, so
    those copies are checked against events_all once their order-ids hold other events."""
    with EventStore.open(cassandra_config) as store:
        (first,) = store.append(event("a-1", "Kept"))
        backend: Any = store.backend
        dead_epoch = backend._epoch
        ghost = first._replace(order_id=2, stream_version=2, event_id="ghost", event_type="Ghost")
        stamp = backend._stamp()
        backend._concurrent(
            [
                (backend._ps["insert_key_index"], ("c", "a", 1, 2, dead_epoch, *ghost[1:], stamp)),
                (backend._ps["insert_key_index"], ("t", "Kept", 1, 2, dead_epoch, *ghost[1:], stamp)),
            ]
        )
    with EventStore.open(cassandra_config) as store:
        backend = store.backend
        assert backend._epoch > dead_epoch
        (second,) = store.append(event("b-1", "Other"))
        assert second.order_id == 2
        assert [e.event_id for e in backend.read(Query(categories=frozenset({"a"})))] == [first.event_id]
        assert [e.event_id for e in backend.read(Query(event_types=frozenset({"Kept"})))] == [first.event_id]
        assert [e.event_id for e in backend.read(Query(categories=frozenset({"b"})))] == [second.event_id]


def test_index_reads_use_the_copies_and_fall_back_for_rows_without_one(cassandra_config: dict[str, Any]) -> None:
    """A category, event-type or tags read of committed events sends no events_all request; rows
    written before the copies (no copy, no epoch) are read through events_all."""
    with EventStore.open(cassandra_config) as store:
        stored = store.append(
            [dict(event(f"cat-{i % 3}", "Odd" if i % 2 else "Even"), tags=[f"t{i % 2}"]) for i in range(30)]
        )
        backend: Any = store.backend
        expected = {
            "category": [e for e in stored if e.stream_name.startswith("cat-")],
            "type": [e for e in stored if e.event_type == "Odd"],
            "tags": [e for e in stored if e.event_type == "Even"],
        }

        def reads() -> dict[str, list[Any]]:
            return {
                "category": backend.read(Query(categories=frozenset({"cat"}))),
                "type": backend.read(Query(event_types=frozenset({"Odd"}))),
                "tags": list(store.read_matching([{"tags": ["t0"]}])),
            }

        fetched: list[int] = []  # the order-ids read from events_all
        events_at = backend._events_at

        def counted(orders: Any, head: int) -> Any:
            orders = list(orders)
            fetched.extend(orders)
            return events_at(orders, head)

        backend._events_at = counted
        assert reads() == expected
        assert fetched == []
        # As a store written before the copies has them: no copy, no epoch.
        for order in range(1, 6):
            backend._session.execute(
                "UPDATE key_index SET epoch = null, data = null WHERE kind = 'c' AND key = 'cat' AND part = 1 "
                "AND order_id = %s",
                (order,),
            )
        for e in expected["type"]:
            backend._session.execute(
                "UPDATE key_index SET epoch = null WHERE kind = 't' AND key = 'Odd' AND part = 2 AND order_id = %s",
                (e.order_id,),
            )
        assert reads() == expected
        assert sorted(fetched) == sorted([1, 2, 3, 4, 5] + [e.order_id for e in expected["type"]])


def test_a_redacted_payload_survives_in_no_copy(cassandra_config: dict[str, Any]) -> None:
    """A redaction replaces the event's copy in every key_index row (category, type and each tag)."""
    with EventStore.open(cassandra_config) as store:
        told, _other = store.append(
            [dict(event("secret-1", "Told", words="the secret"), tags=["x", "y"]), event("other-1")]
        )
        assert store.redact(stream="secret-1", reason="erasure") == 1
        backend: Any = store.backend
        copies = list(backend._session.execute("SELECT kind, key, event_id, data FROM key_index"))
        assert sorted((r.kind, r.key) for r in copies if r.event_id == told.event_id and b"redacted" in r.data) == [
            ("c", "secret"),
            ("g", "x"),
            ("g", "y"),
            ("t", "Told"),
        ]
        assert not [r for r in copies if r.data and b"the secret" in r.data]
        (read,) = backend.read(Query(categories=frozenset({"secret"})))
        assert b"the secret" not in read.data and b"redacted" in read.data
        assert list(store.read_matching([{"tags": ["y"]}])) == [read]


def test_writer_epochs_trust_rows_only_where_no_later_epoch_began() -> None:
    from photon_backends._writer_epochs import Epoch, WriterEpochs

    epochs = WriterEpochs()
    assert epochs.stale(1) and not epochs.stale(None)
    epochs.load([Epoch(2, 100, "w2"), Epoch(1, 0, "w1")])
    assert not epochs.stale(2) and epochs.stale(3)
    trusted = epochs.judge(2, "w2")
    assert trusted(100, 1) and not trusted(101, 1)  # epoch 2 began at 100: epoch 1's rows above it may be leftovers
    assert trusted(5_000, 2)
    assert not trusted(5, None) and not trusted(5, 7)  # no epoch (older rows), an unknown one: checked
    # The head names an epoch not recorded yet, or a writer other than the one that claimed it.
    assert not epochs.judge(3, "w3")(5_000, 2) and epochs.judge(3, "w3")(100, 1)
    assert not epochs.judge(2, "someone-else")(5_000, 2)


def test_a_store_written_before_the_copies_gains_them_and_is_read_through_events_all(
    cassandra_config: dict[str, Any], cassandra_server: Any
) -> None:
    """A store whose key_index has no copies and whose head no epoch: opened, it gains the
    columns; its old rows are read through events_all, the new ones from their copies."""

    def tagged(start: int) -> list[dict[str, Any]]:
        return [
            dict(event(f"old-{i % 3}", "Odd" if i % 2 else "Even"), tags=[f"t{i % 2}"])
            for i in range(start, start + 20)
        ]

    with EventStore.open(cassandra_config) as store:
        store.append(tagged(0))
    cluster, session = _session(cassandra_server)
    keyspace = cassandra_config["cassandra.keyspace"]
    try:
        for column in ("epoch", "stream", "version", "event_id", "event_type", "event_time", "data"):
            session.execute(f"ALTER TABLE {keyspace}.key_index DROP {column}", timeout=60)
        session.execute(f"ALTER TABLE {keyspace}.head DROP epoch", timeout=60)
        session.execute(f"DROP TABLE {keyspace}.writer_epochs", timeout=60)
    finally:
        cluster.shutdown()

    def check(store: EventStore) -> None:
        everything = list(store.read())
        backend: Any = store.backend
        assert backend.read(Query(categories=frozenset({"old"}))) == everything
        assert backend.read(Query(event_types=frozenset({"Odd"}))) == [e for e in everything if e.event_type == "Odd"]
        assert list(store.read_matching([{"tags": ["t0"]}])) == [e for e in everything if e.event_type == "Even"]

    with EventStore.open(cassandra_config, read_only=True) as reader:
        check(reader)
    with EventStore.open(cassandra_config) as store:
        check(store)
        store.append(tagged(20))
        check(store)
        copies = list(store.backend._session.execute("SELECT order_id, epoch, data FROM key_index"))  # type: ignore[attr-defined]
        assert {r.order_id for r in copies if r.data is None} == set(range(1, 21))
        assert {r.order_id for r in copies if r.data is not None and r.epoch == 1} == set(range(21, 41))


def test_a_writer_taking_over_from_one_that_left_no_epoch_record_distrusts_the_last_recorded_epoch(
    cassandra_config: dict[str, Any],
) -> None:
    """A head naming an epoch nobody recorded (its writer died between claiming and recording,
    or a writer that keeps no epochs took the store): the next writer records a marker epoch
    beginning where the last recorded one did, so that epoch's copies are checked from then on."""
    with EventStore.open(cassandra_config) as store:
        (first,) = store.append(event("a-1", "Kept"))
        backend: Any = store.backend
        mine = backend._epoch
        head = backend._head_row(serial=True)
        # Another writer claims the head and dies before recording its epoch.
        backend._session.execute(backend._ps["claim_head"], ("dead", mine + 1, "store", backend._token, 1))
        fetched: list[int] = []
        events_at = backend._events_at

        def counted(orders: Any, upto: int) -> Any:
            orders = list(orders)
            fetched.extend(orders)
            return events_at(orders, upto)

        backend._events_at = counted
        assert [e.event_id for e in backend.read(Query(categories=frozenset({"a"})))] == [first.event_id]
        assert fetched == [1]  # the head names an epoch not recorded: the copy is checked
    with EventStore.open(cassandra_config) as store:
        backend = store.backend
        recorded = [(r.epoch, r.start, r.writer) for r in backend._session.execute("SELECT * FROM writer_epochs")]
        assert recorded == [
            (mine, 0, head.writer),  # claimed on the empty store
            (mine + 2, 0, ""),  # the marker: epoch `mine`'s rows above its start (0) are checked
            (mine + 3, 1, backend._token),
        ]
        assert backend._epoch == mine + 3
        (second,) = store.append(event("a-2", "Kept"))
        assert [e.event_id for e in backend.read(Query(categories=frozenset({"a"})))] == [
            first.event_id,
            second.event_id,
        ]
