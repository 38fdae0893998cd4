"""A plain emit's task starts at the direct emit, over a real socket (`photon.server.http.emit_start`).

uvicorn would start each request's task at its outermost app (`ProxyHeadersMiddleware`, then
`PhotonApp`); a plain ``POST /api/event`` now starts at `DirectEmit`. Requests the middleware
acts on (``X-Forwarded-For``) or that `PhotonApp` routes (a query string) still take the whole
way; pipelined emits are each answered, in order; ``Expect: 100-continue`` is still honoured (the
protocol's header callback is written out in `HeadLimitProtocol`).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from photon.server.http.app import PhotonApp
from photon.server.http.emit_direct import DirectEmit

from .live import LiveServer, event, make_config


@pytest.fixture
def called(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the apps called, in order, for every request."""
    seen: list[str] = []
    for kind in (ProxyHeadersMiddleware, PhotonApp, DirectEmit):
        real = kind.__call__

        def spy(self: Any, scope: Any, receive: Any, send: Any, real: Any = real, name: str = kind.__name__) -> Any:
            seen.append(name)
            return real(self, scope, receive, send)

        monkeypatch.setattr(kind, "__call__", spy)
    yield seen


def _connect(live: LiveServer) -> socket.socket:
    host, port = live.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=30)


def _head(token: str, body: bytes, target: str = "/api/event", extra: str = "") -> bytes:
    return (
        f"POST {target} HTTP/1.1\r\nHost: t\r\nAuthorization: Token {token}\r\n{extra}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()


def _answers(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    """`count` answers read off `sock`: each one's status line and body."""
    data = b""
    found: list[tuple[bytes, bytes]] = []
    while len(found) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            lines = head.split(b"\r\n")
            length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length"))
            if len(rest) >= length:
                found.append((lines[0], rest[:length]))
                data = rest[length:]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection after {len(found)} answers"
        data += chunk
    return found


def _emit(
    live: LiveServer, body: bytes, target: str = "/api/event", extra: str = "", token: str | None = None
) -> tuple[bytes, bytes]:
    with _connect(live) as sock:
        sock.sendall(_head(token or live.token(), body, target, extra) + body)
        return _answers(sock, 1)[0]


def test_a_plain_emit_starts_at_the_direct_emit(live: LiveServer, called: list[str]) -> None:
    token = live.token()  # (asked of the server: a request of its own)
    called.clear()
    status, body = _emit(live, orjson.dumps(event("plain")), token=token)
    assert status == b"HTTP/1.1 200 OK"
    assert orjson.loads(body)["stream-name"] == "plain"
    assert called == ["DirectEmit"]
    assert [e.stream_name for e in live.store.read("plain")] == ["plain"]


def test_an_emit_with_a_query_string_takes_the_whole_way(live: LiveServer, called: list[str]) -> None:
    token = live.token()
    called.clear()
    status, _body = _emit(live, orjson.dumps(event("queried")), target="/api/event?expected-version=any", token=token)
    assert status == b"HTTP/1.1 200 OK"
    assert called == ["ProxyHeadersMiddleware", "PhotonApp"]  # routed: not the direct emit
    assert [e.stream_name for e in live.store.read("queried")] == ["queried"]


def test_an_emit_through_a_proxy_is_seen_as_the_proxy_says(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`ProxyHeadersMiddleware` still takes a forwarded emit: the access log names the client
    the proxy forwarded for (the test client's address, 127.0.0.1, is a trusted proxy)."""
    server = LiveServer(make_config(tmp_path, log_access="true"))
    try:
        with caplog.at_level(logging.INFO, logger="uvicorn.access"):
            forwarded = _emit(server, orjson.dumps(event("proxied")), extra="X-Forwarded-For: 203.0.113.7\r\n")
            plain = _emit(server, orjson.dumps(event("proxied")))
    finally:
        server.stop()
    assert forwarded[0] == plain[0] == b"HTTP/1.1 200 OK"
    lines = [r.getMessage() for r in caplog.records if "POST /api/event" in r.getMessage()]
    assert len(lines) == 2
    assert lines[0].startswith("203.0.113.7:")
    assert lines[1].startswith("127.0.0.1:")


def test_pipelined_emits_are_each_answered_in_order(live: LiveServer, called: list[str]) -> None:
    token = live.token()
    called.clear()
    bodies = [orjson.dumps(event("piped", n=n)) for n in range(3)]
    queried = orjson.dumps(event("piped", n=3))
    with _connect(live) as sock:
        # One write: uvicorn queues the requests behind the first and starts each when its turn comes.
        sock.sendall(
            b"".join(_head(token, body) + body for body in bodies)
            + _head(token, queried, "/api/event?expected-version=3")
            + queried
        )
        answers = _answers(sock, 4)
    assert [status for status, _ in answers] == [b"HTTP/1.1 200 OK"] * 4
    assert [orjson.loads(body)["payload"]["n"] for _, body in answers] == [0, 1, 2, 3]
    assert [e.payload["n"] for e in live.store.read("piped")] == [0, 1, 2, 3]
    assert called == ["DirectEmit"] * 3 + ["ProxyHeadersMiddleware", "PhotonApp"]


def test_an_emit_expecting_100_continue_gets_it_before_its_body_is_sent(live: LiveServer) -> None:
    body = orjson.dumps(event("continued"))
    with _connect(live) as sock:
        sock.sendall(_head(live.token(), body, extra="Expect: 100-continue\r\n"))
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = sock.recv(65536)
            assert chunk
            interim += chunk
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(body)
        rest = interim.partition(b"\r\n\r\n")[2]
        status, answer = _answers(_Prefixed(sock, rest), 1)[0]  # type: ignore[arg-type]
    assert status == b"HTTP/1.1 200 OK"
    assert orjson.loads(answer)["stream-name"] == "continued"


class _Prefixed:
    """A socket whose first read gives `data` (what was read past the interim answer)."""

    def __init__(self, sock: socket.socket, data: bytes) -> None:
        self.sock = sock
        self.data = data

    def recv(self, size: int) -> bytes:
        if self.data:
            data, self.data = self.data, b""
            return data
        return self.sock.recv(size)
