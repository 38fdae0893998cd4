"""A replay's read-ahead holds the pages it has read as the bytes they are sent as: a page's
events are let go once encoded, before the next page is read beside them (a RecordedEvent with
its fields takes some 2.8 times its JSON; docs/benchmarks.md, growth)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from types import SimpleNamespace
from typing import Any

from starlette.requests import Request

from photon.core.events import RecordedEvent
from photon.core.store import EventStore
from photon.server.http.replay import Encoded, ReadAhead, stream_response


class Page(list[Any]):
    """A page of events that can be watched for being let go (a plain list cannot)."""


class Pages:
    """A cold replay's stand-in: `count` pages of `size` events, and, at each read of a page,
    the earlier pages still held by someone."""

    def __init__(self, count: int, size: int) -> None:
        self.count, self.size = count, size
        self.read: list[weakref.ref[Page]] = []
        self.alive_at_read: list[int] = []

    async def next_batch(self, timeout: float | None = None) -> list[Any] | None:
        await asyncio.sleep(0)
        gc.collect()
        self.alive_at_read.append(sum(1 for page in self.read if page() is not None))
        if len(self.read) == self.count:
            return None
        first = len(self.read) * self.size + 1
        page = Page(
            RecordedEvent(n, "s", n, f"id-{n}", "t", 0, b'{"order-id":%d}' % n) for n in range(first, first + self.size)
        )
        self.read.append(weakref.ref(page))
        return page

    def close(self) -> None:
        pass


def test_a_page_is_let_go_once_encoded_and_the_read_ahead_holds_bytes(tmp_path: Any) -> None:
    store = EventStore.open({"db.backend": "memory"})
    app = SimpleNamespace(state=SimpleNamespace(store=store, config={"replay.readahead.bytes": "1000000"}))
    request = Request({"type": "http", "app": app, "headers": [], "method": "GET", "path": "/"})
    pages = Pages(count=5, size=100)

    async def replay() -> list[bytes]:
        response = stream_response(request, pages)  # type: ignore[arg-type]
        return [chunk async for chunk in response.body_iterator]  # type: ignore[misc]

    try:
        chunks = asyncio.run(replay())
    finally:
        store.close()
    assert b"".join(chunks).count(b"\n") == 500
    assert chunks[0].startswith(b'{"order-id":1}\n{"order-id":2}\n')
    # No page read before is held when the next one is read: each went once encoded.
    assert pages.alive_at_read == [0] * 6


def test_the_read_ahead_counts_the_bytes_it_holds() -> None:
    async def scenario() -> list[Any]:
        ahead = ReadAhead(10)
        await ahead.put(Encoded(b"x" * 8, 3))
        assert ahead.queued_bytes == 8
        second = asyncio.ensure_future(ahead.put(Encoded(b"y" * 8, 2)))  # over the bound: waits
        await asyncio.sleep(0)
        assert not second.done()
        got = [await ahead.get()]
        await second
        got.append(await ahead.get())
        assert ahead.queued_bytes == 0
        return got

    assert asyncio.run(scenario()) == [Encoded(b"x" * 8, 3), Encoded(b"y" * 8, 2)]
