"""What 64 threads appending single events cost, beside batched appends, in one run.

    python -m benchmarks.group_commit [--events 12800] [--batched 50000] [--repeat 3] [--backend sqlite]

Rounds alternate: (a) batched appends, 1,000 events an append, then (b) 64 threads appending
single events, each on a fresh store (SQLite: WAL, synchronous=FULL). Besides the rates and their
in-run ratio it gives what a loaded machine disturbs least: the process's CPU an event (and its
kernel share), the writer thread's CPU an event, the thread switches an append (voluntary and
involuntary, all threads: from getrusage) and the events a group commit holds. Medians over the
rounds. `--backend memory` leaves the storage out: what remains is the callers' preparation,
their hand-off to the writer, the grouping and the waking. The futex calls an append are counted
apart, under strace:

    strace -f -c -e trace=futex python -m benchmarks.group_commit --repeat 1 --only single
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.core import BATCH, THREADS, Workdir, make_events
from photon.core.store import EventStore


def _config(work: Workdir, backend: str) -> dict[str, Any]:
    if backend == "memory":
        return {"db.backend": "memory"}
    return {"db.backend": "sqlite", "sqlite.path": str(work.fresh("gc")), "sqlite.synchronous": "FULL"}


def _usage() -> tuple[float, float, int, int]:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime, used.ru_stime, used.ru_nvcsw, used.ru_nivcsw


def _thread_cpu(native_id: int) -> float:
    """CPU seconds (user + system) of one thread of this process, from /proc."""
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(store: EventStore, run: Any, events: int) -> dict[str, float]:
    committer = store._committer
    assert committer is not None
    writer = committer.native_id or 0
    commits = committer.commits
    writer_cpu = _thread_cpu(writer)
    cpu, system, voluntary, involuntary = _usage()
    wall = run()
    cpu2, system2, voluntary2, involuntary2 = _usage()
    return {
        "ev/s": events / wall,
        "cpu us/ev": (cpu2 - cpu) / events * 1e6,
        "sys us/ev": (system2 - system) / events * 1e6,
        "writer cpu us/ev": (_thread_cpu(writer) - writer_cpu) / events * 1e6,
        "switches/ev": (voluntary2 - voluntary) / events,
        "involuntary/ev": (involuntary2 - involuntary) / events,
        "ev/commit": events / max(1, committer.commits - commits),
    }


def batched(store: EventStore, events: list[dict[str, Any]]) -> dict[str, float]:
    def run() -> float:
        start = time.perf_counter()
        for offset in range(0, len(events), BATCH):
            store.append(events[offset : offset + BATCH])
        return time.perf_counter() - start

    return _measure(store, run, len(events))


def single(store: EventStore, events: list[dict[str, Any]]) -> dict[str, float]:
    per_thread = len(events) // THREADS
    barrier = threading.Barrier(THREADS + 1)
    done = threading.Barrier(THREADS + 1)

    def work(index: int) -> None:
        mine = events[index * per_thread : (index + 1) * per_thread]
        barrier.wait()
        for event in mine:
            store.append(event)
        done.wait()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()

    def run() -> float:
        barrier.wait()
        start = time.perf_counter()
        done.wait()
        return time.perf_counter() - start

    figures = _measure(store, run, per_thread * THREADS)
    for thread in threads:
        thread.join()
    return figures


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=12_800, help="single events, appended by 64 threads")
    parser.add_argument("--batched", type=int, default=50_000, help="events appended 1,000 at a time")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--only", choices=["single", "batched"], help="run one workload")
    args = parser.parse_args(argv)
    work = Workdir()
    singles = make_events(args.events, seed=2)
    batch_events = make_events(args.batched)
    load = os.getloadavg()[0]
    rounds: dict[str, list[dict[str, float]]] = {"a": [], "b": []}
    try:
        for _ in range(args.repeat):
            if args.only != "single":
                with EventStore.open(_config(work, args.backend)) as store:
                    rounds["a"].append(batched(store, batch_events))
            if args.only != "batched":
                with EventStore.open(_config(work, args.backend)) as store:
                    rounds["b"].append(single(store, singles))
    finally:
        work.close()
    names = {"a": "batched appends, 1000 per append", "b": f"{THREADS} threads, single events"}
    rows: list[dict[str, Any]] = []
    print(f"group commit, {args.backend}: median of {args.repeat} rounds; load average {load:.1f} at start")
    heads = ("ev/s", "cpu us/ev", "sys", "writer", "switch/ev", "invol", "ev/commit")
    print(f"{'workload':36} " + " ".join(f"{head:>10}" for head in heads))
    for key, runs in rounds.items():
        if not runs:
            continue
        row: dict[str, Any] = {"workload": names[key], "backend": args.backend}
        for figure in runs[0]:
            row[figure] = round(statistics.median(r[figure] for r in runs), 2)
        rows.append(row)
        shown = [f"{row['ev/s']:,.0f}"] + [
            f"{row[figure]:.2f}"
            for figure in ("cpu us/ev", "sys us/ev", "writer cpu us/ev", "switches/ev", "involuntary/ev", "ev/commit")
        ]
        print(f"{names[key]:36} " + " ".join(f"{value:>10}" for value in shown))
    if rounds["a"] and rounds["b"]:
        ratios = [b["ev/s"] / a["ev/s"] for a, b in zip(rounds["a"], rounds["b"], strict=True)]
        ratio = statistics.median(ratios)
        rows.append({"workload": "single / batched (in-run ratio)", "ratio": round(ratio, 3)})
        print(f"64 threads / batched: {ratio:.3f}x (rounds: {', '.join(f'{r:.3f}' for r in ratios)}; target >= 0.3x)")
    print(f"load average {os.getloadavg()[0]:.1f} at end ({os.cpu_count()} cores)")
    return rows


if __name__ == "__main__":
    main()
