"""Projection updates over TCP (`projections.port`): one JSON line per update, to every client.

A client's first line is ``{"token": "<token from GET /auth/token>"}``, as on `events.port`: a
projection's value is data, and the feed shows every projection's. A bad token (or none within
10 seconds) is answered ``{"error":"Not authorized"}`` and the connection is closed. Then the
client gets one line per projection with its current state, then a line each time a
projection's state changes (at most one per batch of events folded):
``{"projection-name": ..., "status": ..., "last-event": <order-id>, "processed": ..., "current-value": ...}``.
A client that reads too slowly loses its oldest pending updates, never the newest state.
What a client sends after its token is ignored. With `rest.keystore` set the port speaks TLS.

`ProjectionUpdatesService` is the server's service (see `photon.server.server`): it listens on
`rest.host` once the projection engine is attached to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import TYPE_CHECKING

import orjson

from photon.core.config import Config
from photon.core.store import EventStore
from photon.server.net import bind, tcp_tls
from photon.server.tokens import TokenSigner

if TYPE_CHECKING:
    from photon.projections.manager import ProjectionManager

log = logging.getLogger("photon.projections")

NOT_AUTHORIZED = b'{"error":"Not authorized"}\n'
TOKEN_TIMEOUT = 10.0


class ProjectionUpdatesServer:
    """An asyncio TCP server streaming a manager's projection updates."""

    def __init__(
        self,
        manager: ProjectionManager,
        signer: TokenSigner,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.manager = manager
        self.signer = signer
        self.host = host
        self.port = port
        self.tls = tls
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, sock=bind(self.host, self.port, "projections.port"), ssl=self.tls
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("projection updates on tcp://%s:%d%s", self.host, self.port, " (TLS)" if self.tls else "")

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
        try:
            authorized = await self._authorize(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            authorized = False
        if not authorized:
            self._clients.discard(task)
            writer.close()
            return
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

    async def _authorize(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            line = await asyncio.wait_for(reader.readline(), TOKEN_TIMEOUT)
            token = orjson.loads(line).get("token") if line.strip() else None
        except (TimeoutError, ValueError, AttributeError, orjson.JSONDecodeError):
            token = None
        if isinstance(token, str) and self.signer.verify(token):
            return True
        writer.write(NOT_AUTHORIZED)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        return False


class ProjectionUpdatesService:
    """The updates listener as a server service, on `projections.port` (off when it is not set)."""

    def __init__(self, store: EventStore, config: Config) -> None:
        self.config = config
        self.manager: ProjectionManager | None = None
        self.listener: ProjectionUpdatesServer | None = None

    @classmethod
    def build(cls, store: EventStore, config: Config) -> ProjectionUpdatesService | None:
        return None if config.get("projections.port") is None else cls(store, config)

    def attach_projections(self, manager: ProjectionManager) -> None:
        self.manager = manager

    @property
    def port(self) -> int | None:
        """The port listened on (the one the system chose for `projections.port` 0), once started."""
        return None if self.listener is None else self.listener.port

    async def start(self) -> None:
        if self.manager is None:
            log.warning("no projection engine runs in this server: projections.port is not opened")
            return
        config = self.config
        self.listener = ProjectionUpdatesServer(
            self.manager,
            TokenSigner.from_config(config),
            str(config.get("rest.host") or "127.0.0.1"),
            config["projections.port"],
            tcp_tls(config),
        )
        await self.listener.start()

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()


async def _drain_input(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await reader.read(4096):
            pass
