"""One row of a side-by-side comparison: Photon, the peer or limit it is measured against, the ratio.

Every comparing benchmark returns a list of these rows from ``main``; ``python -m benchmarks --json``
prints them as JSON lines, and ``table`` prints them for reading. A row states what the issue
asks every table to state: the client, the requests in flight and the durability.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Row:
    workload: str
    photon: float
    peer_name: str
    peer: float
    unit: str = "ev/s"
    client: str = ""
    in_flight: str = ""
    durability: str = ""
    target: float | None = None
    """The least ratio wanted (for rates), or the most (for latencies: ``higher`` False)."""
    higher: bool = True
    runs: dict[str, list[float]] = field(default_factory=dict)
    load: float = field(default_factory=lambda: os.getloadavg()[0])

    @property
    def ratio(self) -> float:
        return self.photon / self.peer if self.peer else float("inf")

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.ratio >= self.target if self.higher else self.ratio <= self.target

    def as_json(self, benchmark: str) -> dict[str, Any]:
        data = asdict(self)
        data.update(benchmark=benchmark, ratio=round(self.ratio, 3), met=self.met)
        return data


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: float, unit: str) -> str:
    return f"{value:,.2f} {unit}" if unit == "ms" else f"{value:,.0f} {unit}"


def goal(row: Row) -> str:
    if row.target is None:
        return "-"
    verdict = {True: "met", False: "NOT MET", None: ""}[row.met]
    return f"{'≥' if row.higher else '≤'} {row.target:g}x: {verdict}"


def table(rows: list[Row]) -> str:
    lines = [
        "| workload | client, in flight | durability | Photon | peer or limit | peer | ratio | target |",
        "|---|---|---|---:|---|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.workload} | {r.client}; {r.in_flight} | {r.durability} | {fmt(r.photon, r.unit)} | {r.peer_name} "
            f"| {fmt(r.peer, r.unit)} | {r.ratio:.2f}x | {goal(r)} |"
        )
    return "\n".join(lines)
