"""An answer whose length is known is written to the socket once, head and body together.

uvicorn's httptools protocol writes an answer's status line and header fields when the app
sends ``http.response.start``, and its body when the app sends ``http.response.body``: two
writes to the socket, so two segments on the wire and, for a client waiting on the answer, two
wake-ups, for one answer the app had whole (an emit's stored events, a page of a read). This
cycle holds the head of an answer that carries a Content-Length until its first body message,
and writes the two as one. Answers without a Content-Length (streamed: a replay, a live tail)
are written as before, head first, so their clients see the head at once; so are answers to
HEAD requests, which have no body message to wait for.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle


class _Holding:
    """Stands in for the transport while uvicorn writes a head: keeps what it writes."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class _Prefixing:
    """Stands in for the transport while uvicorn writes a body: the held head goes in front of
    its first write (or out on its own before the connection is closed)."""

    def __init__(self, transport: Any, head: bytes) -> None:
        self.transport = transport
        self.head: bytes | None = head

    def write(self, data: bytes) -> None:
        head, self.head = self.head, None
        self.transport.write(head + data if head is not None else data)

    def flush(self) -> None:
        if self.head is not None:
            self.write(b"")

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _has_length(message: Any) -> bool:
    return any(bytes(name).lower() == b"content-length" for name, _ in message.get("headers", ()))


class WholeAnswerCycle(RequestResponseCycle):
    """uvicorn's request-response cycle, writing an answer of known length in one write."""

    held: bytes | None = None
    """The head of the answer, written with its first body message."""

    async def send(self, message: Any) -> None:
        head = self.held
        if head is not None:
            self.held = None
            transport = self.transport
            prefixing = _Prefixing(transport, head)
            self.transport = cast(asyncio.Transport, prefixing)  # only write and close are used
            try:
                await super().send(message)
            finally:
                self.transport = transport
                if not self.disconnected:
                    prefixing.flush()
            return
        if (
            message["type"] == "http.response.start"
            and not self.response_started
            and self.scope["method"] != "HEAD"
            and _has_length(message)
        ):
            transport = self.transport
            holding = _Holding(transport)
            self.transport = cast(asyncio.Transport, holding)  # only write is used
            try:
                await super().send(message)
            finally:
                self.transport = transport
            if holding.data:
                self.held = holding.data
            return
        await super().send(message)
