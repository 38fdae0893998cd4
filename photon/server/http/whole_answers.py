"""An answer whose length is known is written to the socket once, head and body together.

uvicorn's httptools protocol writes an answer's status line and header fields when the app
sends ``http.response.start``, and its body when the app sends ``http.response.body``: two
writes to the socket, so two segments on the wire and, for a client waiting on the answer, two
wake-ups, for one answer the app had whole (an emit's stored events, a page of a read). This
cycle holds the head of an answer that carries a Content-Length until its first body message,
and writes the two as one. Answers without a Content-Length (streamed: a replay, a live tail)
are written as before, head first, so their clients see the head at once; so are answers to
HEAD requests, which have no body message to wait for.

An app that holds its whole answer (the direct emit, `photon.server.http.emit_direct`) can also
take the request's body and give the answer without the ASGI messages: `whole_body` and
`answer_whole` do what `receive` and the two `send` calls would, on this cycle's state, without
the message dicts, the coroutines and the checks of header fields that the app wrote itself.
Each returns None/False when the cycle is in a state the plain calls handle (more body to come,
a paused write, an access log line to write, a connection to close): the caller uses those then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, RequestResponseCycle


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

    def whole_body(self) -> bytes | None:
        """The request's body when all of it has arrived and nothing else is pending (what
        `receive` would give as one message, and then the same state); None otherwise."""
        if self.more_body or self.disconnected or self.response_complete or self.waiting_for_100_continue:
            return None
        self.flow.resume_reading()
        self.message_event.clear()
        body = bytes(self.body)
        self.body = bytearray()
        return body

    def answer_whole(self, status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> bool:
        """Write an answer of `status` with `headers` (lower-case names, valid values, a
        Content-Length among them) and `body` in one write, as `send` would for its start and
        one last body message; False, writing nothing, when the plain `send` must do it."""
        if (
            self.response_started
            or self.disconnected
            or self.access_log
            or not self.keep_alive
            or self.flow.write_paused
            or type(self) is not WholeAnswerCycle
        ):
            return False
        self.response_started = True
        self.waiting_for_100_continue = False
        content = [STATUS_LINE[status]]
        for name, value in self.default_headers:
            content += (name.lower(), b": ", value, b"\r\n")
        for name, value in headers:
            content += (name, b": ", value, b"\r\n")
        content += (b"\r\n", body)
        self.transport.write(b"".join(content))
        self.expected_content_length = 0
        self.chunked_encoding = False
        self.response_complete = True
        self.message_event.set()
        self.on_response()
        return True


def cycle_of(call: Any) -> WholeAnswerCycle | None:
    """The cycle whose `receive` or `send` `call` is, when it is one of uvicorn's own (an app or
    middleware that wraps them gets None: its wrapper must see the messages)."""
    cycle = getattr(call, "__self__", None)
    return cycle if isinstance(cycle, WholeAnswerCycle) else None
