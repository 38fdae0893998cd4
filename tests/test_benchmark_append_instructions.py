"""The workloads `benchmarks.append_instructions` counts under callgrind append what they say."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.append_instructions import run_workload


@pytest.mark.parametrize(("mode", "count"), [("batched", 3000), ("single", 200)])
def test_each_workload_appends_its_events(tmp_path: Path, mode: str, count: int) -> None:
    assert run_workload(mode, count, str(tmp_path)) == count
