"""Streamed answers to HTTP/1.0 clients are close-delimited, not chunked.

HTTP/1.0 has no chunked transfer coding: a 1.0 client reads the chunk sizes as part of the
body. uvicorn's httptools protocol frames every answer that has no Content-Length as chunked,
whatever the request's version (its h11 protocol gets this right). For a 1.0 request this
protocol sends such an answer as HTTP/1.0 does: no Transfer-Encoding, the body as it comes,
and the end of the body is the connection closing.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from photon.server.http.emit_start import DirectStartProtocol
from photon.server.http.whole_answers import WholeAnswerCycle

_UNTIL_CLOSE = 1 << 62
"""A Content-Length no answer reaches: the body's end is decided at its last message."""


class _CloseDelimitedCycle(WholeAnswerCycle):
    """A 1.0 request's cycle: an answer without Content-Length ends when the connection closes."""

    close_delimited = False

    async def send(self, message: Any) -> None:
        kind = message["type"]
        if kind == "http.response.start" and not self.response_started:
            names = {bytes(name).lower() for name, _ in message.get("headers", [])}
            if b"content-length" not in names and b"transfer-encoding" not in names:
                self.close_delimited = True
                self.chunked_encoding = False
                self.expected_content_length = _UNTIL_CLOSE
                self.keep_alive = False
        elif kind == "http.response.body" and self.close_delimited and not message.get("more_body", False):
            self.expected_content_length = len(message.get("body", b""))
        await super().send(message)


class Http10AwareProtocol(DirectStartProtocol):
    """uvicorn's httptools protocol, framing streamed answers to HTTP/1.0 requests as 1.0 does,
    and writing an answer of known length in one write (`photon.server.http.whole_answers`);
    a plain emit's task starts at the direct emit (`photon.server.http.emit_start`)."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if type(self.cycle) is RequestResponseCycle:
            one_zero = self.parser.get_http_version() == "1.0"
            self.cycle.__class__ = _CloseDelimitedCycle if one_zero else WholeAnswerCycle
