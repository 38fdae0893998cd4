"""Server benchmarks, side by side in one run, against a `photon serve` child process.

    python -m benchmarks.server [--seconds 5] [--tcp-events 200000] [--repeat 3] [--dir DIR]

The server runs the default embedded SQLite store with durability on (``sqlite.synchronous=FULL``,
the default: an append is acknowledged after its group commit is on disk). The load comes
from this process (uvloop when installed), with plain HTTP/1.1 keep-alive connections that send
pre-encoded requests, so the client spends little of the machine's two cores.

1. single-event emits over HTTP, 32 concurrent clients (one event per POST /api/event)
2. batched emits over HTTP (100 events per POST, 8 concurrent clients)
3. TCP ingest on events.port (one connection, NDJSON in, one ack per event)
4. cold replay of __all__ over HTTP NDJSON
5. commit-to-subscriber latency at 1k events/s: a hot replay subscriber over HTTP, events emitted
   over HTTP at a steady 1,000/s; latency is from the emitter's send to the subscriber's receipt
   (this includes the durable commit itself, so it is an upper bound of commit-to-subscriber).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

CLIENTS = 32
BATCH = 100
BATCH_CLIENTS = 8
LATENCY_RATE = 1000
ESDB_HTTP = 2000.0  # published EventStoreDB HTTP append figure, events/s


# -- a small HTTP/1.1 client: requests are bytes, answers are (status, body) ------------------


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Conn:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        match = re.search(rb"(?i)content-length: *(\d+)", head)
        body = await self.reader.readexactly(int(match.group(1))) if match else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def post(path: str, body: bytes, token: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Token {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def event(i: int, stream: str = "bench") -> dict[str, Any]:
    return {"stream-name": f"{stream}-{i % 16}", "event-type": "measured", "payload": {"i": i, "pad": "x" * 60}}


# -- the server ------------------------------------------------------------------------------


class Server:
    def __init__(self, folder: Path, store_args: list[str] | None = None) -> None:
        """`photon serve` on a store in `folder`, or on the one `store_args` names (``-db.backend ...``)."""
        self.log_path = folder / "server.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTON_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from photon.cli.main import main; main()", "serve",
             "-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0", "-projections.port", "0",
             *(store_args or ["-sqlite.path", str(folder / "bench.db")])],
            cwd=folder, stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            text = self.log_path.read_text()
            match = re.search(r"HTTP API listening on http://([\d.]+):(\d+)", text)
            tcp = re.search(r"TCP ingest listening on [\d.]+:(\d+)", text)
            if match and tcp:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{text}")
            time.sleep(0.05)
        self.host, self.port, self.tcp_port = match.group(1), int(match.group(2)), int(tcp.group(1))

    async def token(self) -> str:
        conn = await Conn.open(self.host, self.port)
        basic = base64.b64encode(b"admin:p4010n").decode()
        status, body = await conn.send(
            f"GET /auth/token HTTP/1.1\r\nHost: b\r\nAuthorization: Basic {basic}\r\n\r\n".encode()
        )
        conn.close()
        assert status == 200, body
        return str(orjson.loads(body)["token"])

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


# -- the measurements --------------------------------------------------------------------------


async def http_emits(server: Server, token: str, seconds: float, clients: int, batch: int) -> float:
    """Events per second stored by `clients` connections posting `batch` events per request."""
    stop_at = time.perf_counter() + seconds
    counts = [0] * clients

    async def client(n: int) -> None:
        conn = await Conn.open(server.host, server.port)
        requests = [
            post(
                "/api/event",
                orjson.dumps(event(n * 1000 + k) if batch == 1 else [event(k) for k in range(batch)]),
                token,
            )
            for k in range(64)
        ]
        k = 0
        while time.perf_counter() < stop_at:
            status, body = await conn.send(requests[k % 64])
            if status != 200:
                raise RuntimeError(f"emit failed: {status} {body[:200]!r}")
            counts[n] += batch
            k += 1
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    return sum(counts) / (time.perf_counter() - started)


async def tcp_ingest(server: Server, token: str, total: int) -> float:
    reader, writer = await asyncio.open_connection(server.host, server.tcp_port, limit=1 << 22)
    writer.write(orjson.dumps({"token": token}) + b"\n")
    block = b"".join(orjson.dumps(event(i, "tcp")) + b"\n" for i in range(1000))
    started = time.perf_counter()

    async def send() -> None:
        for _ in range(total // 1000):
            writer.write(block)
            await writer.drain()

    async def receive() -> int:
        acks = 0
        errors = 0
        while acks < total:
            chunk = await reader.read(1 << 20)
            if not chunk:
                raise RuntimeError("the server closed the ingest connection")
            acks += chunk.count(b"\n")
            errors += chunk.count(b'"error"')
        if errors:
            raise RuntimeError(f"{errors} events were refused")
        return acks

    await asyncio.gather(send(), receive())
    elapsed = time.perf_counter() - started
    writer.close()
    return (total // 1000 * 1000) / elapsed


async def cold_replay(server: Server, token: str) -> tuple[float, int]:
    conn = await Conn.open(server.host, server.port)
    conn.writer.write(
        f"GET /api/replay/__all__?stream-type=cold HTTP/1.1\r\nHost: b\r\nAuthorization: Token {token}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    started = time.perf_counter()
    lines = 0
    tail = b""
    while True:
        chunk = await conn.reader.read(1 << 20)
        if not chunk:
            break
        # Every NDJSON line ends with '}\n'; chunked-encoding size lines never do.
        lines += (tail + chunk).count(b"}\n") - tail.count(b"}\n")
        tail = chunk[-1:]
    elapsed = time.perf_counter() - started
    conn.close()
    return lines / elapsed, lines


async def latency(server: Server, token: str, seconds: float) -> dict[str, Any]:
    """Milliseconds from send (and from the emitter's ack) to the subscriber's receipt, at LATENCY_RATE/s."""
    sub = await Conn.open(server.host, server.port)
    sub.writer.write(
        f"GET /api/replay/latency-0?stream-type=hot HTTP/1.1\r\nHost: b\r\n"
        f"Authorization: Token {token}\r\n\r\n".encode()
    )
    await sub.reader.readuntil(b"\r\n\r\n")
    await asyncio.sleep(0.3)
    sent: dict[int, int] = {}
    acked: dict[int, int] = {}
    received: dict[int, int] = {}
    total = int(seconds * LATENCY_RATE)

    async def subscriber() -> None:
        buffer = b""
        while len(received) < total:
            chunk = await sub.reader.read(1 << 16)
            now = time.perf_counter_ns()
            buffer += chunk
            for match in re.finditer(rb'"payload":\{"i":(\d+)', buffer):
                received.setdefault(int(match.group(1)), now)
            buffer = buffer[-200:]

    async def emitter() -> None:
        free: asyncio.Queue[Conn] = asyncio.Queue()
        for _ in range(8):
            free.put_nowait(await Conn.open(server.host, server.port))
        interval = 1 / LATENCY_RATE
        start = time.perf_counter()
        tasks = []

        async def emit(i: int) -> None:
            conn = await free.get()
            body = orjson.dumps({"stream-name": "latency-0", "event-type": "t", "payload": {"i": i}})
            sent[i] = time.perf_counter_ns()
            await conn.send(post("/api/event", body, token))
            acked[i] = time.perf_counter_ns()
            free.put_nowait(conn)

        for i in range(total):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(emit(i)))
        await asyncio.gather(*tasks)

    await asyncio.wait_for(asyncio.gather(subscriber(), emitter()), seconds * 4 + 30)
    sub.close()
    samples = sorted((received[i] - sent[i]) / 1e6 for i in received)
    after_ack = sorted((received[i] - acked[i]) / 1e6 for i in received)
    return {
        "p50": statistics.median(samples),
        "p99": percentile(samples, 0.99),
        "max": samples[-1],
        "ack_p50": statistics.median(after_ack),
        "ack_p99": percentile(after_ack, 0.99),
        "samples": len(samples),
    }


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def measure(folder: Path, seconds: float, tcp_events: int, repeat: int) -> list[dict[str, Any]]:
    """Each phase `repeat` times, in turn, against one server; the median of each is reported."""
    server = Server(folder)
    runs: dict[str, list[Any]] = {"single": [], "batched": [], "tcp": [], "replay": [], "latency": []}
    cpu_per_event: dict[str, list[float]] = {name: [] for name in runs}
    try:
        token = await server.token()
        for _ in range(repeat):
            for name, phase in (
                ("single", lambda: http_emits(server, token, seconds, CLIENTS, 1)),
                ("batched", lambda: http_emits(server, token, seconds, BATCH_CLIENTS, BATCH)),
                ("tcp", lambda: tcp_ingest(server, token, tcp_events)),
                ("replay", lambda: cold_replay(server, token)),
                ("latency", lambda: latency(server, token, seconds)),
            ):
                cpu_start, wall = server.cpu_seconds(), time.perf_counter()
                result = await phase()
                used, wall = server.cpu_seconds() - cpu_start, time.perf_counter() - wall
                runs[name].append(result)
                rate = result[0] if isinstance(result, tuple) else result
                if isinstance(rate, float):
                    cpu_per_event[name].append(used / (rate * wall) * 1e6)
    finally:
        server.stop()
    single = statistics.median(runs["single"])
    batched = statistics.median(runs["batched"])
    tcp = statistics.median(runs["tcp"])
    replay = statistics.median(rate for rate, _ in runs["replay"])
    replayed = max(count for _, count in runs["replay"])
    lat = sorted(runs["latency"], key=lambda r: r["p99"])[len(runs["latency"]) // 2]

    def spread(values: list[float]) -> str:
        return f"runs: {', '.join(f'{v:,.0f}' for v in values)}"

    def cpu(name: str) -> str:
        return f"{statistics.median(cpu_per_event[name]):.0f} µs" if cpu_per_event[name] else "-"

    return [
        {"name": f"HTTP single-event emits, {CLIENTS} clients", "value": single, "unit": "events/s",
         "target": 4000.0, "higher": True, "cpu": cpu("single"),
         "reference": f"EventStoreDB HTTP ~{ESDB_HTTP:,.0f}/s: x{single / ESDB_HTTP:.2f}; {spread(runs['single'])}"},
        {"name": f"HTTP batched emits, {BATCH}/request, {BATCH_CLIENTS} clients", "value": batched,
         "unit": "events/s", "target": None, "higher": True, "cpu": cpu("batched"),
         "reference": f"x{batched / single:.1f} single-event; {spread(runs['batched'])}"},
        {"name": "TCP ingest, 1 connection", "value": tcp, "unit": "events/s", "target": 100_000.0, "higher": True,
         "cpu": cpu("tcp"),
         "reference": f"x{tcp / single:.1f} single-event HTTP; {spread(runs['tcp'])}"},
        {"name": f"cold replay of __all__ over HTTP NDJSON (up to {replayed:,} events)", "value": replay,
         "unit": "events/s", "target": 200_000.0, "higher": True, "cpu": cpu("replay"),
         "reference": spread([rate for rate, _ in runs["replay"]])},
        {"name": f"send-to-subscriber latency p99 at {LATENCY_RATE}/s", "value": lat["p99"],
         "unit": "ms", "target": 5.0, "higher": False, "cpu": "-",
         "reference": f"p50 {lat['p50']:.2f} ms, max {lat['max']:.1f} ms; after the emitter's own ack: "
         f"p50 {lat['ack_p50']:.2f} ms, p99 {lat['ack_p99']:.2f} ms; p99 of runs: "
         + ", ".join(f"{r['p99']:.1f}" for r in runs["latency"])},
    ]  # fmt: skip


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="photon-bench-server-"))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        import uvloop

        return uvloop.run(measure(folder, args.seconds, args.tcp_events, args.repeat))
    except ImportError:
        return asyncio.run(measure(folder, args.seconds, args.tcp_events, args.repeat))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| benchmark | measured (median) | target | ratio to target | server CPU per event | side by side |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        value, target = r["value"], r["target"]
        fmt = "{:,.0f}" if r["unit"] == "events/s" else "{:.2f}"
        measured = fmt.format(value) + " " + r["unit"]
        if target is None:
            goal, ratio = "-", "-"
        else:
            goal = ("≥ " if r["higher"] else "≤ ") + fmt.format(target) + " " + r["unit"]
            ratio = f"{value / target:.2f}" if r["higher"] else f"{target / value:.2f}"
            ratio += " ✓" if (value >= target if r["higher"] else value <= target) else " ✗"
        rows.append(f"| {r['name']} | {measured} | {goal} | {ratio} | {r['cpu']} | {r['reference']} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each timed phase")
    parser.add_argument("--tcp-events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each phase; the median is reported")
    parser.add_argument("--dir", default=None, help="working folder (emptied; default: a temporary one)")
    args = parser.parse_args(argv)
    before = os.getloadavg()[0]
    results = run(args)
    print(table(results))
    print(
        f"\nload average of the machine: {before:.1f} at start, {os.getloadavg()[0]:.1f} at end "
        f"({os.cpu_count()} cores)"
    )
    return results


if __name__ == "__main__":
    main()
