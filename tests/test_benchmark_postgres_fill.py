"""The category-read benchmark's SQL fill of PostgreSQL (`benchmarks.postgres_fill`): the stores it
builds read back as the ones appends build, so the benchmark's figures hold for real stores."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import postgres_fill

from .test_benchmark_peers import message_db


def test_a_store_filled_by_sql_reads_back_as_one_filled_by_appends(postgres_server: Any) -> None:
    assert postgres_fill.check_same_as_appends(postgres_server.dsn, size=6000) > 0


def test_the_check_fails_when_the_sql_differs(postgres_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Streams numbered by name rather than by first appearance: the stream index would differ.
    monkeypatch.setattr(postgres_fill, "STREAMS", postgres_fill.STREAMS.replace("ORDER BY min(i)", "ORDER BY stream"))
    with pytest.raises(AssertionError, match="streams' numbers"):
        postgres_fill.check_same_as_appends(postgres_server.dsn, size=6000)


def test_message_db_holds_the_same_events(postgres_server: Any) -> None:
    import psycopg

    with message_db(postgres_server) as dsn:
        postgres_fill.fill_message_db(dsn, 6000)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET search_path TO message_store, public")
            rows = conn.execute(
                "SELECT stream_name, position, type, data, global_position FROM get_category_messages('target', 1, 5)"
            ).fetchall()
            # Event 0, 3, 6, ... is in `target` (every = 6000 // 2000 = 3), its stream target-(i % 50).
            assert rows == [
                ("target-0", 0, "Common", '{"n": 0}', 1),
                ("target-3", 0, "Common", '{"n": 3}', 4),
                ("target-6", 0, "Common", '{"n": 6}', 7),
                ("target-9", 0, "Common", '{"n": 9}', 10),
                ("target-12", 0, "Common", '{"n": 12}', 13),
            ]
            later = conn.execute("SELECT position FROM get_stream_messages('target-0', 0, 1000)").fetchall()
            assert [p for (p,) in later] == list(range(len(later))) and len(later) == 40


def test_a_growth_store_filled_by_sql_reads_back_as_one_filled_by_appends(postgres_server: Any) -> None:
    # The growth benchmark's events (`growth.fill`): a stream per 10 events, the probe stream of 100.
    assert postgres_fill.check_same_as_appends(postgres_server.dsn, size=3000, shape="growth") > 0


def test_the_growth_check_fails_when_the_payload_differs(postgres_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        postgres_fill, "GROWTH_ROWS", postgres_fill.GROWTH_ROWS.replace("repeat('x', 40)", "repeat('x', 39)")
    )
    with pytest.raises(AssertionError):
        postgres_fill.check_same_as_appends(postgres_server.dsn, size=3000, shape="growth")
