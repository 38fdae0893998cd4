"""CPU per remote eventsourcing insert, thread by thread, in a real `photon` server and its projection worker.

``python -m benchmarks.es_remote_cost [--inserts 2000] [--rounds 4] [--trees DIR,DIR]``

The remote recorder of `benchmarks.es_recorders` (one new aggregate's 10 events per insert, one
insert in flight) against a `photon` server on SQLite (``synchronous=FULL``), after a warm-up of
1,000 inserts. For each thread of the server and of its projection worker process, the CPU it
spent per insert (from ``/proc``), with the recorder's own CPU and the wall time per insert. CPU
is what a loaded machine disturbs least, and it says where an insert's time goes: the event loop,
the writer, the worker. Thread names come from ``py-spy dump`` when py-spy is installed (``/proc``'s short
names otherwise).

``--trees`` compares servers run from two source trees (each put first on ``PYTHONPATH``, e.g.
``git archive`` exports of two commits), interleaved round by round; the recorder runs from this
checkout. Figures are medians of the rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from . import es_recorders
from .source_trees import source_tree
from .thread_cpu import family, thread_cpu, thread_names

WARM_UP = 1000


def measure(inserts: int, tree: str | None) -> dict[str, float]:
    """Per insert: wall and recorder CPU (µs), and each server and worker thread's CPU (µs)."""
    with (
        source_tree(tree),
        tempfile.TemporaryDirectory() as tmp,
        es_recorders.photon_server(Path(tmp) / "server") as url,
    ):
        made = es_recorders.factory({"PERSISTENCE_MODULE": "photon.eventsourcing", "PHOTON_URL": url})
        try:
            recorder = made.application_recorder()
            for events in es_recorders.make_inserts(WARM_UP * es_recorders.EVENTS_PER_INSERT):
                recorder.insert_events(events)
            server = _server_pid(url)
            batch = es_recorders.make_inserts(inserts * es_recorders.EVENTS_PER_INSERT)
            before = thread_cpu(family(server))
            cpu, wall = time.process_time(), time.perf_counter()
            for events in batch:
                recorder.insert_events(events)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            time.sleep(0.2)  # the worker's share of the last inserts
            pids = family(server)
            after = thread_cpu(pids)
            names = thread_names(pids)
        finally:
            made.close()
    figures = {"wall per insert": 1e6 * wall / inserts, "recorder's process": 1e6 * cpu / inserts}
    total = 0.0
    for (pid, tid), seconds in after.items():
        spent = seconds - before.get((pid, tid), 0.0)
        total += spent
        where = "server" if pid == server else "worker"
        name = f"{where}: {names.get(tid, tid)}"
        figures[name] = figures.get(name, 0.0) + 1e6 * spent / inserts
    figures["server and worker, all threads"] = 1e6 * total / inserts
    return figures


def _server_pid(url: str) -> int:
    port = url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-Htlnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    start = out.find("pid=")
    if start < 0:
        raise RuntimeError(f"no process listens on {url}")
    return int(out[start + 4 :].split(",", 1)[0])


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inserts", type=int, default=2000, help="inserts measured per round (after the warm-up)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds (medians are shown)")
    parser.add_argument("--trees", default="", help="two source trees to compare, comma-separated")
    args = parser.parse_args(argv)
    trees: list[str | None] = [t for t in args.trees.split(",") if t] or [None]
    runs: dict[str | None, dict[str, list[float]]] = {t: defaultdict(list) for t in trees}
    for round_ in range(args.rounds):
        for tree in trees if round_ % 2 == 0 else trees[::-1]:
            for name, value in measure(args.inserts, tree).items():
                runs[tree][name].append(value)
        print(f"round {round_ + 1} done (load {os.getloadavg()[0]:.1f})", file=sys.stderr)
    medians = {str(t): {k: statistics.median(v) for k, v in runs[t].items()} for t in trees}
    first = medians[str(trees[0])]
    names = sorted({k for m in medians.values() for k in m}, key=lambda k: -first.get(k, 0.0))
    heads = [Path(t).name if t else "this checkout" for t in trees]
    print("| µs per insert (medians) | " + " | ".join(heads) + " |")
    print("|---|" + "---:|" * len(trees))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{medians[str(t)].get(name, 0.0):,.0f}" for t in trees) + " |")
    print(f"\n{args.inserts} inserts a round, {args.rounds} rounds; load average {os.getloadavg()[0]:.1f}")
    return medians


if __name__ == "__main__":
    main()
