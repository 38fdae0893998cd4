"""Every benchmark, one after the other: ``python -m benchmarks [--json] [NAME ...]``.

Names: core, server, store_peers, server_peers, tcp_ingest, backup, projections, backends, amqp, muon,
es_recorders, growth, lifetime, request_cost, call_counts (default: all that are installed).
Each prints its own table of figures, targets and side-by-side ratios; run one alone with
``python -m benchmarks.NAME --help`` to see its options. store_peers and server_peers compare
Photon with NATS JetStream, Message DB, the eventsourcing library, Redis Streams, raw
cassandra-driver writes, raw sqlite3 and a bare route; they install and start those themselves
(scripts/install-bench-peers). The results, and the commands that produced them, are kept in
docs/benchmarks.md.

``--json`` prints the summary as JSON lines on standard output, one object per figure with the
benchmark's name, the load average and (for the comparisons) client, requests in flight,
durability, Photon's and the peer's median, the runs, the ratio and the target; the tables go to
standard error then.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import sys
import time
from typing import Any

import orjson

ORDER = [
    "core", "server", "store_peers", "server_peers", "tcp_ingest", "backup", "projections", "backends", "amqp", "muon",
    "es_recorders", "growth", "lifetime", "request_cost", "call_counts",
]  # fmt: skip


def as_json(name: str, row: Any) -> dict[str, Any]:
    if hasattr(row, "as_json"):
        data: dict[str, Any] = row.as_json(name)
        return data
    data = dict(dataclasses.asdict(row)) if dataclasses.is_dataclass(row) else dict(row)
    data.setdefault("benchmark", name)
    data.setdefault("load", round(os.getloadavg()[0], 2))
    return data


def main(argv: list[str]) -> None:
    json_lines = "--json" in argv
    names = [name for name in argv if name != "--json"] or ORDER
    unknown = [name for name in names if name not in ORDER]
    if unknown:
        sys.exit(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(ORDER)} (and --json)")
    out = sys.stdout
    for name in names:
        # With --json the tables are for a reader and go to stderr; stdout holds only JSON lines.
        with contextlib.redirect_stdout(sys.stderr) if json_lines else contextlib.nullcontext():
            try:
                module = importlib.import_module(f"benchmarks.{name}")
            except ImportError as exc:
                print(f"== {name}: not available ({exc})")
                continue
            print(f"\n== {name}  (load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores)", flush=True)
            started = time.perf_counter()
            rows = module.main([]) or []
            print(f"-- {name} took {time.perf_counter() - started:.0f} s", flush=True)
        if json_lines:
            for row in rows:
                out.write(orjson.dumps(as_json(name, row), default=str).decode() + "\n")
            out.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
