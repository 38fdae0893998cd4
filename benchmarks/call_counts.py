"""Python function calls per operation: a figure no load on the machine disturbs.

    python -m benchmarks.call_counts

Counts the Python-level calls (``sys.setprofile`` "call" events, in every thread: the caller's and
the store's writer) that one operation makes, through the store (SQLite) and through the HTTP API
in process (memory backend, httpx's ASGI transport; the client's own calls are counted too, and
are the same for every version). Wall-clock and CPU figures on a shared machine move by tens of
per cent between two runs of the same code; these counts do not move at all, so they show whether
two versions do the same work (`python -m benchmarks.revisions BEFORE AFTER call_counts`).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
from collections.abc import Callable
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

_count = [0]


def _profile(frame: Any, event: str, arg: Any) -> None:
    if event == "call":
        _count[0] += 1


def _counted(run: Callable[[], Any], operations: int) -> float:
    _count[0] = 0
    sys.setprofile(_profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return _count[0] / operations


def _event(n: int) -> dict[str, Any]:
    return {"stream-name": f"s{n % 10}", "event-type": "t", "payload": {"n": n}}


def store_figures(folder: str) -> dict[str, float]:
    config = load_config(
        {"db.backend": "sqlite", "sqlite.path": os.path.join(folder, "calls.db"), "sqlite.synchronous": "OFF"}
    )
    store = EventStore.open(config=config)
    try:
        for _ in range(50):
            store.append([_event(j) for j in range(100)])
        return {
            "store: append of 100 events": _counted(
                lambda: [store.append([_event(j) for j in range(100)]) for _ in range(100)], 100
            ),
            "store: append of 1 event": _counted(lambda: [store.append(_event(1)) for _ in range(500)], 500),
            "store: read of a 1,000-event stream": _counted(lambda: [list(store.read("s1")) for _ in range(5)], 5),
        }
    finally:
        store.close()


async def _http(app: Any) -> dict[str, float]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://photon") as client:
        token = (await client.get("/auth/token", auth=("admin", "bench"))).json()["token"]
        headers = {"Authorization": f"Token {token}", "content-type": "application/json"}
        one, hundred = orjson.dumps(_event(1)), orjson.dumps([_event(j) for j in range(100)])
        figures = {}
        for name, body in (("HTTP: emit of 1 event", one), ("HTTP: emit of 100 events", hundred)):
            for _ in range(50):
                await client.post("/api/event", content=body, headers=headers)
            _count[0] = 0
            sys.setprofile(_profile)
            for _ in range(200):
                await client.post("/api/event", content=body, headers=headers)
            sys.setprofile(None)
            figures[name] = _count[0] / 200
        return figures


def http_figures() -> dict[str, float]:
    config = load_config({"db.backend": "memory", "admin.pass": "bench"})
    store = EventStore.open(config=config)
    try:
        return asyncio.run(_http(create_app(store, config)))
    finally:
        store.close()


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    threading.setprofile(_profile)  # the store's writer thread, started when a store opens
    with tempfile.TemporaryDirectory() as folder:
        figures = {**store_figures(folder), **http_figures()}
    threading.setprofile(None)  # type: ignore[arg-type]
    rows = []
    print(f"{'operation':40} {'Python calls':>12}")
    for name, value in figures.items():
        rows.append({"workload": name, "python-calls": round(value, 1)})
        print(f"{name:40} {value:12,.1f}")
    return rows


if __name__ == "__main__":
    main()
