"""The contract suite and the server-fault test on a real PostgreSQL server (backend `postgres`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from photon.errors import BackendUnavailable, StoreLocked
from photon.store import EventStore

from .conftest import restartable
from .contract import BackendContract, event
from .faults import run_server_fault

pytestmark = pytest.mark.postgres


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
    from photon.errors import BackendError

    with pytest.raises(BackendError, match=r"postgres\.url must start with postgresql://"):
        EventStore.open({"db.backend": "postgres", "postgres.url": "mysql://x/y"})


@pytest.mark.slow
def test_server_killed_during_appends(database: str, postgres_server: Any) -> None:
    restartable(postgres_server)
    config = {"db.backend": "postgres", "postgres.url": database}
    report = run_server_fault(config, postgres_server.kill, postgres_server.start)
    assert report.errors
