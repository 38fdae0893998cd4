"""An answer of known length goes to the socket in one write, head and body together; a streamed
answer's head still goes out at once (`photon.server.http.whole_answers`), against a live server
over real sockets. The socket writes are observed on the event loop's own transport class."""

from __future__ import annotations

import asyncio.selector_events
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from .live import LiveServer


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every write of the live server's socket transports (the test server runs on asyncio's loop)."""
    seen: list[bytes] = []
    lock = threading.Lock()
    real = asyncio.selector_events._SelectorSocketTransport.write

    def write(self: Any, data: Any) -> None:
        with lock:
            seen.append(bytes(data))
        real(self, data)

    monkeypatch.setattr(asyncio.selector_events._SelectorSocketTransport, "write", write)
    yield seen


def _exchange(live: LiveServer, request: bytes, until: bytes) -> bytes:
    address = urlsplit(live.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while until not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def _post(token: str, body: bytes, version: str = "HTTP/1.1") -> bytes:
    return (
        f"POST /api/event {version}\r\nHost: x\r\nAuthorization: Token {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_an_emit_is_answered_in_one_write(live: LiveServer, writes: list[bytes]) -> None:
    token = live.token()
    events = [{"stream-name": "s", "event-type": "t", "payload": {"n": n}} for n in range(3)]
    body = orjson.dumps({"events": events, "expected-versions": {"s": "no-stream"}})
    writes.clear()
    answer = _exchange(live, _post(token, body), b"]")
    head, _, stored = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer
    assert [e["payload"] for e in orjson.loads(stored)] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert b"content-length: %d" % len(stored) in head.lower()
    assert writes == [answer]  # head and body in the one write


def test_an_error_and_an_http_1_0_answer_are_whole_too(live: LiveServer, writes: list[bytes]) -> None:
    token = live.token()
    writes.clear()
    answer = _exchange(live, _post(token, b'{"stream-name": "s"'), b"}")
    assert answer.startswith(b"HTTP/1.1 400") and b"JSON" in answer, answer
    assert writes == [answer]
    writes.clear()
    event = orjson.dumps({"stream-name": "s", "event-type": "t", "payload": {}})
    answer = _exchange(live, _post(token, event, "HTTP/1.0"), b"}}")
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert writes == [answer]


def test_a_streamed_answer_sends_its_head_before_its_events(live: LiveServer, writes: list[bytes]) -> None:
    token = live.token()
    writes.clear()
    request = f"GET /api/replay/s?stream-type=hot HTTP/1.1\r\nHost: x\r\nAuthorization: Token {token}\r\n\r\n"
    answer = _exchange(live, request.encode(), b'{"caught-up"')
    assert answer.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in answer.lower(), answer
    assert writes[0].endswith(b"\r\n\r\n")  # the head on its own, as soon as the answer started
