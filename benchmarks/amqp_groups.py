"""Consumer groups over AMQP, beside the same group in process and a plain AMQP replay, in one run.

    python -m benchmarks.amqp_groups [--events 20000] [--repeat 3] [--url amqp://...]

One SQLite store (synchronous=FULL) holds N events on one stream; each round, interleaved:

a. AMQP cold replay: one client process replays the stream (`AmqpClient.replay`), the
   non-durable way of reading the same events over the same broker;
b. in-process group, 1 member: `store.groups.join(...)`, `member.take()`, one `ack` per batch;
c. AMQP group, 1 member: a client process joins over AMQP (`AmqpClient.join_group`),
   `member.take()` and one `ack` per batch (each ack answered once durable);
d. AMQP group, 2 members: two such processes share the group.

Every group has `max-in-flight` 1000. Prints events per second (medians of the rounds) and each
figure's ratio to the AMQP replay. A private RabbitMQ node is started unless `--url` (or
PHOTON_TEST_AMQP_URL) names a broker.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.amqp import Photon
from photon.client.amqp import AmqpClient
from photon.core.store import EventStore

MAX_IN_FLIGHT = 1000
STREAM = "ledger"


def fill(store: EventStore, count: int) -> None:
    for start in range(0, count, 5000):
        store.append(
            [
                {"stream-name": STREAM, "event-type": "Deposited", "payload": {"n": n, "note": "x" * 64}}
                for n in range(start, min(start + 5000, count))
            ]
        )


def replayer(barrier: Any, url: str, service: str, count: int) -> None:
    with AmqpClient(url, service=service) as client:
        barrier.wait()
        seen = sum(1 for _ in client.replay(STREAM, "cold"))
    if seen != count:
        raise SystemExit(f"replayed {seen} events, expected {count}")


def member(barrier: Any, url: str, service: str, group: str, acked: Any, count: int) -> None:
    with AmqpClient(url, service=service) as client:
        barrier.wait()
        with client.join_group(group) as joined:
            while acked.value < count:
                batch = joined.take(0.2)
                if batch:
                    done = joined.ack([d.event.order_id for d in batch])["done"]
                    with acked.get_lock():
                        acked.value += done


def in_processes(targets: list[tuple[Any, tuple[Any, ...]]], barrier: Any) -> float:
    """Seconds from the barrier to the end of every process."""
    context = multiprocessing.get_context("spawn")
    pool = [context.Process(target=target, args=(barrier, *args)) for target, args in targets]
    for process in pool:
        process.start()
    barrier.wait()
    started = time.perf_counter()
    for process in pool:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"a client process failed (exit code {process.exitcode})")
    return time.perf_counter() - started


def amqp_group(photon: Photon, url: str, name: str, members: int, count: int) -> float:
    photon.store.groups.create({"group-name": name, "stream": STREAM, "max-in-flight": MAX_IN_FLIGHT})
    context = multiprocessing.get_context("spawn")
    acked = context.Value("q", 0)
    barrier = context.Barrier(members + 1)
    elapsed = in_processes([(member, (url, photon.name, name, acked, count)) for _ in range(members)], barrier)
    photon.store.groups.delete(name)
    return count / elapsed


def local_group(store: EventStore, name: str, count: int) -> float:
    store.groups.create({"group-name": name, "stream": STREAM, "max-in-flight": MAX_IN_FLIGHT})
    started = time.perf_counter()
    acked = 0
    with store.groups.join(name) as joined:
        while acked < count:
            batch = joined.take(0.2)
            if batch:
                acked += joined.ack([d.event.order_id for d in batch]).done
    elapsed = time.perf_counter() - started
    store.groups.delete(name)
    return count / elapsed


def run(args: argparse.Namespace) -> dict[str, float]:
    url = args.url or os.environ.get("PHOTON_TEST_AMQP_URL")
    broker = None
    if not url:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.servers import RabbitServer

        broker = RabbitServer().start()
        url = broker.url
    root = Path(tempfile.mkdtemp(prefix="photon-bench-amqp-groups-"))
    rates: dict[str, list[float]] = {"replay": [], "local": [], "amqp-1": [], "amqp-2": []}
    try:
        photon = Photon(root, url)
        try:
            fill(photon.store, args.events)
            context = multiprocessing.get_context("spawn")
            for round_ in range(args.repeat):
                barrier = context.Barrier(2)
                seconds = in_processes([(replayer, (url, photon.name, args.events))], barrier)
                rates["replay"].append(args.events / seconds)
                rates["local"].append(local_group(photon.store, f"local-{round_}", args.events))
                for members in (1, 2):
                    rate = amqp_group(photon, url, f"amqp-{round_}-{members}", members, args.events)
                    rates[f"amqp-{members}"].append(rate)
        finally:
            photon.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if broker is not None:
            broker.close()
    return {key: statistics.median(values) for key, values in rates.items()}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default=None, help="AMQP URL of a broker to use instead of a private one")
    args = parser.parse_args(argv)
    medians = run(args)
    labels = {
        "replay": "a. AMQP cold replay, 1 client process",
        "local": "b. in-process group, 1 member, acks",
        "amqp-1": "c. AMQP group, 1 member process, acks",
        "amqp-2": "d. AMQP group, 2 member processes, acks",
    }
    print(f"== consumer groups over AMQP, {args.events:,} events, SQLite FULL, medians of {args.repeat} rounds")
    print(f"   load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'workload':<44}{'events/s':>10}{'vs replay':>11}")
    for key, label in labels.items():
        print(f"{label:<44}{medians[key]:>10,.0f}{medians[key] / medians['replay']:>10.2f}x")
    return medians


if __name__ == "__main__":
    main()
