"""`python -m benchmarks.emit_groups` measures real servers and reads the commits from /metrics."""

from __future__ import annotations

import pytest

from benchmarks import emit_groups


@pytest.mark.slow
def test_the_figures_come_from_a_real_server() -> None:
    medians = emit_groups.main(["--seconds", "0.5", "--clients", "4", "--rounds", "1"])
    (figures,) = medians.values()
    assert figures["emits a second"] > 0
    assert figures["server CPU µs an emit"] > 0
    assert 1 <= figures["emits a commit"] <= 4  # a commit holds at least one emit, at most one per client
    assert figures["commit ms (wall)"] > 0
    assert 0 < figures["latency p50 ms"] <= figures["latency p99 ms"]
