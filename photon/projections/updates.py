"""Followers of projection updates: one JSON message per new state, to each follower's queue.

A message is ``{"projection-name", "status", "last-event", "processed", "current-value"}``
(what the HTTP stream, the TCP updates port and AMQP send). A follower that lags loses its
oldest updates, never the newest state; a follower's queue gets None when it should end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable

import orjson

from photon.projections.registry import Projection

QUEUE = 256


def offer(queue: asyncio.Queue[bytes | None], item: bytes | None) -> None:
    """Queue an update; a follower that lags loses its oldest updates (newer states supersede them)."""
    while True:
        try:
            queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()


def update_message(projection: Projection) -> bytes:
    return orjson.dumps(
        {
            "projection-name": projection.name,
            "status": projection.status.shown,
            "last-event": projection.last_event,
            "processed": projection.processed,
            "current-value": orjson.Fragment(projection.state_json),
        }
    )


class Updates:
    """The followers of every projection, and the followers of each (kept on its record)."""

    def __init__(self) -> None:
        self.everything: set[asyncio.Queue[bytes | None]] = set()

    def publish(self, projection: Projection) -> None:
        if not projection.followers and not self.everything:
            return
        message = update_message(projection)
        for queue in projection.followers:
            offer(queue, message)
        for queue in self.everything:
            offer(queue, message)

    async def follow(self, projection: Projection | None) -> AsyncIterator[bytes]:
        """One projection's messages (its current state first), or every projection's with None."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE)
        if projection is None:
            followers = self.everything
        else:
            followers = projection.followers
            offer(queue, update_message(projection))
        followers.add(queue)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item
        finally:
            followers.discard(queue)

    @staticmethod
    def end(projection: Projection) -> None:
        """End the projection's own followers (it was removed, or the server stops)."""
        for queue in projection.followers:
            offer(queue, None)

    def close(self, projections: Iterable[Projection]) -> None:
        for projection in projections:
            self.end(projection)
        for queue in self.everything:
            offer(queue, None)
