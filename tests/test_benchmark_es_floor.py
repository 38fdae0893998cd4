"""The eventsourcing insert floor (`benchmarks.es_floor`) replays exactly the rows Photon stored,
with Photon's statements, and runs end to end."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from benchmarks import es_floor
from benchmarks.es_recorders import make_inserts


def test_the_raw_replay_stores_the_very_rows_photon_stored(tmp_path: Path) -> None:
    inserts = make_inserts(100)
    es_floor.recorder_inserts(es_floor.photon_env(tmp_path / "photon.db"), inserts)
    rows = es_floor.stored_rows(tmp_path / "photon.db")
    assert len(rows) == 100
    es_floor.raw_photon(tmp_path / "raw.db", rows)
    assert es_floor.stored_rows(tmp_path / "raw.db") == rows
    with sqlite3.connect(tmp_path / "raw.db") as raw, sqlite3.connect(tmp_path / "photon.db") as photon:
        streams = "SELECT stream_name, version, stream_id FROM photon_streams ORDER BY stream_id"
        assert raw.execute(streams).fetchall() == photon.execute(streams).fetchall()
    with sqlite3.connect(tmp_path / "raw.db") as raw, sqlite3.connect(tmp_path / "photon.db") as photon:
        index = "SELECT * FROM photon_read_index ORDER BY kind, name, order_id"
        assert raw.execute(index).fetchall() == photon.execute(index).fetchall()  # the same steps
    es_floor.raw_photon(tmp_path / "inline.db", rows, inline=True)
    with sqlite3.connect(tmp_path / "inline.db") as inline:
        names = {row[0] for row in inline.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert inline.execute("SELECT count(*) FROM photon_read_index").fetchone() == (0,)
    assert {"photon_events_type", "photon_events_category"} <= names


def test_the_floor_benchmark_prints_its_rows() -> None:
    rows = es_floor.main(["--events", "200", "--repeat", "1"])
    assert [(r.workload.split(" (")[0], r.peer_name.split(" (")[0]) for r in rows] == [
        ("eventsourcing inserts: photon", "library"),
        ("eventsourcing inserts: raw photon", "raw library"),
        ("eventsourcing inserts: raw photon, inline read indexes", "raw library"),
        ("eventsourcing inserts: photon", "raw photon"),
    ]
    assert all(r.photon > 0 and r.peer > 0 for r in rows)


def test_the_log_pages_of_an_insert_follow_the_indexes(tmp_path: Path) -> None:
    inserts = make_inserts(1500)  # past the read index's first step (`read_index.EVERY`)
    es_floor.recorder_inserts(es_floor.photon_env(tmp_path / "photon.db"), inserts)
    rows = es_floor.stored_rows(tmp_path / "photon.db")
    by_tree = es_floor.pages_per_insert(tmp_path, rows, inserts)
    assert list(by_tree) == [
        "photon's writer (the recorder)",
        *[contender.name for contender in es_floor.PAGE_CONTENDERS],
        "the library's statements",
    ]
    pages = {name: trees["all"] for name, trees in by_tree.items()}
    whole = pages["photon's statements"]
    inline = pages["the same, inline category and event-type indexes (before 2026-11)"]
    # Each index adds pages to every insert; the library writes a table and one index.
    assert 0 < pages["without the id index"] < whole < inline
    assert 0 < pages["the library's statements"] < whole
    # By b-tree: each index's pages are where it is, and nowhere once it is dropped; the parts add up.
    for trees in by_tree.values():
        assert sum(count for tree, count in trees.items() if tree != "all") == pytest.approx(trees["all"])
    assert by_tree["the same, inline category and event-type indexes (before 2026-11)"]["photon_events_type"] > 0.5
    assert "photon_events_type" not in by_tree["photon's statements"]
    assert "photon_events_event_id" not in by_tree["without the id index"]
    # The ids filed in steps: their table takes their pages, far fewer than the index, and it
    # holds every id filed so far; without the pointer map no page is outside the b-trees.
    in_steps = by_tree[es_floor.IDS_IN_STEPS]
    assert "photon_events_event_id" not in in_steps
    assert 0 < in_steps["photon_event_ids"] < by_tree["photon's statements"]["photon_events_event_id"] / 2
    number = [contender.name for contender in es_floor.PAGE_CONTENDERS].index(es_floor.IDS_IN_STEPS)
    with sqlite3.connect(tmp_path / f"pages-{number}.db") as filed:
        mark = filed.execute("SELECT order_id FROM photon_read_index_mark").fetchone()[0]
        ids = "SELECT event_id, order_id FROM photon_event_ids ORDER BY order_id"
        assert mark >= 1000
        assert filed.execute(ids).fetchall() == [(row[3], row[0]) for row in rows if row[0] <= mark]
    assert pages["without the id index"] < pages[es_floor.IDS_IN_STEPS] < whole
    assert es_floor.OUTSIDE_TREES not in by_tree[es_floor.NO_POINTER_MAP]
    assert by_tree["photon's statements"][es_floor.OUTSIDE_TREES] > 0.5
    assert pages[es_floor.NO_POINTER_MAP] < whole
    assert set(by_tree["the library's statements"]) <= {
        "all",
        "stored_events",
        "sqlite_autoindex_stored_events_1",
        "sqlite_schema",
        es_floor.OUTSIDE_TREES,
    }
    # Photon's own writer writes what its statements alone write, within a page.
    assert abs(pages["photon's writer (the recorder)"] - whole) < 1.0


def test_the_log_frames_of_one_commit_are_counted_by_their_pages(tmp_path: Path) -> None:
    path = tmp_path / "one.db"
    connection = es_floor.connect(path)
    connection.execute("PRAGMA wal_autocheckpoint=0")
    connection.execute("CREATE TABLE t (x)")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.execute("INSERT INTO t VALUES (1)")
    frames, commits = es_floor.log_frames(path)
    assert commits == 1 and frames and set(frames) <= set(es_floor.page_owners(connection))
    assert es_floor.pages_by_tree(connection, path)["t"] == 1.0
    connection.close()
