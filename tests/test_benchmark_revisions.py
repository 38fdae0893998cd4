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
