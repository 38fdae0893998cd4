"""`python -m benchmarks.emit_groups` measures real servers and reads the commits from /metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import emit_groups
from benchmarks.source_trees import source_tree


@pytest.mark.slow
def test_the_figures_come_from_a_real_server() -> None:
    medians = emit_groups.main(["--seconds", "0.5", "--clients", "4", "--rounds", "1"])
    (figures,) = medians.values()
    assert figures["emits a second"] > 0
    assert figures["server CPU µs an emit"] > 0
    assert 1 <= figures["emits a commit"] <= 4  # a commit holds at least one emit, at most one per client
    assert figures["commit ms (wall)"] > 0
    assert 0 < figures["latency p50 ms"] <= figures["latency p99 ms"]


def test_a_compared_tree_runs_its_own_backends(tmp_path: Path) -> None:
    # A source tree keeps its backends in `backends/` (installed as `photon_backends`): a server
    # started for the tree must import the tree's, not those of the checkout running the benchmark.
    tree = tmp_path / "tree"
    for package in ("photon", "backends"):
        (tree / package).mkdir(parents=True)
        (tree / package / "__init__.py").write_text("")
    probe = "import photon, photon_backends; print(photon.__file__); print(photon_backends.__file__)"
    with source_tree(str(tree)):
        found = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=True
        ).stdout.split()
        resolved = [Path(name).resolve() for name in found]  # (through the link, while it exists)
    assert resolved == [
        tree / "photon" / "__init__.py",
        tree / "backends" / "__init__.py",
    ]
