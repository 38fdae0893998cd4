"""Projection updates over TCP (`projections.port`): one JSON line per update, to every client.

A client that connects first gets one line per projection with its current state, then a
line each time a projection's state changes (at most one per batch of events folded):
``{"projection-name": ..., "status": ..., "last-event": <order-id>, "processed": ..., "current-value": ...}``.
A client that reads too slowly loses its oldest pending updates, never the newest state.
What a client sends is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .manager import ProjectionManager

from ..net import bind

log = logging.getLogger("photon.projections")


class ProjectionUpdatesServer:
    """An asyncio TCP server streaming a manager's projection updates."""

    def __init__(self, manager: ProjectionManager, host: str = "127.0.0.1", port: int = 0) -> None:
        self.manager = manager
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, sock=bind(self.host, self.port, "projections.port"))
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("projection updates on tcp://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        for task in list(self._clients):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        # The client closing its end shows up as the end of what it sends.
        closed = asyncio.ensure_future(_drain_input(reader))
        try:
            for line in self.manager.current_messages():
                writer.write(line + b"\n")
            await writer.drain()
            updates = self.manager.follow_raw(None).__aiter__()
            while True:
                next_update = asyncio.ensure_future(updates.__anext__())
                done, _ = await asyncio.wait({next_update, closed}, return_when=asyncio.FIRST_COMPLETED)
                if closed in done:
                    next_update.cancel()
                    return
                try:
                    line = next_update.result()
                except StopAsyncIteration:
                    return
                writer.write(line + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            closed.cancel()
            self._clients.discard(task)
            with contextlib.suppress(Exception):
                writer.close()


async def _drain_input(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await reader.read(4096):
            pass
