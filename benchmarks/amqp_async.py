"""The asyncio AMQP client (aio-pika) beside the blocking one (pika), in one run.

    python -m benchmarks.amqp_async [--emits 2000] [--events 20000] [--repeat 3] [--url amqp://...]

One SQLite store (synchronous=FULL) behind Photon's AMQP service. Each round, interleaved, one
client process per workload (the figure is the client's whole run: wall clock and its CPU time):

a. blocking `AmqpClient.emit`, one event per command, one at a time;
b. asyncio `AsyncAmqpClient.emit`, the same, one coroutine;
c. blocking `AmqpClient.emit_many`, 64 commands in flight;
d. asyncio `AsyncAmqpClient.emit` from 64 coroutines on one client;
e. blocking cold replay of the events (`AmqpClient.replay`);
f. asyncio cold replay (`AsyncAmqpClient.replay`).

Prints events per second and client CPU microseconds per event (medians of the rounds), and the
asyncio client's ratio to the blocking one for the same workload. A private RabbitMQ node is
started unless `--url` (or PHOTON_TEST_AMQP_URL) names a broker.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.amqp import Photon
from photon.client.amqp import AmqpClient
from photon.client.amqp_async import AsyncAmqpClient

WINDOW = 64
STREAM = "ledger"
HISTORY = "history"
"""The replayed stream (the emits go to other streams)."""


def _event(n: int) -> dict[str, Any]:
    return {"stream-name": f"{STREAM}-{n % 16}", "event-type": "Deposited", "payload": {"n": n, "note": "x" * 64}}


def _blocking(kind: str, url: str, service: str, count: int) -> None:
    with AmqpClient(url, service=service) as client:
        if kind == "emit":
            for n in range(count):
                client.emit(_event(n))
        elif kind == "emit-many":
            client.emit_many([_event(n) for n in range(count)], window=WINDOW)
        else:
            seen = sum(1 for _ in client.replay(HISTORY, "cold"))
            if seen != count:
                raise SystemExit(f"replayed {seen} events, expected {count}")


async def _asynchronous(kind: str, url: str, service: str, count: int) -> None:
    async with AsyncAmqpClient(url, service=service) as client:
        if kind == "emit":
            for n in range(count):
                await client.emit(_event(n))
        elif kind == "emit-many":
            numbers = iter(range(count))

            async def worker() -> None:
                for n in numbers:
                    await client.emit(_event(n))

            await asyncio.gather(*(worker() for _ in range(WINDOW)))
        else:
            seen = 0
            async for _ in client.replay(HISTORY, "cold"):
                seen += 1
            if seen != count:
                raise SystemExit(f"replayed {seen} events, expected {count}")


def client_process(barrier: Any, result: Any, flavour: str, kind: str, url: str, service: str, count: int) -> None:
    barrier.wait()
    started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    if flavour == "blocking":
        _blocking(kind, url, service, count)
    else:
        asyncio.run(_asynchronous(kind, url, service, count))
    after = resource.getrusage(resource.RUSAGE_SELF)
    result[0] = time.perf_counter() - started
    result[1] = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)


def measure(flavour: str, kind: str, url: str, service: str, count: int) -> tuple[float, float]:
    """Events per second and client CPU microseconds per event of one client process."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    result = context.Array("d", 2)
    process = context.Process(target=client_process, args=(barrier, result, flavour, kind, url, service, count))
    process.start()
    barrier.wait()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"the {flavour} {kind} client failed (exit code {process.exitcode})")
    return count / result[0], result[1] / count * 1e6


WORKLOADS = {
    "a": ("blocking", "emit", "a. blocking emit, one at a time"),
    "b": ("async", "emit", "b. asyncio emit, one at a time"),
    "c": ("blocking", "emit-many", f"c. blocking emit_many, {WINDOW} in flight"),
    "d": ("async", "emit-many", f"d. asyncio emit, {WINDOW} coroutines"),
    "e": ("blocking", "replay", "e. blocking cold replay"),
    "f": ("async", "replay", "f. asyncio cold replay"),
}
PAIRS = {"b": "a", "d": "c", "f": "e"}


def run(args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    url = args.url or os.environ.get("PHOTON_TEST_AMQP_URL")
    broker = None
    if not url:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.servers import RabbitServer

        broker = RabbitServer().start()
        url = broker.url
    root = Path(tempfile.mkdtemp(prefix="photon-bench-amqp-async-"))
    rates: dict[str, list[float]] = {key: [] for key in WORKLOADS}
    cpu: dict[str, list[float]] = {key: [] for key in WORKLOADS}
    try:
        photon = Photon(root, url)
        try:
            photon.store.append([{**_event(n), "stream-name": HISTORY} for n in range(args.events)])
            for _round in range(args.repeat):
                for key, (flavour, kind, _label) in WORKLOADS.items():
                    count = args.events if kind == "replay" else args.emits
                    rate, micros = measure(flavour, kind, url, photon.name, count)
                    rates[key].append(rate)
                    cpu[key].append(micros)
        finally:
            photon.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if broker is not None:
            broker.close()
    return {key: (statistics.median(rates[key]), statistics.median(cpu[key])) for key in WORKLOADS}


def main(argv: list[str] | None = None) -> dict[str, tuple[float, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emits", type=int, default=2_000, help="events emitted per emit workload")
    parser.add_argument("--events", type=int, default=20_000, help="events in the replayed stream")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default=None, help="AMQP URL of a broker to use instead of a private one")
    args = parser.parse_args(argv)
    medians = run(args)
    print(f"== AMQP clients, asyncio (aio-pika) and blocking (pika), SQLite FULL, medians of {args.repeat} rounds")
    print(f"   load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'workload':<40}{'events/s':>10}{'client CPU us/event':>21}{'asyncio/blocking':>18}")
    for key, (_flavour, _kind, label) in WORKLOADS.items():
        rate, micros = medians[key]
        versus = f"{rate / medians[PAIRS[key]][0]:.2f}x" if key in PAIRS else ""
        print(f"{label:<40}{rate:>10,.0f}{micros:>21,.0f}{versus:>18}")
    return medians


if __name__ == "__main__":
    main()
