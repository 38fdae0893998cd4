"""The contract suite and the server-fault test on a real PostgreSQL server (backend `postgres`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from photon.core.errors import BackendUnavailable, StoreLocked
from photon.core.store import EventStore
from photon.testing import BackendContract, event

from .conftest import restartable
from .faults import run_server_fault
from .kill_trials import run_kill_trials

pytestmark = pytest.mark.postgres

KILLS = 6
"""Server kills mid-commit in CI; ``python -m benchmarks.reliability`` runs many more."""


def _admin(server: Any) -> Any:
    import psycopg

    return psycopg.connect(server.dsn, autocommit=True)


@pytest.fixture
def database(postgres_server: Any) -> Iterator[str]:
    """A fresh, empty database on the shared server; its URL."""
    name = f"photon_t_{uuid.uuid4().hex[:12]}"
    with _admin(postgres_server) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_server.dsn.rpartition("/")
    yield f"{base}/{name}"
    with _admin(postgres_server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class TestPostgres(BackendContract):
    @pytest.fixture
    def store_config(self, database: str) -> dict[str, Any]:
        return {"db.backend": "postgres", "postgres.url": database}


class TestGenericSQLOnPostgres(BackendContract):
    """The generic `sql` backend with a PostgreSQL URL gets the same behaviour (lock included)."""

    @pytest.fixture
    def store_config(self, database: str) -> dict[str, Any]:
        return {"db.backend": "sql", "sql.url": database.replace("postgresql://", "postgresql+psycopg://", 1)}


def test_writer_lock_names_the_holder_and_is_freed_when_its_session_dies(database: str, postgres_server: Any) -> None:
    config = {"db.backend": "postgresql", "postgres.url": database}
    with EventStore.open(config) as store:
        store.append(event())
        with pytest.raises(StoreLocked, match=r"photon pid \d+"):
            EventStore.open(config)
        # The server ends the holder's session (as when its process dies): the lock goes with it.
        with _admin(postgres_server) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = %s)",
                (database.rsplit("/", 1)[1],),
            )
        with EventStore.open(config) as second:
            second.append(event())
            assert second.last_order_id() == 2
        # The first writer lost its session: its next append fails, unacknowledged, and the
        # one after reconnects, takes the lock again and goes on after the other writer's event.
        with pytest.raises(BackendUnavailable, match="server closed the connection"):
            store.append(event())
        (after,) = store.append(event())
        assert after.order_id == 3
        with pytest.raises(StoreLocked, match="one process writes a store"):
            EventStore.open(config)


def test_bad_url_is_a_clear_error() -> None:
    from photon.core.errors import BackendError

    with pytest.raises(BackendError, match=r"postgres\.url must start with postgresql://"):
        EventStore.open({"db.backend": "postgres", "postgres.url": "mysql://x/y"})


@pytest.mark.slow
def test_server_killed_during_appends(database: str, postgres_server: Any) -> None:
    restartable(postgres_server)
    config = {"db.backend": "postgres", "postgres.url": database}
    report = run_server_fault(config, postgres_server.kill, postgres_server.start)
    assert report.errors


@pytest.mark.slow
def test_server_killed_mid_commit_readers_end_equal_to_a_cold_read(
    database: str, postgres_server: Any, tmp_path: Any
) -> None:
    restartable(postgres_server)
    settings = {"db.backend": "postgres", "postgres.url": database}
    report = run_kill_trials(postgres_server, settings, kills=KILLS, work_dir=tmp_path)
    assert report.kills == KILLS and report.aimed == KILLS // 2
    assert report.statuses[200] > 0


def test_tables_of_an_earlier_layout_are_brought_up_to_date(database: str) -> None:
    import psycopg

    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE photon_events (order_id BIGINT PRIMARY KEY, stream_name VARCHAR(256) NOT NULL, "
            "stream_version BIGINT NOT NULL, event_id VARCHAR(128) NOT NULL, event_type VARCHAR(256) NOT NULL, "
            "event_time BIGINT NOT NULL, data BYTEA NOT NULL)"
        )
        connection.execute("CREATE UNIQUE INDEX photon_events_event_id ON photon_events (event_id)")
        connection.execute(
            "CREATE UNIQUE INDEX photon_events_stream_version ON photon_events (stream_name, stream_version)"
        )
        connection.execute(
            "CREATE TABLE photon_streams (stream_name VARCHAR(256) PRIMARY KEY, version BIGINT NOT NULL)"
        )
        for order_id, stream, version in [(1, "b", 1), (2, "a", 1), (3, "b", 2)]:
            data = f'{{"order-id":{order_id},"stream-version":{version},"stream-name":"{stream}","payload":{{}}}}'
            connection.execute(
                "INSERT INTO photon_events VALUES (%s, %s, %s, %s, 'T', 7, %s)",
                (order_id, stream, version, f"e{order_id}", data.encode()),
            )
        connection.execute("INSERT INTO photon_streams VALUES ('a', 1), ('b', 2)")

    config = {"db.backend": "postgres", "postgres.url": database}
    with EventStore.open(config) as store:
        assert [e.order_id for e in store.read("b")] == [1, 3]
        stored = store.append(event(stream="b"))
        assert (stored[0].order_id, stored[0].stream_version) == (4, 3)
        store.append(event(stream="c"))
        assert [e.stream_version for e in store.read("c")] == [1]
    with psycopg.connect(database) as connection:
        numbers = dict(connection.execute("SELECT stream_name, stream_id FROM photon_streams").fetchall())
        assert sorted(numbers.values()) == [1, 2, 3]
        indexes = dict(
            connection.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'photon_events'"
            ).fetchall()
        )
        assert "photon_events_stream_version" not in indexes  # the earlier one, over the names
        assert "((stream_version >> 6)), stream_id, stream_version)" in indexes["photon_events_stream_block"]
