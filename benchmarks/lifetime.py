"""Benchmarks of appends across streams, conditional (DCB) appends, scavenging and metadata reads.

    python -m benchmarks.lifetime [--appends 2000] [--sizes 1000000,10000000] [--scavenge 200000] [--repeat 3]
                                  [--only a,b,c,d] [--append-fill]

a. appends of one event to each of 5 streams, with an expected version on each stream, against
   the same appends without (target: at least 0.8x);
b. conditional appends (a tag query, after the last position read) against the same appends
   without a condition, in stores of each size in --sizes (target: at least 0.5x, and the cost
   at the largest size within 1.5x of the cost at the smallest). The stores are filled by a bulk
   load of events that carry their positions (as a restore loads them; --append-fill appends
   them instead, much slower), then every store is measured in each round, so the sizes are
   compared under the same load, conditional and unconditional appends taking turns one by one;
   the rate is one over the median time of an append, and beside it the median CPU time of the
   process per append (the writer thread's included), which an fsync's wait does not blur;
c. scavenge rate: events removed per second, half of a store's streams deleted; and the SQLite
   file's size before and after;
d. a stream read with metadata (max-count, so the read is bounded by it) against one without
   (target: within 10%).

Every pair runs interleaved in the same process, on SQLite (WAL, synchronous=FULL), and each
figure is the median of --repeat rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from photon.core.append_request import AppendCondition, QueryItem
from photon.core.events import RecordedEvent, new_event_id, now_millis
from photon.core.store import EventStore

from .core import Workdir, open_store

ENTITIES = 100_000
"""Distinct tags in the DCB stores: each event carries one ``entity:<n>`` tag."""


def _median(values: list[float]) -> float:
    return statistics.median(values)


# -- a. five streams, an expected version each ---------------------------------------------------


def multi_stream(store: EventStore, count: int, checked: bool) -> float:
    names = [f"acc-{checked}-{i}" for i in range(5)]
    versions = {name: store.stream_version(name) for name in names}
    start = time.perf_counter()
    for n in range(count):
        batch = [{"stream-name": s, "event-type": "Moved", "payload": {"n": n}} for s in names]
        if checked:
            store.append(batch, expected_versions=versions)
            versions = {s: v + 1 for s, v in versions.items()}
        else:
            store.append(batch)
    return count / (time.perf_counter() - start)


# -- b. conditional appends in large stores ------------------------------------------------------


def fill(store: EventStore, size: int) -> None:
    batch = 5000
    for offset in range(0, size, batch):
        store.append(
            [
                {
                    "stream-name": f"entity-{(offset + i) % ENTITIES}",
                    "event-type": "Changed",
                    "payload": {"n": offset + i},
                    "tags": [f"entity:{(offset + i) % ENTITIES}"],
                }
                for i in range(min(batch, size - offset))
            ]
        )


def bulk_fill(store: EventStore, size: int) -> None:
    """The same events as `fill`, loaded with their positions through the store's bulk load."""
    with store.bulk_load():
        store.import_events(_positioned(size))


def _positioned(size: int) -> Iterator[RecordedEvent]:
    at = now_millis()
    for index in range(size):
        entity = index % ENTITIES
        stream, version, event_id = f"entity-{entity}", index // ENTITIES + 1, new_event_id()
        data = orjson.dumps(
            {
                "stream-name": stream,
                "event-type": "Changed",
                "payload": {"n": index},
                "tags": [f"entity:{entity}"],
                "id": event_id,
                "event-time": at,
                "order-id": index + 1,
                "stream-version": version,
            }
        )
        yield RecordedEvent(index + 1, stream, version, event_id, "Changed", at, data)


def conditional(store: EventStore, count: int, seed: int) -> dict[bool, tuple[float, float]]:
    """Conditional and unconditional appends taking turns, one each at a time (so a change of the
    machine's load hits both alike). For each kind: appends per second from the median time of
    one append (a loaded disk's rare slow fsyncs would decide a mean), and the process's median
    CPU microseconds per append (the writer thread's included)."""
    times: dict[bool, list[float]] = {True: [], False: []}
    cpus: dict[bool, list[float]] = {True: [], False: []}
    for n in range(count):
        tag = f"entity:{(seed * 7919 + n * 104729) % ENTITIES}"
        for checked in (n % 2 == 0, n % 2 == 1):
            event = {"stream-name": "decisions", "event-type": "Decided", "payload": {"n": n}, "tags": [tag]}
            start, cpu = time.perf_counter(), time.process_time()
            if checked:
                head = store.last_order_id()  # what a decision read up to
                store.append(event, condition=AppendCondition((QueryItem(tags=frozenset({tag})),), after=head))
            else:
                store.append(event)
            times[checked].append(time.perf_counter() - start)
            cpus[checked].append(time.process_time() - cpu)
    return {kind: (1 / _median(times[kind]), _median(cpus[kind]) * 1e6) for kind in (True, False)}


# -- c. scavenge ---------------------------------------------------------------------------------


def scavenge_round(path: Path, events: int) -> tuple[float, int, int, int]:
    with open_store(path) as store:
        streams = 100
        per = events // streams
        for index in range(streams):
            store.append([{"stream-name": f"s-{index}", "event-type": "E", "payload": {"pad": "p" * 200}}] * per)
        for index in range(0, streams, 2):
            store.delete_stream(f"s-{index}")
        store.in_writer(lambda c: c.backend._writer.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
        before = path.stat().st_size
        report = store.scavenge()
        after = path.stat().st_size
    return report.removed / report.seconds, report.removed, before, after


# -- d. reads with metadata ----------------------------------------------------------------------


def read_rate(store: EventStore, stream: str, rounds: int) -> float:
    start = time.perf_counter()
    total = 0
    for _ in range(rounds):
        total += sum(1 for _ in store.read(stream))
    return total / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--scavenge", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="a,b,c,d", help="which workloads to run (a, b, c, d)")
    parser.add_argument("--append-fill", action="store_true", help="fill the DCB stores by appends, not a bulk load")
    args = parser.parse_args(argv)
    parts = set(args.only.split(","))
    work = Workdir()
    rows: list[dict[str, Any]] = []

    def row(name: str, photon: float, peer: float, unit: str, target: str) -> None:
        ratio = photon / peer if peer else 0.0
        rows.append({"workload": name, "photon": photon, "peer": peer, "ratio": round(ratio, 3), "target": target})
        print(f"{name:60} {photon:12,.0f} {peer:12,.0f} {unit:10} {ratio:6.2f}x  {target}", flush=True)

    try:
        print(f"{'workload':60} {'with':>12} {'without':>12} {'unit':10} ratio   (load average {_load()})")
        if "a" in parts:
            with open_store(work.fresh("multi")) as store:
                checked, plain = [], []
                for _ in range(args.repeat):
                    plain.append(multi_stream(store, args.appends, False))
                    checked.append(multi_stream(store, args.appends, True))
            row(
                "a. 5-stream appends, expected version on each",
                _median(checked),
                _median(plain),
                "appends/s",
                ">= 0.8x",
            )

        if "b" in parts:
            conditional_appends(args, work, row, rows)

        if "c" in parts:
            rates, sizes = [], []
            for _ in range(args.repeat):
                rate, removed, before, after = scavenge_round(work.fresh("scavenge"), args.scavenge)
                rates.append(rate)
                sizes.append((before, after))
            before, after = sizes[len(sizes) // 2]
            rows.append({"workload": "c. scavenge", "events-per-second": _median(rates), "removed": removed})
            print(f"c. scavenge of half a store of {args.scavenge:,}: {_median(rates):,.0f} events/s removed")
            print(f"   SQLite file before {before:,} bytes, after {after:,} bytes ({after / before:.2f}x)")
            rows.append({"workload": "c. SQLite file after/before scavenging half", "before": before, "after": after})

        if "d" in parts:
            with open_store(work.fresh("meta")) as store:
                for name in ("plain", "limited"):
                    for _ in range(4):
                        store.append(
                            [{"stream-name": name, "event-type": "E", "payload": {"n": i}} for i in range(5000)]
                        )
                store.set_stream_metadata("limited", {"max-count": 1_000_000, "owner": "bench"})
                with_meta, without = [], []
                for _ in range(args.repeat * 3):
                    without.append(read_rate(store, "plain", 5))
                    with_meta.append(read_rate(store, "limited", 5))
            row("d. stream read with metadata (max-count)", _median(with_meta), _median(without), "events/s", ">= 0.9x")
    finally:
        work.close()
    return rows


def conditional_appends(args: argparse.Namespace, work: Workdir, row: Any, rows: list[dict[str, Any]]) -> None:
    """b: every store filled first, then each round measures every store in turn (same load)."""
    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    stores: dict[int, EventStore] = {}
    try:
        for size in sizes:
            store = stores[size] = open_store(work.fresh(f"dcb-{size}"))
            started = time.perf_counter()
            (fill if args.append_fill else bulk_fill)(store, size)
            how = "appended" if args.append_fill else "bulk-loaded"
            print(f"   ({how} a store of {size:,} tagged events in {time.perf_counter() - started:.0f} s)", flush=True)
        results: dict[int, dict[bool, list[tuple[float, float]]]] = {size: {True: [], False: []} for size in sizes}
        for seed in range(args.repeat):
            for size in sizes:
                for kind, figures in conditional(stores[size], args.appends, seed).items():
                    results[size][kind].append(figures)
        cpu: dict[int, float] = {}
        wall: dict[int, float] = {}
        for size in sizes:
            checked = [r for r, _ in results[size][True]]
            plain = [r for r, _ in results[size][False]]
            row(f"b. conditional appends, store of {size:,}", _median(checked), _median(plain), "appends/s", ">= 0.5x")
            cpu[size] = _median([c for _, c in results[size][True]])
            plain_cpu = _median([c for _, c in results[size][False]])
            wall[size] = 1e6 / _median(checked)
            print(
                f"   CPU per append, store of {size:,}: {cpu[size]:,.0f} us with the condition,"
                f" {plain_cpu:,.0f} without"
            )
            rows.append(
                {"workload": f"b. CPU us per append, store of {size:,}", "with": cpu[size], "without": plain_cpu}
            )
        if len(sizes) > 1:
            small, large = sizes[0], sizes[-1]
            for name, costs in (("wall-clock", wall), ("CPU", cpu)):
                growth = costs[large] / costs[small]
                rows.append(
                    {"workload": f"b. conditional append {name} cost, largest/smallest", "ratio": round(growth, 3)}
                )
                print(f"   conditional append {name} cost at {large:,} / at {small:,}: {growth:.2f}x (target <= 1.5x)")
    finally:
        for store in stores.values():
            store.close()


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


if __name__ == "__main__":
    main()
