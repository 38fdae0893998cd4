"""The same benchmarks on two checkouts of Photon, interleaved, to show a change keeps the figures.

    python -m benchmarks.revisions BEFORE AFTER [--rounds 3] [NAME[:ARGS] ...]

BEFORE and AFTER are checkouts, each with its own ``.venv`` (``python3 -m venv .venv &&
.venv/bin/pip install -e '.[test]'``). Each round runs every NAME (default: core, server,
projections, backup) once on each side, alternating which side goes first, through
the benchmark's own command in that checkout (ARGS, split at spaces, are its options: ``"core:--events
30000 --repeat 3"``). Every numeric figure the benchmark prints is
kept; the table gives each figure's median over the rounds on both sides and AFTER / BEFORE. The
machine's noise is the same on both sides, so the ratio is what to read: 0.90 to 1.10 is "the same".
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

DEFAULT = ["core", "server", "projections", "backup"]
LABELS = ("name", "figure", "workload", "peer_name", "what")
"""What names a row: two rows of one workload against two peers (raw `sqlite3`, a library) stay apart."""
SKIP_TEXT = {"benchmark"}
NUMBER = re.compile(r"^\s*([0-9][0-9,]*(?:\.[0-9]+)?)")
# Fields that describe the run rather than measure it.
SKIP = {"load", "runs", "target", "in_flight", "requests", "cores"}


def figures(row: dict[str, Any]) -> dict[str, float]:
    """The numbers of one JSON row, keyed by what they measure."""
    label = " / ".join(str(row[key]) for key in LABELS if isinstance(row.get(key), str))
    found: dict[str, float] = {}
    for key, value in row.items():
        if key in SKIP or key in SKIP_TEXT or key in LABELS or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            found[f"{label} [{key}]"] = float(value)
        elif isinstance(value, str) and (match := NUMBER.match(value)):
            found[f"{label} [{key}]"] = float(match.group(1).replace(",", ""))
    return found


# Runs one benchmark with options and prints its rows as `python -m benchmarks --json` does.
RUNNER = """
import sys, orjson, importlib
from benchmarks.__main__ import as_json
name, args = sys.argv[1], sys.argv[2:]
rows = importlib.import_module("benchmarks." + name).main(args) or []
for row in rows:
    sys.__stdout__.write(orjson.dumps(as_json(name, row), default=str).decode() + "\\n")
"""


def run_side(checkout: Path, spec: str) -> dict[str, float]:
    python = checkout / ".venv" / "bin" / "python"
    name, _, options = spec.partition(":")
    done = subprocess.run(
        [str(python), "-c", RUNNER, name, *options.split()],
        cwd=checkout,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"{spec} failed in {checkout}:\n{done.stderr.decode(errors='replace')[-3000:]}")
    result: dict[str, float] = {}
    for line in done.stdout.splitlines():
        if line.startswith(b"{"):
            result.update(figures(orjson.loads(line)))
    return result


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("names", nargs="*", default=DEFAULT)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_intermixed_args(argv)  # --rounds before, between or after the names


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse(argv)
    seen: dict[str, dict[str, list[float]]] = {"before": defaultdict(list), "after": defaultdict(list)}
    for round_number in range(args.rounds):
        for name in args.names:
            sides = [("before", args.before), ("after", args.after)]
            if round_number % 2:
                sides.reverse()
            for side, checkout in sides:
                print(f"round {round_number + 1}: {name} on {side}", file=sys.stderr, flush=True)
                for key, value in run_side(checkout, name).items():
                    seen[side][f"{name.partition(':')[0]}: {key}"].append(value)
    rows = []
    print("| figure | before (median) | after (median) | after / before |")
    print("|---|---:|---:|---:|")
    for key in sorted(set(seen["before"]) & set(seen["after"])):
        before = statistics.median(seen["before"][key])
        after = statistics.median(seen["after"][key])
        ratio = after / before if before else float("nan")
        rows.append({"figure": key, "before": before, "after": after, "ratio": round(ratio, 3)})
        print(f"| {key} | {before:,.4g} | {after:,.4g} | {ratio:.2f} |")
    ratios = [row["ratio"] for row in rows if row["ratio"] == row["ratio"]]
    if ratios:
        print(f"\nmedian of the ratios: {statistics.median(ratios):.3f} over {len(ratios)} figures")
    return rows


if __name__ == "__main__":
    main()
