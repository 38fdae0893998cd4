"""AMQP benchmark: emits over RabbitMQ and live publishing, beside in-process appends, in one run.

    python -m benchmarks.amqp [--emits 4000] [--emitters 8] [--live 50000] [--url amqp://...]

a. in-process: `--emitters` threads appending single events straight into the store;
b. AMQP emit: `--emitters` client processes, each with its own `AmqpClient`, one command at
   a time (each waits for its reply, which comes once the event is durable in the store);
c. AMQP emit, pipelined: each client process keeps 32 commands in flight (`emit_many`);
d. live publishing: `--live` events appended in batches of 1000, timed until the broker has
   confirmed every one of them on the events exchange (persistent, publisher confirms).

SQLite store with synchronous=FULL, a private RabbitMQ node (or `--url` /
PHOTON_TEST_AMQP_URL). Prints a table with ratios against the in-process figure.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from photon.client.amqp import AmqpClient
from photon.core.config import load_config
from photon.core.store import EventStore
from photon.server.amqp import AmqpService

PIPELINE = 32


def event(stream: str, n: int) -> dict[str, Any]:
    return {
        "stream-name": stream,
        "event-type": "Deposited",
        "payload": {"amount": n, "currency": "EUR", "note": "x" * 64},
        "service-id": "bench",
    }


def threaded(threads: int, per_thread: int, work: Callable[[int, int], None]) -> float:
    """Events per second of `threads` threads each running `work(thread, count)`."""
    barrier = threading.Barrier(threads + 1)

    def run(index: int) -> None:
        barrier.wait()
        work(index, per_thread)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    return threads * per_thread / (time.perf_counter() - start)


def emitter(barrier: Any, index: int, count: int, url: str, service: str, window: int) -> None:
    """One client process: `count` events, `window` commands in flight (1 = wait for each reply)."""
    events = [event(f"amqp-{window}-{index}", n) for n in range(count)]
    with AmqpClient(url, service=service) as client:
        client.emit(event("warm-up", index))
        barrier.wait()
        if window == 1:
            for item in events:
                client.emit(item)
        else:
            client.emit_many(events, window=window)


def in_processes(processes: int, per_process: int, url: str, service: str, window: int) -> float:
    """Events per second of `processes` client processes (clients run apart from the server,
    as they would in production, so they do not share its interpreter lock)."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes + 1)
    pool = [
        context.Process(target=emitter, args=(barrier, i, per_process, url, service, window)) for i in range(processes)
    ]
    for process in pool:
        process.start()
    barrier.wait()
    start = time.perf_counter()
    for process in pool:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"an emitter process failed (exit code {process.exitcode})")
    return processes * per_process / (time.perf_counter() - start)


class Photon:
    def __init__(self, root: Path, url: str) -> None:
        name = f"bench{uuid.uuid4().hex[:8]}"
        self.name = name
        self.config = load_config(
            {
                "db.backend": "sqlite",
                "sqlite.path": str(root / f"{name}.db"),
                "sqlite.synchronous": "FULL",
                "muon.url": url,
                "microservice.name": name,
            },
            environ={},
        )
        self.store = EventStore.open(self.config)
        self.service = AmqpService(self.store, self.config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.service.start(), self.loop).result(60)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.service.stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.store.close()


def wait_published(photon: Photon, timeout: float = 300) -> None:
    last = photon.store.last_order_id()
    deadline = time.monotonic() + timeout
    while photon.service.published < last:
        if time.monotonic() > deadline:
            raise RuntimeError("live publishing did not catch up")
        time.sleep(0.002)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    url = args.url or os.environ.get("PHOTON_TEST_AMQP_URL")
    broker = None
    if not url:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.servers import RabbitServer

        broker = RabbitServer().start()
        url = broker.url
    root = Path(tempfile.mkdtemp(prefix="photon-bench-amqp-"))
    per_thread = max(1, args.emits // args.emitters)
    results: list[dict[str, Any]] = []
    try:
        photon = Photon(root, url)
        try:
            store = photon.store

            def append(index: int, count: int) -> None:
                for n in range(count):
                    store.append(event(f"local-{index}", n))

            wait_published(photon)
            local = threaded(args.emitters, per_thread, append)
            results.append({"workload": f"a. in-process append, {args.emitters} threads", "events/s": local})
            wait_published(photon)
            results.append(
                {
                    "workload": f"b. AMQP emit, {args.emitters} client processes",
                    "events/s": in_processes(args.emitters, per_thread, url, photon.name, 1),
                }
            )
            wait_published(photon)
            results.append(
                {
                    "workload": f"c. AMQP emit, {args.emitters} client processes x {PIPELINE} in flight",
                    "events/s": in_processes(args.emitters, per_thread, url, photon.name, PIPELINE),
                }
            )
            wait_published(photon)
            batch = [event("live", n) for n in range(1000)]
            start = time.perf_counter()
            for _ in range(max(1, args.live // 1000)):
                store.append(batch)
            stored_at = time.perf_counter() - start
            wait_published(photon)
            elapsed = time.perf_counter() - start
            live = max(1, args.live // 1000) * 1000
            results.append(
                {"workload": "   (batched in-process append of the same events)", "events/s": live / stored_at}
            )
            results.append({"workload": "d. live publish, confirmed by the broker", "events/s": live / elapsed})
            for row in results:
                row["vs in-process"] = row["events/s"] / local
        finally:
            photon.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if broker is not None:
            broker.close()
    return results


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emits", type=int, default=4000, help="events emitted in workloads a, b and c")
    parser.add_argument("--emitters", type=int, default=8, help="concurrent emitters (threads, one client each)")
    parser.add_argument("--live", type=int, default=50_000, help="events for the live publishing workload d")
    parser.add_argument("--url", default=None, help="AMQP URL of a broker to use instead of a private one")
    args = parser.parse_args(argv)
    rows = run(args)
    width = max(len(row["workload"]) for row in rows)
    print(f"{'workload':<{width}}  {'events/s':>10}  {'vs in-process':>13}")
    for row in rows:
        print(f"{row['workload']:<{width}}  {row['events/s']:>10,.0f}  {row['vs in-process']:>12.2f}x")
    return rows


if __name__ == "__main__":
    main()
