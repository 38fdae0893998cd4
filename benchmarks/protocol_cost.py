"""An emit's cost on the server's event loop through uvicorn's own protocol, in process.

``python -m benchmarks.protocol_cost [--emits 20000] [--rounds 3] [--trees DIR,DIR]``

`request_cost` and `call_counts` call the app through httpx's ASGI transport, which is not how a
server calls it: there `receive` and `send` are httpx's, so whatever Photon does with uvicorn's
own request-response cycle (`photon.server.http.whole_answers`) is left out. Here the app is
served by the protocol class the HTTP service uses (uvicorn's httptools protocol with Photon's
head limits and whole answers), each connection's transport a stand-in that hands the answer
back to the harness, which feeds that connection its next request at once: the server's whole
per-request Python work (parsing, the scope, the task, the app, the answer) without the sockets,
on the memory backend. Two workloads: single events from 32 connections (the 32-client emits of
`server_peers`), and inserts of 10 events in an envelope with expected versions from one
connection (the remote `eventsourcing` recorder's inserts of `es_recorders`).

Figures: the event loop thread's CPU per request (`time.thread_time`), the process's (the store's
writer included), and the Python calls the event loop makes per request (`cProfile`, a separate
pass), which no load on the machine disturbs. With ``--trees``, each figure comes from a process
run with each tree first on ``PYTHONPATH``, interleaved round by round.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import email.utils
import os
import pstats
import statistics
import subprocess
import sys
import time
from typing import Any

import orjson

WORKLOADS = ("emit, 1 event, 32 connections", "insert, 10 events with expected versions, 1 connection")


class _Transport:
    """What uvicorn's protocol writes to and asks about, for one connection."""

    def __init__(self, index: int, written: Any) -> None:
        self.index = index
        self.written = written
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000 + self.index)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.written(self.index, data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _requests(token: str, insert: bool, connections: int) -> list[list[bytes]]:
    """Each connection's requests, taken in turn."""
    out = []
    for n in range(connections):
        bodies = []
        for k in range(64):
            if insert:
                stream = f"BankAccount-{n}-{k}"
                payload = {"amount": {"_type_": "decimal_str", "_data_": "10.00"}, "note": "x" * 40}
                events = [{"stream-name": stream, "event-type": "Deposited", "payload": payload} for _ in range(10)]
                bodies.append(orjson.dumps({"events": events, "expected-versions": {stream: "any"}}))
            else:
                bodies.append(
                    orjson.dumps({"stream-name": f"bench-{k % 16}", "event-type": "measured", "payload": {"i": k}})
                )
        out.append(
            [
                (
                    f"POST /api/event HTTP/1.1\r\nHost: bench\r\nAuthorization: Token {token}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body
                for body in bodies
            ]
        )
    return out


async def _serve(requests: int, insert: bool, profile: bool) -> dict[str, float]:
    import uvicorn
    from uvicorn.server import ServerState

    from photon.core.config import load_config
    from photon.core.store import EventStore
    from photon.server.http.app import create_app
    from photon.server.server import _http_impl

    config = load_config({"db.backend": "memory", "admin.pass": "bench"})
    store = EventStore.open(config=config)
    try:
        app = create_app(store, config)
        served = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", http=_http_impl(), ws="none", server_header=False
        )
        served.load()
        state = ServerState()
        state.default_headers = [(b"date", email.utils.formatdate(usegmt=True).encode())]
        connections = 1 if insert else 32
        bodies = _requests(app.state.tokens.issue(), insert, connections)
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()
        answered = 0
        sent = [0] * connections
        protocols: list[Any] = []

        def feed(n: int) -> None:
            request = bodies[n][sent[n] % 64]
            sent[n] += 1
            protocols[n].data_received(request)

        def written(n: int, data: bytes) -> None:
            nonlocal answered
            if not data.startswith(b"HTTP/1.1 200 "):
                raise RuntimeError(f"an emit was refused: {data[:300]!r}")
            answered += 1
            if answered >= requests:
                if not finished.done():
                    finished.set_result(None)
                return
            loop.call_soon(feed, n)

        for n in range(connections):
            protocol = served.http_protocol_class(config=served, server_state=state, app_state={}, _loop=loop)
            protocol.connection_made(_Transport(n, written))
            protocols.append(protocol)
        for n in range(connections):  # warm up
            feed(n)
        warm = min(requests // 10, 1000)
        while answered < warm:
            await asyncio.sleep(0.001)
        answered = 0
        profiler = cProfile.Profile() if profile else None
        thread, process = time.thread_time(), time.process_time()
        if profiler is not None:
            profiler.enable()
        await finished
        if profiler is not None:
            profiler.disable()
        thread, process = time.thread_time() - thread, time.process_time() - process
        figures = {"loop CPU µs": 1e6 * thread / answered, "process CPU µs": 1e6 * process / answered}
        if profiler is not None:
            figures = {"loop Python calls": pstats.Stats(profiler).total_calls / answered}  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)  # the last answers' tasks end before the store closes
        return figures
    finally:
        store.close()


def _measure(requests: int) -> dict[str, dict[str, float]]:
    """Every workload's figures, in this process."""
    try:
        import uvloop

        run: Any = uvloop.run
    except ImportError:
        run = asyncio.run
    found = {}
    for name, insert in zip(WORKLOADS, (False, True), strict=True):
        count = requests // 5 if insert else requests
        figures = run(_serve(count, insert, profile=False))
        figures.update(run(_serve(count, insert, profile=True)))
        found[name] = figures
    return found


def _in_tree(tree: str, requests: int) -> dict[str, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run(
        [sys.executable, __file__, "--emits", str(requests), "--json-only"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    found: dict[str, dict[str, float]] = orjson.loads(out.strip().splitlines()[-1])
    return found


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--emits", type=int, default=20000, help="single-event emits per round (inserts: a fifth)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trees", default="", help="two source trees to compare, comma-separated")
    parser.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.json_only:
        print(orjson.dumps(_measure(args.emits)).decode())
        return []
    trees = [t for t in args.trees.split(",") if t] or [""]
    runs: dict[str, list[dict[str, dict[str, float]]]] = {t: [] for t in trees}
    for round_ in range(args.rounds):
        for tree in trees if round_ % 2 == 0 else trees[::-1]:
            runs[tree].append(_in_tree(tree, args.emits) if tree else _measure(args.emits))
        print(f"  round {round_ + 1} done (load {os.getloadavg()[0]:.1f})", flush=True)
    heads = [os.path.basename(t) if t else "this checkout" for t in trees]
    print(f"\n| median of {args.rounds} rounds | " + " | ".join(heads) + " |")
    print("|---|" + "---:|" * len(trees))
    rows = []
    for workload in WORKLOADS:
        for figure in runs[trees[0]][0][workload]:
            values = [statistics.median(run[workload][figure] for run in runs[t]) for t in trees]
            print(f"| {workload}: {figure} | " + " | ".join(f"{v:,.1f}" for v in values) + " |")
            rows.append({"workload": f"{workload}: {figure}", **dict(zip(heads, values, strict=True))})
    return rows


if __name__ == "__main__":
    main()
