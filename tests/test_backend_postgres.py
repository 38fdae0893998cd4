"""The contract suite and the server-fault test on a real PostgreSQL server (backend `postgres`)."""

from __future__ import annotations

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


class TestPostgres(BackendContract):
    @pytest.fixture
    def store_config(self, postgres_database: str) -> dict[str, Any]:
        return {"db.backend": "postgres", "postgres.url": postgres_database}


class TestGenericSQLOnPostgres(BackendContract):
    """The generic `sql` backend with a PostgreSQL URL gets the same behaviour (lock included)."""

    @pytest.fixture
    def store_config(self, postgres_database: str) -> dict[str, Any]:
        return {"db.backend": "sql", "sql.url": postgres_database.replace("postgresql://", "postgresql+psycopg://", 1)}


def test_writer_lock_names_the_holder_and_is_freed_when_its_session_dies(
    postgres_database: str, postgres_server: Any
) -> None:
    config = {"db.backend": "postgresql", "postgres.url": postgres_database}
    with EventStore.open(config) as store:
        store.append(event())
        with pytest.raises(StoreLocked, match=r"photon pid \d+"):
            EventStore.open(config)
        # The server ends the holder's session (as when its process dies): the lock goes with it.
        with _admin(postgres_server) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = %s)",
                (postgres_database.rsplit("/", 1)[1],),
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
def test_server_killed_during_appends(postgres_database: str, postgres_server: Any) -> None:
    restartable(postgres_server)
    config = {"db.backend": "postgres", "postgres.url": postgres_database}
    report = run_server_fault(config, postgres_server.kill, postgres_server.start)
    assert report.errors


@pytest.mark.slow
def test_server_killed_mid_commit_readers_end_equal_to_a_cold_read(
    postgres_database: str, postgres_server: Any, tmp_path: Any
) -> None:
    restartable(postgres_server)
    settings = {"db.backend": "postgres", "postgres.url": postgres_database}
    report = run_kill_trials(postgres_server, settings, kills=KILLS, work_dir=tmp_path)
    assert report.kills == KILLS and report.aimed == KILLS // 2
    assert report.statuses[200] > 0


def test_a_streams_events_are_found_by_block_and_number(postgres_database: str) -> None:
    import psycopg

    config = {"db.backend": "postgres", "postgres.url": postgres_database}
    with EventStore.open(config) as store:
        store.append([event(stream="b"), event(stream="a"), event(stream="b")])
        assert [e.order_id for e in store.read("b")] == [1, 3]
    with psycopg.connect(postgres_database) as connection:
        numbers = dict(connection.execute("SELECT stream_name, stream_id FROM photon_streams").fetchall())
        assert numbers == {"b": 1, "a": 2}
        indexes = dict(
            connection.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'photon_events'"
            ).fetchall()
        )
        assert "((stream_version >> 6)), stream_id, stream_version)" in indexes["photon_events_stream_block"]


def test_the_writer_analyzes_the_events_table_as_it_grows(postgres_database: str) -> None:
    """Before a table's first ANALYZE, PostgreSQL plans a page of `__all__` as a scan of the
    whole table and a sort; the writer analyzes its tables at 1,000 events (and at open when
    they hold events but were never analyzed), so the page goes through the primary key at once,
    and again each time the table has grown tenfold, so the statistics describe the store."""
    import psycopg
    from photon_backends.sql.planner_statistics import FIRST_ROWS, GROWTH

    def analyzed() -> float:
        with psycopg.connect(postgres_database) as connection:
            (rows,) = connection.execute("SELECT reltuples FROM pg_class WHERE relname = 'photon_events'").fetchone()
            return float(rows)

    def page_plan() -> str:
        with psycopg.connect(postgres_database) as connection:
            plan = connection.execute(
                "EXPLAIN SELECT order_id, data FROM photon_events WHERE order_id >= 1001 ORDER BY order_id LIMIT 1000"
            ).fetchall()
            return "\n".join(row[0] for row in plan)

    config = {"db.backend": "postgres", "postgres.url": postgres_database}
    with EventStore.open(config) as store:
        with psycopg.connect(postgres_database, autocommit=True) as connection:  # only the writer analyzes here
            connection.execute("ALTER TABLE photon_events SET (autovacuum_enabled = false)")
        store.append([event(stream=f"s-{i % 7}") for i in range(FIRST_ROWS - 1)])
        statistics = store.backend._statistics  # type: ignore[attr-defined]
        statistics.wait()
        assert analyzed() < 0  # not yet: never analyzed
        store.append([event(stream="s-1"), event(stream="s-2")])
        statistics.wait()
        assert analyzed() == FIRST_ROWS + 1
        assert "photon_events_pkey" in page_plan()
        tenfold = (FIRST_ROWS + 1) * GROWTH
        store.append([event(stream="s-3") for _ in range(tenfold - (FIRST_ROWS + 1) - 1)])
        statistics.wait()
        assert analyzed() == FIRST_ROWS + 1  # not before the table has grown tenfold
        assert "photon_events_pkey" in page_plan()
        store.append([event(stream="s-3")])
        statistics.wait()
        assert analyzed() == tenfold
    with EventStore.open(config, read_only=True) as store:
        assert store.backend._statistics is None  # type: ignore[attr-defined]  # only the writer analyzes


def test_a_bulk_load_leaves_statistics_that_plan_a_category_read_through_its_index(postgres_database: str) -> None:
    """A restore loads a whole store at once; without fresh statistics the planner guessed a
    category's size and fetched all of its events through a bitmap scan and sorted them, to
    return the first page. The load analyzes the tables at its end."""
    import psycopg

    config = {"db.backend": "postgres", "postgres.url": postgres_database}
    events = 50_000  # 500 in the category `target`: more than the page, which the planner must know
    with EventStore.open(config) as store:
        with psycopg.connect(postgres_database, autocommit=True) as connection:
            connection.execute("ALTER TABLE photon_events SET (autovacuum_enabled = false)")
        with store.bulk_load():
            for start in range(0, events, 5000):
                store.append(
                    [
                        event(stream=f"target-{i % 50}" if i % 100 == 0 else f"other{i % 97}-{i}")
                        for i in range(start, start + 5000)
                    ]
                )
        with psycopg.connect(postgres_database) as connection:
            (rows,) = connection.execute("SELECT reltuples FROM pg_class WHERE relname = 'photon_events'").fetchone()
            assert rows == events
            plan = "\n".join(
                row[0]
                for row in connection.execute(
                    "EXPLAIN SELECT order_id, data FROM photon_events WHERE split_part(stream_name, '-', 1) = 'target'"
                    " AND order_id >= 1 ORDER BY order_id LIMIT 250"
                ).fetchall()
            )
        assert "Index Scan using photon_events_category" in plan, plan
        assert [e.stream_name.split("-")[0] for e in store.read("__category__:target", limit=3)] == ["target"] * 3


def test_a_table_never_analyzed_is_analyzed_when_the_writer_opens(postgres_database: str) -> None:
    import psycopg
    from photon_backends.sql.planner_statistics import FIRST_ROWS

    config = {"db.backend": "postgres", "postgres.url": postgres_database}
    with EventStore.open(config) as store:
        with psycopg.connect(postgres_database, autocommit=True) as connection:
            connection.execute("ALTER TABLE photon_events SET (autovacuum_enabled = false)")
        store.backend._statistics = None  # type: ignore[attr-defined]  # as a store of an earlier version
        store.append([event(stream="s") for _ in range(FIRST_ROWS + 10)])
    with psycopg.connect(postgres_database) as connection:
        (rows,) = connection.execute("SELECT reltuples FROM pg_class WHERE relname = 'photon_events'").fetchone()
        assert rows < 0
    with EventStore.open(config) as store:
        store.backend._statistics.wait()  # type: ignore[attr-defined]
        with psycopg.connect(postgres_database) as connection:
            (rows,) = connection.execute("SELECT reltuples FROM pg_class WHERE relname = 'photon_events'").fetchone()
            assert rows == FIRST_ROWS + 10
