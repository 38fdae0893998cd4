"""Photon's server beside NATS JetStream and beside a bare route of the same ASGI server, in one run.

    python -m benchmarks.server_peers [--seconds 3] [--repeat 3] [--async-events 50000]

Started here: a ``photon serve`` process (SQLite, ``synchronous=FULL``: an event is acknowledged
after its group commit is fsynced), two ``nats-server`` processes with JetStream on file storage
(one with ``sync_interval: always``, every acknowledged publish fsynced as Photon's appends are; one
with the default, an fsync every 2 minutes), and a uvicorn process configured as Photon's HTTP
service whose one route only answers. Each round runs every contender once, in turn; figures are
medians of the rounds.

Workloads (Photon / JetStream with ``nats-py``):

1. acknowledged single-event writes from 1 and from 32 clients: HTTP ``POST /api/event`` on one
   keep-alive connection per client / ``js.publish`` on one NATS connection per publisher;
2. pipelined writes from one client: TCP ingest (NDJSON, one ack per event) / ``js.publish_async``
   (up to 4,000 unacknowledged, the client's default), then waiting for every ack;
3. a consumer reading the whole stream: cold replay of ``__all__`` over HTTP NDJSON / a pull
   consumer fetching 1,000 at a time;
4. publish-to-consumer latency p99 at 1,000 events/s: a hot HTTP subscriber / a push consumer, from
   the writer's send (8 writers) to the consumer's receipt;
5. the limit: 32 HTTP clients against the bare route, with the same harness.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from . import server as photon_server
from .peer_servers import BareRoute, NatsServer, ensure_installed
from .summary import Row, median, table

CLIENTS = 32
RATE = 1000
PHOTON_DURABILITY = "fsync per group commit (SQLite WAL, synchronous=FULL)"
SYNC = {True: "fsync per write (sync_interval: always)", False: "fsync every 2 min (default sync_interval)"}


def payload(i: int) -> bytes:
    return orjson.dumps(photon_server.event(i))


# -- JetStream ---------------------------------------------------------------------------------


class JetStream:
    def __init__(self, server: NatsServer) -> None:
        self.server = server
        self.stream = "BENCH"

    async def setup(self) -> None:
        import nats
        from nats.js.api import StorageType, StreamConfig

        nc = await nats.connect(self.server.url)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name=self.stream, subjects=["bench.>"], storage=StorageType.FILE))
        await nc.close()

    async def acked(self, seconds: float, clients: int) -> float:
        import nats

        stop_at = time.perf_counter() + seconds
        counts = [0] * clients

        async def client(n: int) -> None:
            nc = await nats.connect(self.server.url)
            js = nc.jetstream()
            bodies = [payload(n * 1000 + k) for k in range(64)]
            k = 0
            while time.perf_counter() < stop_at:
                await js.publish(f"bench.w.{n % 16}", bodies[k % 64])
                counts[n] += 1
                k += 1
            await nc.close()

        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        return sum(counts) / (time.perf_counter() - started)

    async def pipelined(self, total: int) -> float:
        import nats

        nc = await nats.connect(self.server.url)
        js = nc.jetstream()
        bodies = [payload(k) for k in range(1000)]
        started = time.perf_counter()
        for i in range(total):
            await js.publish_async(f"bench.a.{i % 16}", bodies[i % 1000])
        await js.publish_async_completed()
        elapsed = time.perf_counter() - started
        await nc.close()
        return total / elapsed

    async def read_all(self) -> tuple[float, int]:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        nc = await nats.connect(self.server.url)
        js = nc.jetstream()
        info = await js.stream_info(self.stream)
        total = info.state.messages
        sub = await js.pull_subscribe(
            "bench.>",
            stream=self.stream,
            config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL),
        )
        started = time.perf_counter()
        count = 0
        while count < total:
            count += len(await sub.fetch(1000, timeout=10))
        elapsed = time.perf_counter() - started
        await sub.unsubscribe()
        await nc.close()
        return count / elapsed, count

    async def latency(self, seconds: float) -> dict[str, float]:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        nc = await nats.connect(self.server.url)
        js = nc.jetstream()
        total = int(seconds * RATE)
        sent: dict[int, int] = {}
        received: dict[int, int] = {}
        done = asyncio.Event()

        async def on_message(msg: Any) -> None:
            received[int(msg.data)] = time.perf_counter_ns()
            if len(received) >= total:
                done.set()

        subject = f"bench.lat.{time.monotonic_ns()}"
        await js.subscribe(
            subject,
            cb=on_message,
            config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.NEW),
        )
        writers = [await nats.connect(self.server.url) for _ in range(8)]
        free: asyncio.Queue[Any] = asyncio.Queue()
        for writer in writers:
            free.put_nowait(writer.jetstream())

        async def publish(i: int) -> None:
            writer = await free.get()
            sent[i] = time.perf_counter_ns()
            await writer.publish(subject, str(i).encode())
            free.put_nowait(writer)

        start = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = start + i / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(publish(i)))
        await asyncio.gather(*tasks)
        await asyncio.wait_for(done.wait(), 30)
        for writer in writers:
            await writer.close()
        await nc.close()
        samples = sorted((received[i] - sent[i]) / 1e6 for i in received)
        return {"p50": statistics.median(samples), "p99": photon_server.percentile(samples, 0.99)}


# -- the run ---------------------------------------------------------------------------------------


async def measure(args: argparse.Namespace, folder: Path) -> list[Row]:
    photon = photon_server.Server(folder)
    nats_sync, nats_default = NatsServer(sync_always=True), NatsServer(sync_always=False)
    bare = BareRoute()
    runs: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        runs.setdefault(name, []).append(value)

    try:
        for server in (nats_sync, nats_default, bare):
            server.start()
        jets = {True: JetStream(nats_sync), False: JetStream(nats_default)}
        for js in jets.values():
            await js.setup()
        token = await photon.token()
        bare_server: Any = type("Bare", (), {"host": bare.host, "port": bare.port})()
        phases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("photon 1", lambda: photon_server.http_emits(photon, token, args.seconds, 1, 1)),
            ("photon 32", lambda: photon_server.http_emits(photon, token, args.seconds, CLIENTS, 1)),
            ("bare 32", lambda: photon_server.http_emits(bare_server, token, args.seconds, CLIENTS, 1)),
            ("photon tcp", lambda: photon_server.tcp_ingest(photon, token, args.async_events)),
        ]
        for sync, js in jets.items():
            phases += [
                (f"js{sync} 1", lambda js=js: js.acked(args.seconds, 1)),
                (f"js{sync} 32", lambda js=js: js.acked(args.seconds, CLIENTS)),
                (f"js{sync} async", lambda js=js: js.pipelined(args.async_events)),
            ]
        reads: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("photon read", lambda: photon_server.cold_replay(photon, token)),
            ("jsTrue read", lambda: jets[True].read_all()),
            ("jsFalse read", lambda: jets[False].read_all()),
            ("photon latency", lambda: photon_server.latency(photon, token, args.seconds)),
            ("jsTrue latency", lambda: jets[True].latency(args.seconds)),
            ("jsFalse latency", lambda: jets[False].latency(args.seconds)),
        ]
        counts: dict[str, int] = {}
        for round_ in range(args.repeat):
            for name, phase in phases + reads:
                result = await phase()
                if isinstance(result, tuple):
                    record(name, result[0])
                    counts[name] = result[1]
                elif isinstance(result, dict):
                    record(name, result["p99"])
                    record(name + " p50", result["p50"])
                else:
                    record(name, result)
            print(f"  round {round_ + 1} done (load {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        photon.stop()
        for server in (nats_sync, nats_default, bare):
            server.close()
    m = {name: median(values) for name, values in runs.items()}
    http = "raw HTTP/1.1 keep-alive (asyncio)"
    rows: list[Row] = []
    for sync in (True, False):
        peer = f"NATS JetStream 2.x, {SYNC[sync].split(' (')[0]}"
        durability = f"Photon: {PHOTON_DURABILITY}; JetStream: {SYNC[sync]}"
        rows += [
            Row("acked single-event writes, 1 client", m["photon 1"], peer, m[f"js{sync} 1"],
                client=f"Photon: {http}; JetStream: nats-py js.publish", in_flight="1",
                durability=durability, runs={"photon": runs["photon 1"], "peer": runs[f"js{sync} 1"]}),
            Row(f"acked single-event writes, {CLIENTS} clients", m["photon 32"], peer, m[f"js{sync} 32"],
                client=f"Photon: {http}, one connection each; JetStream: nats-py, one connection each",
                in_flight=str(CLIENTS), durability=durability, target=1.5 if sync else None,
                runs={"photon": runs["photon 32"], "peer": runs[f"js{sync} 32"]}),
            Row("pipelined writes, 1 client", m["photon tcp"], peer, m[f"js{sync} async"],
                client="Photon: TCP ingest NDJSON; JetStream: nats-py publish_async",
                in_flight="Photon: unbounded (socket buffers); JetStream: up to 4,000", durability=durability,
                runs={"photon": runs["photon tcp"], "peer": runs[f"js{sync} async"]}),
            Row("consumer reading the whole stream", m["photon read"], peer, m[f"js{sync} read"],
                client="Photon: cold replay over HTTP NDJSON; JetStream: pull consumer, fetch(1000)",
                in_flight="1 reader", durability="-",
                runs={"photon": runs["photon read"], "peer": runs[f"js{sync} read"]}),
            Row(f"publish-to-consumer latency p99 at {RATE}/s", m["photon latency"], peer, m[f"js{sync} latency"],
                unit="ms", client="Photon: HTTP emits + hot HTTP subscriber; JetStream: js.publish + push consumer",
                in_flight="8 writers", durability=durability, target=2.0 if sync else None, higher=False,
                runs={"photon": runs["photon latency"], "peer": runs[f"js{sync} latency"],
                      "photon p50": runs["photon latency p50"], "peer p50": runs[f"js{sync} latency p50"]}),
        ]  # fmt: skip
    rows.append(
        Row(f"single-event HTTP emits, {CLIENTS} clients", m["photon 32"], "bare route, same uvicorn", m["bare 32"],
            client=http, in_flight=str(CLIENTS), durability=f"Photon: {PHOTON_DURABILITY}; bare route: nothing stored",
            target=0.5, runs={"photon": runs["photon 32"], "peer": runs["bare 32"]})
    )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each timed phase")
    parser.add_argument("--async-events", type=int, default=50_000, help="events of each pipelined phase")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are shown")
    args = parser.parse_args(argv)
    ensure_installed()
    folder = Path(tempfile.mkdtemp(prefix="photon-bench-peers-"))
    before = os.getloadavg()[0]
    try:
        try:
            import uvloop

            rows = uvloop.run(measure(args, folder))
        except ImportError:
            rows = asyncio.run(measure(args, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(table(rows))
    print(f"\nload average: {before:.1f} at start, {os.getloadavg()[0]:.1f} at end ({os.cpu_count()} cores)")
    return rows


if __name__ == "__main__":
    main()
