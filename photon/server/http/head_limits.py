"""Bounds on a request's head (request line and header fields), enforced before the app sees it.

The HTTP parser buffers a header field until it ends, so without a bound a client with no token
could make the server hold any number of bytes before its 401. A head over `MAX_HEAD_BYTES` or
with more than `MAX_HEADER_FIELDS` fields is answered ``431 {"error": ...}`` and the connection
closed, after at most one more read (64-256 KiB) past the bound. With uvicorn's h11 protocol
(when httptools is missing) h11's own bound on an incomplete event is set to the same size.
"""

from __future__ import annotations

import orjson

from photon.server.http.http10 import Http10AwareProtocol
from photon.server.http.limits import MAX_HEAD_BYTES, MAX_HEADER_FIELDS


def refusal(message: str) -> bytes:
    """The whole 431 answer, written straight to the socket (no app has the request yet)."""
    body = orjson.dumps({"error": message})
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
    ) + body


class HeadLimitProtocol(Http10AwareProtocol):
    """uvicorn's httptools protocol (HTTP/1.0 aware) that refuses a request head over the bounds."""

    max_head_bytes = MAX_HEAD_BYTES
    max_header_fields = MAX_HEADER_FIELDS

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        super().connection_made(transport)
        self.head_bytes = 0
        self.header_fields = 0
        self.in_head = True
        self.refused: str | None = None

    def data_received(self, data: bytes) -> None:
        if self.refused is not None:
            return
        if self.in_head:
            self.head_bytes += len(data)
        super().data_received(data)
        if self.refused is not None:  # too many fields: the request never reached the app
            self.refuse(self.refused)
        elif self.in_head and self.head_bytes > self.max_head_bytes:
            self.refuse(f"the request head is over {self.max_head_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.header_fields = 0

    # Once a request is refused its remaining parser callbacks do nothing: no app sees it.

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_fields += 1
        if self.header_fields > self.max_header_fields:
            self.refused = f"the request has more than {self.max_header_fields} header fields"
        if self.refused is None:
            # uvicorn's `on_header`, written out here: the parser calls this for every field of
            # every request, and a call of the parent's method was a second Python call each.
            name = name.lower()
            if name == b"expect" and value.lower() == b"100-continue":
                self.expect_100_continue = True
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.refused is None:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self.refused is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.refused is None:
            super().on_message_complete()
        self.in_head = True
        self.head_bytes = 0

    def refuse(self, message: str) -> None:
        self.refused = message
        self.logger.warning("request refused: %s", message)
        if not self.transport.is_closing():
            self.transport.write(refusal(message))
            self.transport.close()
