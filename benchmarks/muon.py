"""Muon benchmark: the Muon node client against Photon, beside Photon's own AMQP protocol and bare
AMQP floors, in one run, interleaved round by round; medians of the rounds.

    python -m benchmarks.muon [--rounds 3] [--emits 400] [--slow-emits 40] [--replay 2000] [--url amqp://...]

Workloads (each round runs them all, in this order):

a. Muon emit, node client (muon-core 7.2.6, `tests/muon_client.js`), 1 emit in flight;
b. Photon's own AMQP emit (`AmqpClient.emit`, pika), 1 in flight;
c. floor: bare request/reply of the same sizes, amqplib client -> pika responder, no store, 1 in flight;
d. - f. the same three with 32 in flight (`emitloop` with 32 workers, `emit_many(window=32)`);
g. Muon emit through a bare Muon wire client in Python (pika), 1 in flight: what Photon's Muon
   path costs without the node client's own delays;
h. Muon replay, node client: a cold replay of `--replay` events (from the first event to the end);
i. floor: as many bare messages of the size of a replay's Data frame, published by pika and
   consumed by amqplib (acknowledged one by one, as muon-core does);
j. Muon replay through the bare wire client granting all the credit at once.

SQLite store with synchronous=FULL, a private RabbitMQ node (or `--url`). The node client and
muon-core come from scripts/install-test-servers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "muon_client.js"
FLOOR = Path(__file__).with_name("muon_floor.js")
PAD = "x" * 64


def node_env() -> dict[str, str]:
    sys.path.insert(0, str(ROOT))
    from tests.servers import servers_home

    modules = servers_home() / "muon-node" / "node_modules"
    if not (modules / "muon-core").exists():
        sys.exit(f"muon-core is not installed under {modules}: run scripts/install-test-servers")
    return {**os.environ, "NODE_PATH": str(modules), "LEVEL": "error"}


def node(script: Path, *args: str, env: dict[str, str], timeout: float = 600) -> list[dict[str, Any]]:
    result = subprocess.run(["node", str(script), *args], capture_output=True, env=env, timeout=timeout, check=False)
    lines = [line[3:] if line.startswith(b"@@ ") else line for line in result.stdout.splitlines()]
    values = []
    for line in lines:
        try:
            values.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    if result.returncode != 0:
        raise RuntimeError(f"{script.name} {args[:2]} failed: {values[-3:]} {result.stderr[-500:]!r}")
    return [v for v in values if isinstance(v, dict)]


def sample_event(n: int, stream: str) -> dict[str, Any]:
    return {
        "stream-name": stream,
        "event-type": "tick",
        "service-id": "bench",
        "payload": {"n": n, "tag": "", "pad": PAD},
    }


def wire_sizes() -> tuple[int, int, int]:
    """Sizes of Muon's emit request, its answer and a replay's Data message, as on the wire."""
    from photon.server.amqp import muon_wire as wire

    event = sample_event(1, "bench")
    channel = str(uuid.uuid4())
    inner = wire.message(event, protocol="event", step="EventEmitted", origin="muon-test-client", target="photon")
    request = wire.shared_frame(channel, inner, origin="muon-test-client", target="photon")
    answer = wire.message(
        {"status": "PERSISTED", "orderId": 123456, "eventTime": 1_718_000_000_000, "cause": None},
        protocol="event",
        step="EventProcessed",
        origin="photon",
        target="muon-test-client",
    )
    reply = wire.shared_frame(channel, answer, origin="photon", target="muon-test-client")
    stored = {"order-id": 123456, "stream-version": 1234, **event, "id": str(uuid.uuid4()), "event-time": 1}
    data = wire.message(None, protocol="reactive-stream", step="Data", origin="photon", target="muon-test-client")
    data["payload"] = list(orjson.dumps(stored))
    return len(request), len(reply), len(wire.shared_frame(channel, data, origin="photon", target="muon-test-client"))


class Responder(threading.Thread):
    """The floor's server side: pika answers every request with a reply of `size` bytes."""

    def __init__(self, url: str, queue: str, size: int) -> None:
        super().__init__(daemon=True)
        import pika

        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.queue_declare(queue, durable=False, auto_delete=False)
        self.queue = queue
        self.body = b"b" * size
        self.stopping = False

    def run(self) -> None:
        import pika

        def answer(channel: Any, method: Any, properties: Any, _body: bytes) -> None:
            channel.basic_publish(
                "", properties.reply_to, self.body, pika.BasicProperties(correlation_id=properties.correlation_id)
            )

        self.channel.basic_consume(self.queue, answer, auto_ack=True)
        while not self.stopping:
            self.connection.process_data_events(time_limit=0.2)
        self.connection.close()


def floor_stream(url: str, env: dict[str, str], count: int, size: int) -> float:
    """Messages per second of the replay floor: pika publishes, amqplib consumes."""
    import pika

    queue = f"floor-stream-{uuid.uuid4().hex[:8]}"
    consumer = subprocess.Popen(
        ["node", str(FLOOR), "consume", orjson.dumps({"url": url, "queue": queue, "count": count}).decode()],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert consumer.stdout is not None
    assert orjson.loads(consumer.stdout.readline()).get("ready")
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    body = b"d" * size
    for _ in range(count):
        channel.basic_publish("", queue, body)
    result = orjson.loads(consumer.stdout.readline())
    consumer.wait(60)
    channel.queue_delete(queue)
    connection.close()
    return count / (result["ms"] / 1000)


class Photon:
    def __init__(self, root: Path, url: str) -> None:
        from photon.core.config import load_config
        from photon.core.store import EventStore
        from photon.server.amqp import AmqpService

        self.config = load_config(
            {
                "db.backend": "sqlite",
                "sqlite.path": str(root / "muon.db"),
                "sqlite.synchronous": "FULL",
                "muon.url": url,
                "microservice.name": "photon",
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


def muon_emits(url: str, env: dict[str, str], count: int, inflight: int, stream: str) -> float:
    args = {"stream": stream, "count": count, "inflight": inflight, "quiet": True, "warmup": True, "pad": PAD}
    results = node(DRIVER, url, "emitloop", orjson.dumps(args).decode(), env=env)
    done = next(r for r in results if "done" in r)
    return float(done["done"]) / (done["ms"] / 1000)


def own_emits(url: str, count: int, inflight: int, stream: str) -> float:
    from photon.client.amqp import AmqpClient

    events = [sample_event(n, stream) for n in range(count)]
    with AmqpClient(url, service="photon") as client:
        client.emit(sample_event(0, stream + "-warmup"))
        start = time.perf_counter()
        if inflight == 1:
            for item in events:
                client.emit(item)
        else:
            client.emit_many(events, window=inflight)
        return count / (time.perf_counter() - start)


def floor_reqrep(url: str, env: dict[str, str], count: int, inflight: int, sizes: tuple[int, int, int]) -> float:
    queue = f"floor-rpc-{uuid.uuid4().hex[:8]}"
    responder = Responder(url, queue, sizes[1])
    responder.start()
    try:
        args = {"url": url, "queue": queue, "count": count, "inflight": inflight, "size": sizes[0]}
        [result] = node(FLOOR, "reqrep", orjson.dumps(args).decode(), env=env)
        return count / (result["ms"] / 1000)
    finally:
        responder.stopping = True
        responder.join(5)


def wire_emits(url: str, count: int, stream: str) -> float:
    from tests.muon_support import WireClient

    client = WireClient(url)
    try:
        client.send("event", "EventEmitted", sample_event(0, stream + "-warmup"))
        client.receive()
        start = time.perf_counter()
        for n in range(count):
            client.send("event", "EventEmitted", sample_event(n, stream))
            answer = client.receive()
            assert answer is not None and answer["step"] == "EventProcessed"
        return count / (time.perf_counter() - start)
    finally:
        client.close()


def muon_replay(url: str, env: dict[str, str], stream: str, count: int) -> float:
    args = {"stream": stream, "args": {"stream-type": "cold"}, "quiet": True, "timeout": 600}
    results = node(DRIVER, url, "replay", orjson.dumps(args).decode(), env=env)
    complete = next(r for r in results if "complete" in r)
    assert complete["complete"] == count, complete
    return count / (complete["ms"] / 1000)


def wire_replay(url: str, stream: str, count: int) -> float:
    from tests.muon_support import WireClient

    client = WireClient(url)
    try:
        args = {"stream-name": stream, "stream-type": "cold"}
        client.send("reactive-stream", "SubscriptionRequested", {"streamName": "/stream", "args": args})
        assert (client.receive() or {}).get("step") == "SubAck"
        client.send("reactive-stream", "DataRequested", {"request": count + 1})
        start = time.perf_counter()
        seen = 0
        while (message := client.receive()) is not None and message["step"] == "Data":
            seen += 1
        assert seen == count
        return count / (time.perf_counter() - start)
    finally:
        client.close()


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    sys.path.insert(0, str(ROOT))
    env = node_env()
    url = args.url or os.environ.get("PHOTON_TEST_AMQP_URL")
    broker = None
    if not url:
        from tests.servers import RabbitServer

        broker = RabbitServer().start()
        url = broker.url
    sizes = wire_sizes()
    print(f"wire sizes: emit request {sizes[0]} B, answer {sizes[1]} B, replay Data {sizes[2]} B")
    root = Path(tempfile.mkdtemp(prefix="photon-bench-muon-"))
    figures: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)
        print(f"  {name}: {value:,.0f}/s", flush=True)

    try:
        photon = Photon(root, url)
        try:
            photon.store.append([sample_event(n, "replayed") for n in range(args.replay)])
            for round_number in range(args.rounds):
                print(f"round {round_number + 1} (load average {os.getloadavg()[0]:.1f})", flush=True)
                tag = f"r{round_number}"
                record("a. Muon emit, node client, 1 in flight", muon_emits(url, env, args.slow_emits, 1, f"m1{tag}"))
                record("b. own AMQP emit, 1 in flight", own_emits(url, args.emits, 1, f"o1{tag}"))
                record("c. floor request/reply, 1 in flight", floor_reqrep(url, env, args.emits, 1, sizes))
                record("d. Muon emit, node client, 32 in flight", muon_emits(url, env, args.emits, 32, f"m32{tag}"))
                record("e. own AMQP emit, 32 in flight", own_emits(url, args.emits, 32, f"o32{tag}"))
                record("f. floor request/reply, 32 in flight", floor_reqrep(url, env, args.emits, 32, sizes))
                record("g. Muon emit, bare wire client, 1 in flight", wire_emits(url, args.emits, f"w1{tag}"))
                record("h. Muon replay, node client", muon_replay(url, env, "replayed", args.replay))
                record("i. floor stream pika -> amqplib", floor_stream(url, env, args.replay, sizes[2]))
                record("j. Muon replay, bare wire client", wire_replay(url, "replayed", args.replay))
        finally:
            photon.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if broker is not None:
            broker.close()

    median = {name: statistics.median(values) for name, values in figures.items()}

    def ratio(name: str, base: str) -> float:
        """The ratio of workload `name` to workload `base`, by their letters."""

        def of(letter: str) -> float:
            return next(value for label, value in median.items() if label.startswith(f"{letter}."))

        return of(name) / of(base)

    rows = [{"workload": name, "per second": value, "runs": len(figures[name])} for name, value in median.items()]
    comparisons = [
        ("Muon emit / own AMQP emit, 1 in flight", ratio("a", "b"), 1.0),
        ("Muon emit / own AMQP emit, 32 in flight", ratio("d", "e"), 1.0),
        ("Muon emit / floor, 1 in flight", ratio("a", "c"), 0.5),
        ("Muon emit / floor, 32 in flight", ratio("d", "f"), 0.5),
        ("Muon replay / floor", ratio("h", "i"), 0.5),
        ("bare-wire Muon emit / own AMQP emit, 1 in flight", ratio("g", "b"), 1.0),
        ("bare-wire Muon emit / floor, 1 in flight", ratio("g", "c"), 0.5),
        ("bare-wire Muon replay / floor", ratio("j", "i"), 0.5),
    ]
    print(f"\n{'workload':<48} {'median/s':>10}  runs")
    for row in rows:
        print(f"{row['workload']:<48} {row['per second']:>10,.0f}  {row['runs']}")
    print(f"\n{'ratio':<52} {'value':>7}  target")
    for name, value, target in comparisons:
        verdict = "met" if value >= target else "NOT met"
        print(f"{name:<52} {value:>6.2f}x  >= {target}x {verdict}")
        rows.append({"workload": name, "ratio": value, "target": target})
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each figure is the median of its rounds")
    parser.add_argument("--emits", type=int, default=400, help="emits per workload (32 in flight, own AMQP, floors)")
    parser.add_argument("--slow-emits", type=int, default=40, help="emits of the node client with 1 in flight")
    parser.add_argument("--replay", type=int, default=2000, help="events replayed")
    parser.add_argument("--url", help="a broker to use instead of a private one")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
