"""Consumer groups against a plain subscription: ``python -m benchmarks.groups [--events N] [--repeat R]``.

One SQLite store holds N events (default 100,000) over 100 streams. Each round, interleaved:

- a plain hot-cold subscription of `__all__` reads them all (`for item in subscription`);
- a consumer group with 1, 2 and 4 members (threads) consumes them all: each member takes what it
  is given (`member.take()`; `max-in-flight` = 5000) and hands the order-ids to its acknowledging
  thread, which acknowledges everything handed to it so far in one call; a call returns once the
  acknowledgement is durable (SQLite, synchronous=FULL). Acknowledging beside the consumer, rather
  than stopping it for each durable write, is what KurrentDB's and NATS's clients do too.

Prints events per second (medians of the rounds) and each group's ratio to the plain
subscription; target: one member at least 0.5x.
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import tempfile
import threading
import time
from pathlib import Path

from photon.core.store import EventStore
from photon.core.subscriptions import CaughtUp
from photon.groups import Member

TARGET = 0.5


def fill(store: EventStore, count: int) -> int:
    for start in range(0, count, 5000):
        store.append(
            [
                {"stream-name": f"s-{i % 100}", "event-type": "happened", "payload": {"n": i}}
                for i in range(start, min(start + 5000, count))
            ]
        )
    return store.last_order_id()


def plain(store: EventStore, count: int) -> float:
    started = time.perf_counter()
    seen = 0
    with store.subscribe("__all__", "hot-cold") as subscription:
        for item in subscription:
            if isinstance(item, CaughtUp):
                break
            seen += 1
    elapsed = time.perf_counter() - started
    assert seen >= count, seen
    return count / elapsed


def group(store: EventStore, name: str, members: int, count: int) -> float:
    started = time.perf_counter()
    store.groups.create({"group-name": name, "max-in-flight": 5000})
    joined = [store.groups.join(name, f"m{i}") for i in range(members)]
    acked = [0]
    lock = threading.Lock()

    def acknowledge(member: Member, handed: queue.SimpleQueue[list[int] | None]) -> None:
        while True:
            ids = handed.get()
            if ids is None:
                return
            while not handed.empty():  # everything handed over meanwhile goes in the same call
                more = handed.get()
                if more is None:
                    handed.put(None)
                    break
                ids += more
            done = member.ack(ids).done
            with lock:
                acked[0] += done

    def consume(member: Member) -> None:
        handed: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        acker = threading.Thread(target=acknowledge, args=(member, handed))
        acker.start()
        try:
            while True:
                with lock:
                    if acked[0] >= count:
                        return
                batch = member.take(0.05)
                if batch:
                    handed.put([d.event.order_id for d in batch])
        finally:
            handed.put(None)
            acker.join()

    threads = [threading.Thread(target=consume, args=(m,)) for m in joined]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for member in joined:
        member.close()
    store.groups.delete(name)
    return count / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        store = EventStore.open({"db.backend": "sqlite", "sqlite.path": str(Path(folder) / "groups.db")})
        try:
            fill(store, args.events)
            rates: dict[str, list[float]] = {"plain": [], "1": [], "2": [], "4": []}
            for round_ in range(args.repeat):
                rates["plain"].append(plain(store, args.events))
                for members in (1, 2, 4):
                    rates[str(members)].append(group(store, f"bench-{round_}-{members}", members, args.events))
        finally:
            store.close()
    medians = {key: statistics.median(values) for key, values in rates.items()}
    print(f"== consumer groups, {args.events:,} events, SQLite, medians of {args.repeat} rounds")
    print(f"   load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'consumer':<40}{'events/s':>12}{'vs plain':>10}")
    print(f"{'plain hot-cold subscription':<40}{medians['plain']:>12,.0f}{1.0:>9.2f}x")
    for members in ("1", "2", "4"):
        ratio = medians[members] / medians["plain"]
        mark = f"  (target >= {TARGET}x)" if members == "1" else ""
        label = f"group, {members} member{'s' if members != '1' else ''}, acks"
        print(f"{label:<40}{medians[members]:>12,.0f}{ratio:>9.2f}x{mark}")


if __name__ == "__main__":
    main()
