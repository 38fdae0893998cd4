"""Projection benchmarks: fold throughput (Python vs Hy), 1 vs 2 workers, restart from checkpoints.

    python -m benchmarks.projections [--events 1000000] [--dir /tmp/photon-bench]

The store is SQLite; the set-up appends in batches of 5000 with ``sqlite.synchronous=OFF``
(the set-up is not what is measured). Every figure is a median of ``--repeat`` runs.
Workers read the store themselves (SQLite allows other processes to read), so these are the
figures of a projection catching up from the store, which is also the upper bound of live folding.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from photon.core.config import load_config
from photon.core.store import EventStore
from photon.projections import ProjectionManager
from photon.projections.checkpoints import checkpoint_key

PY_SUM = "def reduction(state, event):\n    return state + event['payload'].get('n', 0)\n"
HY_SUM = '(defn reduction [state event] (+ state (.get (get event "payload") "n" 0)))'
# A reduction with real work in it (about 15 µs a call): where more workers pay off.
HEAVY_PY = (
    "def reduction(state, event):\n"
    "    digits = str(event['order-id']) * 12\n"
    "    return state + sum(int(c) for c in digits) % 7\n"
)
BATCH = 5000


def config(folder: Path, workers: int) -> Any:
    return load_config(
        {
            "db.backend": "sqlite",
            "sqlite.path": str(folder / "bench.db"),
            "sqlite.synchronous": "OFF",
            "parallel.projections": str(workers),
            "projections.path": str(folder / "no-projections"),
            "projections.port": "0",
            "rest.host": "127.0.0.1",
            "projections.checkpoint.events": "1000000000",
            "projections.checkpoint.seconds": "3600",
        },
        environ={},
        cwd=folder,
    )


def fill(folder: Path, count: int) -> float:
    started = time.perf_counter()
    store = EventStore.open(config(folder, 1))
    streams = [f"stream-{i}" for i in range(10)]
    written = store.last_order_id()
    while written < count:
        size = min(BATCH, count - written)
        store.append(
            [
                {"stream-name": streams[i % 10], "event-type": "counted", "payload": {"n": i % 7, "tag": "x"}}
                for i in range(written, written + size)
            ]
        )
        written += size
    store.close()
    return time.perf_counter() - started


def template(name: str, language: str) -> dict[str, Any]:
    return {
        "projection-name": name,
        "language": language,
        "initial-value": 0,
        "reduction": HY_SUM if language == "hy" else PY_SUM,
    }


async def wait_caught_up(manager: ProjectionManager, head: int) -> None:
    # A start resumes in the background: a projection is loading, then resuming, before it runs.
    while any(
        p.status in ("loading", "resuming") or (p.status == "running" and p.position < head)
        for p in manager.projections.values()
    ):
        await asyncio.sleep(0.005)
    if any(p.status == "failed" for p in manager.projections.values()):
        errors = [(p.name, p.last_error) for p in manager.projections.values() if p.status == "failed"]
        raise RuntimeError(f"projections failed: {errors}")


def cpu_seconds(pids: list[int]) -> float:
    """CPU time the processes (all their threads) have used so far, from /proc (Linux): in
    nanoseconds from each thread's schedstat where the kernel keeps it, else in clock ticks
    (10 ms, 2% of a half-second fold) from the process's stat."""
    total = 0.0
    for pid in pids:
        try:
            threads = list(Path(f"/proc/{pid}/task").iterdir())
            total += sum(int((task / "schedstat").read_text().split()[0]) for task in threads) / 1e9
            continue
        except (OSError, ValueError, IndexError):
            pass
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def fold_time(folder: Path, workers: int, templates: list[dict[str, Any]]) -> tuple[float, float]:
    """(wall seconds, worker CPU seconds) from registering the projections to their having folded the store.

    Each language is loaded in the workers first, by a projection of the same language on a
    stream with no events: Hy's one-time import and macros (about 15 ms a worker, 3% of a fold of
    300,000 events) are a start-up cost, not a rate of folding."""
    store = EventStore.open(config(folder, workers))
    manager = ProjectionManager(store, config(folder, workers))
    await manager.start()
    warm_ups = [
        {**item, "projection-name": f"warm-up-{index}", "stream-name": "warm-up-no-events"}
        for index, item in enumerate(templates)
    ]
    templates = [*warm_ups, *templates]
    for item in warm_ups:
        await manager.create(item)
    await wait_caught_up(manager, store.last_order_id())  # the built-in __streams__ first
    try:
        pids = [w.pid for w in manager.workers if w.pid is not None]
        cpu = cpu_seconds(pids)
        started = time.perf_counter()
        for item in templates[len(warm_ups) :]:
            await manager.create(item)
        await wait_caught_up(manager, store.last_order_id())
        return time.perf_counter() - started, cpu_seconds(pids) - cpu
    finally:
        for item in templates:
            await manager.delete(item["projection-name"])
        await manager.stop()
        store.close()


#: CPU seconds of the last start-up measured: the busiest process (a worker, or the manager),
#: all of them (the manager and every worker), and the manager alone (the process that feeds
#: the workers). On 2 idle cores the start-up would take max(busiest, all / 2): the figure a
#: loaded machine's wall clock hides (there each session gets its share of the cores, so the
#: wall clock follows the CPU of all the processes, not of the busiest).
LAST_CPU: dict[str, float] = {}
CORES = 2


def idle_cores_seconds(busiest: float, total: float) -> float:
    """What a start-up of these CPU figures takes on `CORES` idle cores (the processes in parallel)."""
    return max(busiest, total / CORES)


async def start_until_caught_up(store: EventStore, cfg: Any) -> tuple[float, dict[str, int]]:
    """Seconds from creating a manager to every projection having folded the store; each
    projection's resume point, by name."""
    started, cpu = time.perf_counter(), time.process_time()
    manager = ProjectionManager(store, cfg)
    await manager.start()
    await wait_caught_up(manager, store.last_order_id())
    elapsed = time.perf_counter() - started
    manager_cpu = time.process_time() - cpu
    workers = [cpu_seconds([w.pid]) for w in manager.workers if w.pid is not None]
    LAST_CPU.update(busiest=max([*workers, manager_cpu]), total=sum(workers) + manager_cpu, manager=manager_cpu)
    resumed = {name: p.resumed_from for name, p in manager.projections.items()}
    await manager.stop()  # writes the checkpoints
    return elapsed, resumed


async def register(store: EventStore, cfg: Any, templates: list[dict[str, Any]]) -> None:
    manager = ProjectionManager(store, cfg)
    await manager.start()
    for item in templates:
        await manager.create(item)
    await wait_caught_up(manager, store.last_order_id())
    await manager.stop()


def startup_times(
    folder: Path, templates: list[dict[str, Any]], worker_counts: list[int], repeat: int
) -> dict[str, float]:
    """Median start-up times of a server holding `templates`, until every projection has folded the store.

    Keys: ``refold-<n>`` (no checkpoints, `n` workers: the projections are registered together,
    as at any start, and fold from the start) and ``resume-<n>`` (from the checkpoints the
    previous start left).
    """
    cfg = config(folder, max(worker_counts))
    store = EventStore.open(cfg)
    head = store.last_order_id()
    asyncio.run(register(store, cfg, templates))
    # The built-in __streams__ keeps its checkpoint: only the projections compared are refolded.
    names = [item["projection-name"] for item in templates]
    times: dict[str, list[float]] = {}
    for _ in range(repeat):
        for workers in worker_counts:
            for name in names:
                store.write_checkpoint(checkpoint_key(name), None)
            elapsed, resumed = asyncio.run(start_until_caught_up(store, config(folder, workers)))
            assert all(resumed[name] == 0 for name in names), resumed  # the compared ones folded from the start
            times.setdefault(f"refold-{workers}", []).append(elapsed)
            times.setdefault(f"refold-cpu-{workers}", []).append(LAST_CPU["busiest"])
            times.setdefault(f"refold-total-{workers}", []).append(LAST_CPU["total"])
            times.setdefault(f"refold-idle-{workers}", []).append(
                idle_cores_seconds(LAST_CPU["busiest"], LAST_CPU["total"])
            )
            times.setdefault(f"refold-manager-{workers}", []).append(LAST_CPU["manager"])
            elapsed, resumed = asyncio.run(start_until_caught_up(store, config(folder, workers)))
            # The compared projections resume at the head. The built-in __streams__ may resume a
            # little behind it: a stop leaves a large state's checkpoint in place until it moved
            # by projections.checkpoint.events (photon.projections.checkpoints).
            behind = {name: resumed[name] for name in names if resumed[name] < head}
            if behind:
                raise RuntimeError(f"projections did not resume from their checkpoints at {head}: {behind}")
            times.setdefault(f"resume-{workers}", []).append(elapsed)
    for item in templates:
        store.append_internal("__config__", "projection-deleted", {"projection-name": item["projection-name"]})
    store.close()
    return {key: median(values) for key, values in times.items()}


def loop_throughputs(folder: Path, limit: int) -> tuple[float, float]:
    """Events/s of the worker's fold loop alone (decode + reduction), the store read left out:
    (Python, Hy), batch by batch in turn (each batch decoded and folded by one language, then by
    the other, the first alternating), so that the machine's load hits both alike. The cyclic
    collector's threshold is the worker's."""
    import gc

    from photon.projections.definition import load, spec_from_template
    from photon.projections.worker import GC_THRESHOLD, Running, decode, fold

    store = EventStore.open(config(folder, 1), read_only=True)
    datas = [event.data for event in store.read(limit=limit)]
    store.close()
    runnings = [Running(1, load(spec_from_template(template("loop", language))), 0, 0, 0, 0) for language in LANGUAGES]
    spent = [0.0, 0.0]
    progress = [0, 0]
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
    try:
        for number, start in enumerate(range(0, len(datas), BATCH)):
            batch = datas[start : start + BATCH]
            for index in (0, 1) if number % 2 == 0 else (1, 0):
                started = time.process_time()  # CPU time: the machine may be busy with other work
                fold(runnings[index], decode(batch), progress)
                spent[index] += time.process_time() - started
    finally:
        gc.set_threshold(*thresholds)
    return len(datas) / spent[0], len(datas) / spent[1]


LANGUAGES = ("python", "hy")


def median(values: list[float]) -> float:
    return statistics.median(values)


def live_feed(root: Path, workers: int | None, templates: list[dict[str, Any]], count: int) -> dict[str, float]:
    """Events appended (batches of 1,000) while the projections run live, from an empty store.

    Returns wall seconds from the first append until every projection has folded the last event,
    the CPU seconds of this process (appends + the manager that feeds the workers) and of the
    workers. With ``workers=None`` no manager runs: the appends alone, to subtract.
    """
    folder = root / f"live-{time.monotonic_ns()}"
    folder.mkdir()
    cfg = config(folder, workers or 1)
    store = EventStore.open(cfg)
    batches = [
        [
            {"stream-name": f"stream-{i % 10}", "event-type": "counted", "payload": {"n": i % 7}}
            for i in range(k, k + 1000)
        ]
        for k in range(0, count, 1000)
    ]

    async def scenario() -> dict[str, float]:
        manager = None
        if workers is not None:
            manager = ProjectionManager(store, cfg)
            await manager.start()
            for item in templates:
                await manager.create(item)
            await wait_caught_up(manager, store.last_order_id())
        pids = [w.pid for w in manager.workers if w.pid is not None] if manager else []
        cpu, started = time.process_time(), time.perf_counter()
        each = [cpu_seconds([pid]) for pid in pids]
        for batch in batches:
            await asyncio.to_thread(store.append, batch)
        if manager is not None:
            await wait_caught_up(manager, store.last_order_id())
        out = {
            "wall": time.perf_counter() - started,
            "cpu": time.process_time() - cpu,
            "worker_cpu": max((cpu_seconds([pid]) - was for pid, was in zip(pids, each, strict=True)), default=0.0),
        }
        if manager is not None:
            await manager.stop()
        return out

    try:
        return asyncio.run(scenario())
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="photon-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    load_at_start = os.getloadavg()[0]
    setup = fill(folder, args.events)
    store = EventStore.open(config(folder, 1), read_only=True)
    events = store.last_order_id()
    store.close()
    rows.append(
        {
            "figure": f"set-up: {events:,} events appended (batches of {BATCH}, synchronous=OFF)",
            "value": f"{setup:.1f} s",
        }
    )

    # Runs alternate between the variants compared, so load from elsewhere hits both alike.
    limit = min(events, 500_000)
    loops = [loop_throughputs(folder, limit) for _ in range(args.repeat)]
    loop_py = median([pair[0] for pair in loops])
    loop_hy = median([pair[1] for pair in loops])
    rows.append({"figure": "worker fold loop only (decode + reduce), Python", "value": f"{loop_py:,.0f} events/s"})
    rows.append({"figure": "worker fold loop only (decode + reduce), Hy", "value": f"{loop_hy:,.0f} events/s"})

    def fold_round() -> tuple[tuple[float, float], tuple[float, float]]:
        """Python, Hy, Hy, Python (so that a drift of the machine's load hits both alike): the
        (wall, CPU) sums of each language."""
        first = asyncio.run(fold_time(folder, 1, [template("py", "python")]))
        hy_runs = [asyncio.run(fold_time(folder, 1, [template("hy", "hy")])) for _ in range(2)]
        last = asyncio.run(fold_time(folder, 1, [template("py", "python")]))
        py_pair = ((first[0] + last[0]) / 2, (first[1] + last[1]) / 2)
        hy_pair = ((hy_runs[0][0] + hy_runs[1][0]) / 2, (hy_runs[0][1] + hy_runs[1][1]) / 2)
        return py_pair, hy_pair

    folds = [fold_round() for _ in range(args.repeat)]
    py = median([pair[0][0] for pair in folds])
    hy = median([pair[1][0] for pair in folds])
    py_cpu = median([pair[0][1] for pair in folds])
    hy_cpu = median([pair[1][1] for pair in folds])
    rows.append({"figure": "fold throughput, 1 worker, Python sum (wall)", "value": f"{events / py:,.0f} events/s"})
    rows.append({"figure": "fold throughput, 1 worker, Hy sum (wall)", "value": f"{events / hy:,.0f} events/s"})
    rows.append(
        {"figure": "fold throughput, Python sum, per worker CPU-second", "value": f"{events / py_cpu:,.0f} events/s"}
    )
    rows.append(
        {"figure": "fold throughput, Hy sum, per worker CPU-second", "value": f"{events / hy_cpu:,.0f} events/s"}
    )
    # Each round ran Python, Hy, Hy, Python: the median of the rounds' ratios is steadier on a
    # loaded machine than the ratio of the medians (which may come from different rounds).
    pair_ratios = [pair[0][1] / pair[1][1] for pair in folds]
    rows.append(
        {
            "figure": "Hy / Python throughput (pool, CPU; median of the rounds' ratios)",
            "value": f"{median(pair_ratios):.2f} (rounds: {', '.join(f'{r:.2f}' for r in pair_ratios)})",
        }
    )
    loop_ratios = [pair[1] / pair[0] for pair in loops]
    rows.append(
        {
            "figure": "Hy / Python throughput (fold loop, CPU, batch by batch in turn; median of the rounds)",
            "value": f"{median(loop_ratios):.2f} (rounds: {', '.join(f'{r:.2f}' for r in loop_ratios)})",
        }
    )

    # Scaling: projections registered together (as at every start) and folded from the start.
    for label, items in (
        ("4 simple projections on __all__", [template(f"s{i}", "python" if i % 2 else "hy") for i in range(4)]),
        (
            "4 heavy projections on stream-0",
            [
                {"projection-name": f"h{i}", "stream-name": "stream-0", "initial-value": 0, "reduction": HEAVY_PY}
                for i in range(4)
            ],
        ),
    ):
        times = startup_times(folder, items, [1, 2], args.repeat)
        one, two = times["refold-1"], times["refold-2"]
        rows.append({"figure": f"{label}, start-up refold, 1 worker", "value": f"{one:.2f} s"})
        rows.append({"figure": f"{label}, start-up refold, 2 workers", "value": f"{two:.2f} s"})
        rows.append({"figure": f"{label}: speed-up 2 workers / 1", "value": f"{one / two:.2f}x"})
        one_cpu, two_cpu = times["refold-cpu-1"], times["refold-cpu-2"]
        rows.append(
            {
                "figure": f"{label}: speed-up 2 workers / 1 (busiest process's CPU)",
                "value": f"{one_cpu / two_cpu:.2f}x ({one_cpu:.2f} s / {two_cpu:.2f} s CPU)",
            }
        )
        one_idle, two_idle = times["refold-idle-1"], times["refold-idle-2"]
        rows.append(
            {
                "figure": f"{label}: speed-up 2 workers / 1 on 2 idle cores (max(busiest, all CPU / 2))",
                "value": f"{one_idle / two_idle:.2f}x ({one_idle:.2f} s / {two_idle:.2f} s)",
            }
        )
        one_total, two_total = times["refold-total-1"], times["refold-total-2"]
        rows.append(
            {
                "figure": f"{label}: CPU of all the processes, 1 worker / 2 workers",
                "value": f"{one_total:.2f} s / {two_total:.2f} s",
            }
        )
        one_feed, two_feed = times["refold-manager-1"], times["refold-manager-2"]
        rows.append(
            {
                "figure": f"{label}: the manager's (feeding process's) CPU per event in the store, start to caught up",
                "value": f"{one_feed / events * 1e6:.2f} µs (1 worker), {two_feed / events * 1e6:.2f} µs (2)",
            }
        )

    # Live: the same projections fed by the manager while events are appended; the manager's CPU
    # per event is this process's CPU less that of the same appends with no projections running.
    # The heavy ones read __all__ here, so that folding, not appending, takes the time.
    for label, items, live_count in (
        (
            "4 simple projections on __all__",
            [template(f"s{i}", "python" if i % 2 else "hy") for i in range(4)],
            min(args.events, 200_000),
        ),
        (
            "4 heavy projections on __all__",
            [{"projection-name": f"h{i}", "initial-value": 0, "reduction": HEAVY_PY} for i in range(4)],
            min(args.events, 40_000),
        ),
    ):
        runs: dict[str, list[dict[str, float]]] = {"none": [], "1": [], "2": []}
        for _ in range(args.repeat):
            runs["none"].append(live_feed(folder, None, items, live_count))
            runs["1"].append(live_feed(folder, 1, items, live_count))
            runs["2"].append(live_feed(folder, 2, items, live_count))
        base_cpu = median([r["cpu"] for r in runs["none"]])
        for workers in ("1", "2"):
            wall = median([r["wall"] for r in runs[workers]])
            feed_us = (median([r["cpu"] for r in runs[workers]]) - base_cpu) / live_count * 1e6
            busiest = median([r["worker_cpu"] for r in runs[workers]])
            rows.append(
                {
                    "figure": f"live, {label}, {workers} worker(s): {live_count:,} events appended and folded",
                    "value": f"{live_count / wall:,.0f} events/s; feeding process {feed_us:.2f} µs CPU/event; "
                    f"busiest worker {busiest / live_count * 1e6:.2f} µs CPU/event",
                }
            )
        one = median([r["wall"] for r in runs["1"]])
        two = median([r["wall"] for r in runs["2"]])
        rows.append({"figure": f"live, {label}: speed-up 2 workers / 1 (wall)", "value": f"{one / two:.2f}x"})
        one_cpu = median([r["worker_cpu"] for r in runs["1"]])
        two_cpu = median([r["worker_cpu"] for r in runs["2"]])
        rows.append(
            {
                "figure": f"live, {label}: speed-up 2 workers / 1 (busiest worker's CPU)",
                "value": f"{one_cpu / two_cpu:.2f}x",
            }
        )

    ten = [template(f"p{i}", "python" if i % 2 else "hy") for i in range(10)]
    times = startup_times(folder, ten, [args.workers], args.repeat)
    refold, restart = times[f"refold-{args.workers}"], times[f"resume-{args.workers}"]
    rows.append(
        {"figure": f"start-up, 10 projections, {args.workers} workers, no checkpoints", "value": f"{refold:.2f} s"}
    )
    rows.append(
        {"figure": f"start-up, 10 projections, {args.workers} workers, from checkpoints", "value": f"{restart:.2f} s"}
    )
    rows.append({"figure": "no checkpoints / from checkpoints", "value": f"{refold / restart:.1f}x"})
    rows.append(
        {
            "figure": "load average (1 min) at the start / at the end",
            "value": f"{load_at_start:.1f} / {os.getloadavg()[0]:.1f}",
        }
    )
    if not args.dir:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the store (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is shown (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="workers for the restart figures (default 2)")
    parser.add_argument("--dir", help="keep the store in this folder (reused when it already holds events)")
    args = parser.parse_args(argv)
    rows = run(args)
    width = max(len(row["figure"]) for row in rows)
    print(f"{'figure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 30}")
    for row in rows:
        print(f"{row['figure']:<{width}}  {row['value']}")
    return rows


if __name__ == "__main__":
    main()
