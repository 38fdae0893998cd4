"""The growth benchmark waits for the server's projections to fold the whole store before it
takes the RSS "once caught up" and the RSS a full replay adds: a projection still folding (its
state growing) would count in the replay's figure."""

from __future__ import annotations

from typing import Any

from benchmarks.growth import settled


def listed(position: int, catch_up_ms: float | None, status: str = "running") -> dict[str, Any]:
    return {"projection-name": "__streams__", "status": status, "position": position, "catch-up-ms": catch_up_ms}


def test_settled_only_once_every_projection_folded_the_store_to_its_head() -> None:
    head = 10_000_000
    assert not settled([], head)  # none listed yet: still starting
    assert not settled([listed(0, None)], head)
    # Folding, its position unchanged between two answers: not settled however long it stays so.
    assert not settled([listed(4_000_000, None)], head)
    assert not settled([listed(head, None)], head)  # at the head, but its catch-up not yet reported
    assert settled([listed(head, 1234.5)], head)
    assert settled([listed(head + 20, 0.0)], head)
    assert not settled([listed(head, 1234.5), listed(9_000_000, None)], head)
    assert settled([listed(head, 1234.5), listed(17, None, status="failed")], head)
