"""`python -m benchmarks.revisions` takes --rounds anywhere, as docs/benchmarks.md writes it."""

from __future__ import annotations

from pathlib import Path

from benchmarks.revisions import DEFAULT, parse


def test_rounds_may_stand_between_the_checkouts_and_the_benchmarks() -> None:
    named = "group_commit:--events 12800 --repeat 1"
    for argv in (
        ["BEFORE", "AFTER", "--rounds", "6", named, "call_counts"],
        ["BEFORE", "AFTER", named, "call_counts", "--rounds", "6"],
        ["--rounds", "6", "BEFORE", "AFTER", named, "call_counts"],
    ):
        args = parse(argv)
        assert (args.before, args.after, args.rounds) == (Path("BEFORE"), Path("AFTER"), 6)
        assert args.names == [named, "call_counts"]
    assert parse(["BEFORE", "AFTER"]).names == DEFAULT


def test_rows_of_one_workload_against_two_peers_stay_apart() -> None:
    """`store_peers` gives batched appends against raw `sqlite3` and against a library: two rows
    with the same workload, told apart only by the peer's name."""
    from benchmarks.revisions import figures

    raw = {"name": "store_peers", "workload": "sqlite: batched appends", "peer_name": "raw sqlite3", "ratio": 0.8}
    library = {**raw, "peer_name": "eventsourcing 9.5 SQLite recorder", "ratio": 1.1}
    keys = set(figures(raw)) | set(figures(library))
    assert len(keys) == 2
    assert figures(raw) != figures(library)
