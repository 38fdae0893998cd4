"""Projections over one stream and the stream's metadata, on a server over HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx

from .live import LiveServer


def test_a_projection_added_later_folds_what_the_stream_shows(live: LiveServer, api: httpx.Client) -> None:
    """Metadata set while the server runs, then a projection over the stream added: its history
    read (by a projection worker, from the store) leaves out what the metadata truncates, as every
    read of the stream does."""
    api.post("/api/event", json=[{"stream-name": "acct-1", "event-type": "e", "payload": {"n": n}} for n in range(4)])
    # a projection first, so that the worker's own store is open before the metadata is set
    warm = {"projection-name": "warm", "language": "python", "stream-name": "other", "initial-value": 0}
    assert api.post("/api/projection", json={**warm, "reduction": "lambda s, e: s + 1"}).status_code in (200, 201)
    assert api.put("/api/stream-metadata/acct-1", json={"truncate-before": 3}).status_code == 200
    template = {
        "projection-name": "seen",
        "language": "python",
        "stream-name": "acct-1",
        "initial-value": [],
        "reduction": "lambda state, event: state + [event['stream-version']]",
    }
    assert api.post("/api/projection", json=template).status_code in (200, 201)

    def value() -> Any:
        return api.get("/api/projection/seen").json().get("current-value")

    deadline = time.monotonic() + 30
    while not value():
        assert time.monotonic() < deadline, "the projection did not fold the stream"
        time.sleep(0.05)
    assert value() == [3, 4]
