"""Single-event HTTP emits and their group commits, servers from two source trees side by side.

``python -m benchmarks.emit_groups [--seconds 4] [--clients 32] [--rounds 3] [--trees DIR,DIR]``

A fresh ``photon serve`` (SQLite, ``synchronous=FULL``) for each measurement, from this checkout
or from each of two source trees (put first on ``PYTHONPATH``, e.g. ``git archive`` exports of
two commits), interleaved round by round:

1. ``--clients`` keep-alive connections posting single events (``benchmarks.server.http_emits``):
   events a second, the server process's CPU per emit (every thread), the events a group commit
   held and the wall time of the backend's commit (from ``/metrics``:
   ``photon_commit_batch_events``, ``photon_backend_append_seconds``); with ``--threads``, the CPU
   per emit of each thread of the server and of its projection worker process (from ``/proc``,
   named by ``py-spy dump`` when installed) and of this process, the clients' harness: on two
   cores, what any of them spends per emit counts;
2. publish-to-subscriber latency at 1,000 events/s from 8 writers (``benchmarks.server.latency``):
   the median and the 99th percentile.

Figures are medians of the rounds. What the group commit does with many clients (how many emits
a commit holds, and what a commit costs) is where the emit rate is decided.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from .server import Server, http_emits, latency
from .source_trees import source_tree
from .thread_cpu import family, thread_cpu, thread_names

COMMIT_FIGURES = (
    "photon_commit_batch_events_sum",
    "photon_commit_batch_events_count",
    "photon_backend_append_seconds_sum",
)


def commit_figures(server: Server, token: str) -> dict[str, float]:
    request = urllib.request.Request(
        f"http://{server.host}:{server.port}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        text = answer.read().decode()
    found = {}
    for name in COMMIT_FIGURES:
        match = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
        found[name] = float(match.group(1)) if match else 0.0
    return found


async def emits(seconds: float, clients: int, threads: bool = False) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="photon-emit-groups-"))
    server = Server(folder)
    try:
        token = await server.token()
        await http_emits(server, token, 1.0, clients, 1)  # warm-up
        before, cpu = commit_figures(server, token), server.cpu_seconds()
        by_thread, harness = thread_cpu(family(server.proc.pid)), time.process_time()
        rate = await http_emits(server, token, seconds, clients, 1)
        harness = time.process_time() - harness
        after, cpu = commit_figures(server, token), server.cpu_seconds() - cpu
        pids = family(server.proc.pid)
        spent = {key: value - by_thread.get(key, 0.0) for key, value in thread_cpu(pids).items()}
        commits = after["photon_commit_batch_events_count"] - before["photon_commit_batch_events_count"]
        grouped = after["photon_commit_batch_events_sum"] - before["photon_commit_batch_events_sum"]
        committing = after["photon_backend_append_seconds_sum"] - before["photon_backend_append_seconds_sum"]
        emitted = rate * seconds
        found = {
            "emits a second": rate,
            "server CPU µs an emit": cpu / emitted * 1e6,
            "emits a commit": grouped / max(commits, 1),
            "commit ms (wall)": committing / max(commits, 1) * 1e3,
        }
        if threads:
            names = thread_names(pids)
            found["harness CPU µs an emit"] = harness / emitted * 1e6
            found["worker processes CPU µs an emit"] = (
                sum(v for (pid, _), v in spent.items() if pid != server.proc.pid) / emitted * 1e6
            )
            for (pid, tid), value in sorted(spent.items(), key=lambda item: -item[1]):
                if pid == server.proc.pid and value / emitted * 1e6 >= 1.0:
                    name = "event loop" if tid == pid else names.get(tid, str(tid))
                    key = f"server {name} CPU µs an emit"
                    found[key] = found.get(key, 0.0) + value / emitted * 1e6
        return found
    finally:
        server.stop()


async def latencies(seconds: float) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="photon-emit-groups-"))
    server = Server(folder)
    try:
        found = await latency(server, await server.token(), seconds)
        return {"latency p50 ms": found["p50"], "latency p99 ms": found["p99"]}
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of each timed phase")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trees", default="", help="two source trees to compare, comma-separated")
    parser.add_argument("--threads", action="store_true", help="CPU per emit of each server thread and process")
    args = parser.parse_args(argv)
    trees: list[str | None] = [t for t in args.trees.split(",") if t] or [None]
    runs: dict[str | None, dict[str, list[float]]] = {t: {} for t in trees}
    for round_ in range(args.rounds):
        for tree in trees if round_ % 2 == 0 else trees[::-1]:
            with source_tree(tree):
                found: dict[str, Any] = asyncio.run(emits(args.seconds, args.clients, args.threads))
                found.update(asyncio.run(latencies(args.seconds)))
            for name, value in found.items():
                runs[tree].setdefault(name, []).append(value)
            print(
                f"  round {round_ + 1}, {tree or 'this checkout'}: "
                + ", ".join(f"{k} {v:,.2f}" for k, v in found.items())
            )
    medians = {str(t): {k: statistics.median(v) for k, v in runs[t].items()} for t in trees}
    heads = [Path(t).name if t else "this checkout" for t in trees]
    print(f"\n| median of {args.rounds} rounds | " + " | ".join(heads) + " |")
    print("|---|" + "---:|" * len(trees))
    for name in medians[str(trees[0])]:
        print(f"| {name} | " + " | ".join(f"{medians[str(t)].get(name, 0.0):,.2f}" for t in trees) + " |")
    return medians


if __name__ == "__main__":
    main()
