"""Benchmarks of appends across streams, conditional (DCB) appends, scavenging and metadata reads.

    python -m benchmarks.lifetime [--appends 2000] [--sizes 1000000,10000000] [--scavenge 200000] [--repeat 3]

a. appends of one event to each of 5 streams, with an expected version on each stream, against
   the same appends without (target: at least 0.8x);
b. conditional appends (a tag query, after the last position read) against the same appends
   without a condition, in stores of each size in --sizes (target: at least 0.5x, and the cost
   at the largest size within 1.5x of the cost at the smallest);
c. scavenge rate: events removed per second, half of a store's streams deleted; and the SQLite
   file's size before and after;
d. a stream read with metadata (max-count, so the read is bounded by it) against one without
   (target: within 10%).

Every pair runs interleaved in the same process, on SQLite (WAL, synchronous=FULL), and each
figure is the median of --repeat rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from photon.core.append_request import AppendCondition, QueryItem
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


def conditional(store: EventStore, count: int, checked: bool, seed: int) -> float:
    start = time.perf_counter()
    for n in range(count):
        tag = f"entity:{(seed * 7919 + n * 104729) % ENTITIES}"
        event = {"stream-name": "decisions", "event-type": "Decided", "payload": {"n": n}, "tags": [tag]}
        if checked:
            head = store.last_order_id()  # what a decision read up to
            store.append(event, condition=AppendCondition((QueryItem(tags=frozenset({tag})),), after=head))
        else:
            store.append(event)
    return count / (time.perf_counter() - start)


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
    args = parser.parse_args(argv)
    work = Workdir()
    rows: list[dict[str, Any]] = []

    def row(name: str, photon: float, peer: float, unit: str, target: str) -> None:
        ratio = photon / peer if peer else 0.0
        rows.append({"workload": name, "photon": photon, "peer": peer, "ratio": round(ratio, 3), "target": target})
        print(f"{name:60} {photon:12,.0f} {peer:12,.0f} {unit:10} {ratio:6.2f}x  {target}", flush=True)

    try:
        print(f"{'workload':60} {'with':>12} {'without':>12} {'unit':10} ratio")
        with open_store(work.fresh("multi")) as store:
            checked, plain = [], []
            for _ in range(args.repeat):
                plain.append(multi_stream(store, args.appends, False))
                checked.append(multi_stream(store, args.appends, True))
        row("a. 5-stream appends, expected version on each", _median(checked), _median(plain), "appends/s", ">= 0.8x")

        costs: dict[int, float] = {}
        for size in [int(s) for s in args.sizes.split(",") if s]:
            with open_store(work.fresh(f"dcb-{size}")) as store:
                started = time.perf_counter()
                fill(store, size)
                print(f"   (filled a store of {size:,} tagged events in {time.perf_counter() - started:.0f} s)")
                checked, plain = [], []
                for seed in range(args.repeat):
                    plain.append(conditional(store, args.appends, False, seed))
                    checked.append(conditional(store, args.appends, True, seed))
            costs[size] = 1 / _median(checked)
            row(f"b. conditional appends, store of {size:,}", _median(checked), _median(plain), "appends/s", ">= 0.5x")
        if len(costs) > 1:
            small, large = min(costs), max(costs)
            growth = costs[large] / costs[small]
            rows.append({"workload": "b. conditional append cost, largest/smallest store", "ratio": round(growth, 3)})
            print(f"   conditional append cost at {large:,} / at {small:,}: {growth:.2f}x (target <= 1.5x)")

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

        with open_store(work.fresh("meta")) as store:
            for name in ("plain", "limited"):
                for _ in range(4):
                    store.append([{"stream-name": name, "event-type": "E", "payload": {"n": i}} for i in range(5000)])
            store.set_stream_metadata("limited", {"max-count": 1_000_000, "owner": "bench"})
            with_meta, without = [], []
            for _ in range(args.repeat * 3):
                without.append(read_rate(store, "plain", 5))
                with_meta.append(read_rate(store, "limited", 5))
        row("d. stream read with metadata (max-count)", _median(with_meta), _median(without), "events/s", ">= 0.9x")
    finally:
        work.close()
    return rows


if __name__ == "__main__":
    main()
