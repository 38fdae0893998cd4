"""Limits on what a request may send: its head (request line and header fields) and its body.

Every route that takes a body reads it through this module, so none holds more than its limit:
a declared ``Content-Length`` over the limit is refused with 413 before a byte of the body is
read, and a body sent without one (chunked) is refused as soon as it passes the limit. The
limit is `rest.body.max.bytes` unless a route has its own (consumer groups' small bodies).
Uploads (`POST /api/new-stream`) are read a chunk at a time into a spooled temporary file.
The head's bounds are enforced by the HTTP protocol itself (`photon.server.http.head_limits`).
"""

from __future__ import annotations

import tempfile
from typing import IO, Final

from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive, Scope

from photon.core.config import CORE_SETTINGS
from photon.server.http.errors import RequestError

MAX_HEAD_BYTES: Final = 64 * 1024
"""Most bytes of a request line plus its header fields (nginx allows 32 KiB, Node.js 16 KiB)."""
MAX_HEADER_FIELDS: Final = 100
"""Most header fields in one request (as Python's http.client)."""
SPOOL_IN_MEMORY: Final = 1024 * 1024
"""An upload up to this size stays in memory; a larger one goes to a temporary file."""
BODY_SETTING: Final = "rest.body.max.bytes"


def body_limit(request: Request) -> int:
    """The body limit of the server's routes (`rest.body.max.bytes`; its default in an app that
    mounts Photon's routes without Photon's configuration)."""
    config = getattr(request.app.state, "config", None)
    if config is None:
        setting = next(s for s in CORE_SETTINGS if s.key == BODY_SETTING)
        return int(setting.parse(str(setting.default)))
    return int(config[BODY_SETTING])


def too_large(limit: int, declared: int | None = None) -> RequestError:
    size = f"of {declared} bytes " if declared is not None else ""
    return RequestError(f"request body {size}is over the limit of {limit} bytes ({BODY_SETTING})", 413)


def check_declared_length(request: Request, limit: int) -> None:
    """413 when the request says (Content-Length) that its body is over `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large(limit, int(declared))


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 before it is read when its declared length is over
    `limit`, and as soon as it passes `limit` bytes otherwise."""
    check_declared_length(request, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def receive_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """`read_body` for an ASGI app that has no `Request`: the same checks, straight from
    `receive` (the emit's direct path). The first Content-Length counts, as in `read_body`."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise too_large(limit, int(value))
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif kind == "http.disconnect":
            raise ClientDisconnect()


async def spool_body(request: Request, limit: int) -> IO[bytes]:
    """The request body in a temporary file (in memory while small), at its start; 413 past `limit`.
    The caller closes it."""
    check_declared_length(request, limit)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - the caller closes it
    try:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            spool.write(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


def bounded(request: Request, limit: int) -> Request:
    """The request, with its body refused (413) as soon as more than `limit` bytes of it arrive:
    for readers that take the body themselves (starlette's multipart form parser)."""
    check_declared_length(request, limit)
    receive = request.receive
    received = 0

    async def counting() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large(limit)
        return message

    return Request(request.scope, counting)
