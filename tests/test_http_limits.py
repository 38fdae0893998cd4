"""Limits on what a request may send, over a real socket: the head's size and field count, and
every body-taking route's body (refused with 413 before it is read whole; nothing stored)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from photon.server.http.limits import MAX_HEAD_BYTES, MAX_HEADER_FIELDS

from .live import LiveServer, event, make_config

BODY_LIMIT = 4096

# Every route that takes a body under rest.body.max.bytes, with a small body it accepts.
BODY_ROUTES = [
    ("POST", "/api/event", orjson.dumps(event())),
    ("POST", "/api/read-matching", b"{}"),
    ("POST", "/api/new-stream", orjson.dumps(event("uploaded")) + b"\n"),
    ("POST", "/api/projection", b"{}"),
    ("PUT", "/api/stream-metadata/orders", b"{}"),
    ("POST", "/api/redact", b'{"ids": []}'),
]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(make_config(tmp_path_factory.mktemp("limits"), rest_body_max_bytes=str(BODY_LIMIT)))
    try:
        yield server
    finally:
        server.stop()


def _address(server: LiveServer) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _answer(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_huge_head_is_refused_after_its_limit_without_reading_the_rest(small: LiveServer) -> None:
    sent = 0
    with socket.create_connection(_address(small)) as sock:
        sock.sendall(b"GET /api/streams HTTP/1.1\r\nHost: x\r\nX-Big: ")
        piece = b"a" * 65536
        with pytest.raises(OSError):  # the server closes the connection long before 200 MB
            deadline = time.monotonic() + 30
            while sent < 200 * 1024 * 1024 and time.monotonic() < deadline:
                sock.sendall(piece)
                sent += len(piece)
        answer = sock.recv(65536)
    # What the kernel buffers between the two ends is all that passes the limit.
    assert sent < 16 * 1024 * 1024, sent
    assert answer.startswith(b"HTTP/1.1 431 "), answer
    expected = {"error": f"the request head is over {MAX_HEAD_BYTES} bytes"}
    assert orjson.loads(answer.split(b"\r\n\r\n", 1)[1]) == expected


def test_too_many_header_fields_are_refused(small: LiveServer) -> None:
    fields = b"".join(b"X-Field-%d: 1\r\n" % i for i in range(MAX_HEADER_FIELDS + 1))
    with socket.create_connection(_address(small)) as sock:
        sock.sendall(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer
    assert b"more than 100 header fields" in answer


def test_heads_within_the_limits_are_served(small: LiveServer) -> None:
    headers = {f"x-field-{i}": "v" * 300 for i in range(MAX_HEADER_FIELDS - 5)}
    assert httpx.get(small.url + "/api/ping", headers=headers).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), BODY_ROUTES, ids=[p for _, p, _ in BODY_ROUTES])
def test_a_declared_oversized_body_is_refused_before_it_is_sent(
    small: LiveServer, method: str, path: str, body: bytes
) -> None:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Token {small.token()}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {20 * 1024 * 1024}\r\n\r\n"
    )
    with socket.create_connection(_address(small)) as sock:
        sock.sendall(head.encode())  # and not one byte of the body: the answer comes all the same
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer


@pytest.mark.parametrize(("method", "path", "body"), BODY_ROUTES, ids=[p for _, p, _ in BODY_ROUTES])
def test_an_oversized_chunked_body_is_refused_and_nothing_is_stored(
    small: LiveServer, method: str, path: str, body: bytes
) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked, counted by the server as it comes
        for _ in range(2000):
            yield b" " * 1024

    with small.client() as api:
        before = small.store.last_order_id()
        try:
            answer = api.request(method, path, content=chunks(), headers={"Content-Type": "application/json"})
        except httpx.HTTPError:  # the server may close before the client has sent it all
            answer = None
        if answer is not None:
            assert answer.status_code == 413, answer.text
            expected = f"request body is over the limit of {BODY_LIMIT} bytes (rest.body.max.bytes)"
            assert answer.json()["error"] == expected
        assert small.store.last_order_id() == before
        # A body within the limit is taken (or refused for what it says, not for its size).
        assert api.request(method, path, content=body).status_code != 413


def test_a_multipart_upload_over_the_limit_is_refused(small: LiveServer) -> None:
    lines = b"".join(orjson.dumps(event("multi", n=i)) + b"\n" for i in range(100))
    assert len(lines) > BODY_LIMIT
    with small.client() as api:
        answer = api.post("/api/new-stream", files={"file": ("s.ndjson", lines)})
        assert answer.status_code == 413, answer.text
        assert "multi" not in {s["stream-name"] for s in api.get("/api/streams").json()["streams"]}
        small_file = b"".join(orjson.dumps(event("multi", n=i)) + b"\n" for i in range(3))
        answer = api.post("/api/new-stream", files={"file": ("s.ndjson", small_file)})
        assert answer.status_code == 201, answer.text
        assert answer.json()["events"] == 3


def test_an_oversized_body_sent_whole_at_once_is_refused_and_nothing_is_stored(small: LiveServer) -> None:
    # The whole body arrives with its head (the direct emit then takes it from the connection's
    # state, not message by message): its size is checked all the same.
    body = orjson.dumps(event(pad="x" * BODY_LIMIT))
    assert len(body) > BODY_LIMIT
    head = (
        f"POST /api/event HTTP/1.1\r\nHost: x\r\nAuthorization: Token {small.token()}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    before = small.store.last_order_id()
    with socket.create_connection(_address(small)) as sock:
        sock.sendall(head.encode() + body)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert small.store.last_order_id() == before
