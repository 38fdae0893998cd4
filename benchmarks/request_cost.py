"""CPU per request through the HTTP API in process: the front end and the store, without the network.

    python -m benchmarks.request_cost [--requests 3000] [--repeat 3]

The app (`create_app`) runs on the memory backend and is called through httpx's ASGI transport,
so a request costs only Python work: parsing, the request model, validation, the committer, the
answer. The figure is process CPU time (every thread's) per request, which a loaded machine
disturbs far less than wall time: it is the figure to compare two versions of the code by
(`python -m benchmarks.revisions BEFORE AFTER request_cost`). Workloads: a single-event emit, an
emit of 100 events, a page of 100 events (`/api/stream-contents`), a cold replay of 100 events.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

try:  # this layout
    from photon.core.config import load_config
    from photon.core.store import EventStore
    from photon.server.http.app import create_app
except ImportError:  # the layout before photon/core (for comparing with older checkouts)
    from photon.config import load_config  # type: ignore[no-redef]
    from photon.http.app import create_app  # type: ignore[no-redef]
    from photon.store import EventStore  # type: ignore[no-redef]

EVENT = {"stream-name": "s", "event-type": "t", "payload": {"n": 1}}


async def _measure(call: Callable[[], Awaitable[httpx.Response]], requests: int) -> float:
    for _ in range(min(200, requests)):  # warm up
        (await call()).raise_for_status()
    started = time.process_time()
    for _ in range(requests):
        response = await call()
    elapsed = time.process_time() - started
    response.raise_for_status()
    return elapsed / requests * 1e6


async def _run(requests: int) -> dict[str, float]:
    config = load_config({"db.backend": "memory", "admin.pass": "bench"})
    store = EventStore.open(config=config)
    try:
        app = create_app(store, config)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://photon") as client:
            token = (await client.get("/auth/token", auth=("admin", "bench"))).json()["token"]
            headers = {"Authorization": f"Token {token}", "content-type": "application/json"}
            one = orjson.dumps(EVENT)
            hundred = orjson.dumps([EVENT] * 100)
            figures = {
                "emit, 1 event": await _measure(
                    lambda: client.post("/api/event", content=one, headers=headers), requests
                ),
                "emit, 100 events": await _measure(
                    lambda: client.post("/api/event", content=hundred, headers=headers), requests // 10
                ),
            }
            page: dict[str, Any] = {"from": 1, "limit": 100}
            figures["page of 100 events"] = await _measure(
                lambda: client.get("/api/stream-contents/s", params=page, headers=headers), requests // 5
            )
            cold: dict[str, Any] = {"stream-type": "cold", "from": 1, "to": 100}
            figures["cold replay of 100 events"] = await _measure(
                lambda: client.get("/api/replay/s", params=cold, headers=headers), requests // 5
            )
            return figures
    finally:
        store.close()


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    runs = [asyncio.run(_run(args.requests)) for _ in range(args.repeat)]
    rows = []
    print(f"{'workload':30} {'CPU µs/request (median)':>24}")
    for name in runs[0]:
        value = statistics.median(run[name] for run in runs)
        rows.append({"workload": name, "cpu-us-per-request": round(value, 1)})
        print(f"{name:30} {value:24,.0f}")
    return rows


if __name__ == "__main__":
    main()
