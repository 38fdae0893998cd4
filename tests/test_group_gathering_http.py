"""An HTTP client's emits name their connection to the store's writer, which then waits a moment
for the next emit of each connection it has just answered, as it does for blocking threads
(`photon.core.committer.Committer.gather`): 32 keep-alive clients make one group instead of two
halves taking turns. Over a real socket, both ways to the emit (direct and routed)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable

from .live import LiveServer, event


def returning(live: LiveServer, expected: Callable[[set[Hashable]], bool]) -> set[Hashable]:
    """The callers of the writer's last group, once they are what is `expected` (the writer sets
    them just after it has answered them), or what they are after 5 s."""
    writer = live.store._committer
    assert writer is not None
    deadline = time.monotonic() + 5
    while not expected(writer.returning) and time.monotonic() < deadline:
        time.sleep(0.001)
    return writer.returning


def test_each_connection_is_named_to_the_writer(live: LiveServer) -> None:
    with live.client() as first, live.client() as second:
        for path in ("/api/event", "/api/event?expected-version=any"):  # direct, then routed
            answered = first.post(path, json=event("s-1"))
            assert answered.status_code == 200, answered.text
            (one,) = returning(live, lambda callers: len(callers) == 1)
            assert isinstance(one, tuple) and one[0] == "127.0.0.1"
            assert second.post(path, json=event("s-2")).status_code == 200
            (other,) = returning(live, lambda callers, one=one: len(callers) == 1 and one not in callers)
            assert isinstance(other, tuple) and other != one  # another connection, another caller
            assert first.post(path, json=event("s-1")).status_code == 200
            assert returning(live, lambda callers, one=one: callers == {one}) == {one}  # the same connection


def test_an_async_caller_that_names_no_connection_is_not_waited_for(live: LiveServer) -> None:
    store = live.store

    async def append() -> None:
        await store.append_async(event("s-3"))

    asyncio.run(append())
    assert store._committer is not None and store._committer.returning == set()
