"""HTTP appends whose events carry client-given ids (what PhotonClient and `photon emit` now send, so a
retry stores once) beside the same appends with ids made by the store, interleaved, medians.

    python -m benchmarks.client_ids [--rounds 7] [--batches 10] [--batch 1000]

A client id costs the writer a look-up (is it stored already?) that a store-made id does not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from photon.client.wire import with_ids


def _batch(size: int) -> list[dict[str, Any]]:
    return [{"stream-name": f"s-{i % 100}", "event-type": "t", "payload": {"n": i}} for i in range(size)]


def main() -> None:
    from tests.live import LiveServer, make_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    server = LiveServer(make_config(Path(tempfile.mkdtemp())))
    try:
        http = httpx.Client(base_url=server.url, headers={"Authorization": f"Token {server.token()}"}, timeout=120)
        seconds: dict[str, list[float]] = {"store-made ids": [], "client ids": []}
        for _ in range(args.rounds):
            for kind, runs in seconds.items():  # interleaved: both see the same machine
                bodies = [
                    orjson.dumps(with_ids(_batch(args.batch)) if kind == "client ids" else _batch(args.batch))
                    for _ in range(args.batches)
                ]
                started = time.perf_counter()
                for body in bodies:
                    http.post("/api/event", content=body).raise_for_status()
                runs.append((time.perf_counter() - started) / (args.batches * args.batch))
        http.close()
    finally:
        server.stop()
    print(f"load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds of {args.batches} batches of {args.batch}")
    for kind, runs in seconds.items():
        print(f"  {kind:15} {statistics.median(runs) * 1e6:8.1f} us/event (median)")
    ratio = statistics.median(seconds["client ids"]) / statistics.median(seconds["store-made ids"])
    print(f"  client ids / store-made ids: {ratio:.2f}")


if __name__ == "__main__":
    main()
