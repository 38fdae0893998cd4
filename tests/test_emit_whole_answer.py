"""A plain emit's body taken from uvicorn's cycle and its answer written whole, over a real socket.

`DirectEmit` takes the body from the cycle when all of it has arrived and writes a stored emit's
answer in one call (`WholeAnswerCycle.whole_body`, `answer_whole`). The bytes on the wire must be
those of the routed endpoint; a body still arriving, an access log and an expired token take the
plain ways.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from photon.server.http.whole_answers import WholeAnswerCycle

from .conftest import TokenClock
from .live import LiveServer, event, make_config


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Any]]]:
    """What `whole_body` and `answer_whole` gave, call by call."""
    seen: dict[str, list[Any]] = {"whole_body": [], "answer_whole": []}
    whole_body, answer_whole = WholeAnswerCycle.whole_body, WholeAnswerCycle.answer_whole

    def spy_body(self: WholeAnswerCycle) -> bytes | None:
        body = whole_body(self)
        seen["whole_body"].append(body)
        return body

    def spy_answer(self: WholeAnswerCycle, *args: Any) -> bool:
        done = answer_whole(self, *args)
        seen["answer_whole"].append(done)
        return done

    monkeypatch.setattr(WholeAnswerCycle, "whole_body", spy_body)
    monkeypatch.setattr(WholeAnswerCycle, "answer_whole", spy_answer)
    yield seen


@pytest.fixture
def no_access_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's access logger as a server without `log.access` has it (no handler, not
    propagating): the test runner's log capture gives it handlers, and uvicorn writes access
    lines whenever it has any."""
    monkeypatch.setattr(logging.getLogger("uvicorn.access"), "hasHandlers", lambda: False)


def _exchange(live: LiveServer, token: str, body: bytes, *, body_after: Callable[[], bool] | None = None) -> bytes:
    """One emit on its own connection; the whole answer as sent. With `body_after`, the body
    follows the head once that is true (the request has reached the app without its body: a
    fixed pause instead was sometimes shorter than a loaded machine took to read the head)."""
    host, port = live.url.removeprefix("http://").rsplit(":", 1)
    head = (
        f"POST /api/event HTTP/1.1\r\nHost: t\r\nAuthorization: Token {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        if body_after is not None:
            sock.sendall(head)
            deadline = time.monotonic() + 60
            while not body_after():
                assert time.monotonic() < deadline, "the request never reached the app"
                time.sleep(0.01)
            sock.sendall(body)
        else:
            sock.sendall(head + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head_part, _, rest = answer.partition(b"\r\n\r\n")
        lines = head_part.split(b"\r\n")
        length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length"))
        while len(rest) < length:
            rest += sock.recv(65536)
        return head_part + b"\r\n\r\n" + rest


def _calls(taken: dict[str, list[Any]], name: str, count: int) -> list[Any]:
    """The first `count` results of `name` (the server's thread may record the last one just
    after the client has read the answer it wrote)."""
    deadline = time.monotonic() + 10
    while len(taken[name]) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return taken[name]


def _without_varying(answer: bytes) -> tuple[list[bytes], dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.startswith(b"date:")]
    stored = orjson.loads(body)
    for varying in ("id", "event-time", "order-id", "stream-version"):
        stored.pop(varying)
    return lines, stored


@pytest.mark.usefixtures("no_access_log")
def test_a_plain_emit_is_answered_whole_with_the_routed_bytes(live: LiveServer, taken: dict[str, list[Any]]) -> None:
    token = live.token()
    body = orjson.dumps(event("whole", n=1))
    direct = _exchange(live, token, body)
    assert _calls(taken, "whole_body", 1) == [body]
    assert _calls(taken, "answer_whole", 1) == [True]
    inner = live.app.direct_emit
    live.app.direct_emit = None
    try:
        routed = _exchange(live, token, body)
    finally:
        live.app.direct_emit = inner
    assert taken["answer_whole"] == [True]  # the routed way did not take it
    assert _without_varying(direct) == _without_varying(routed)
    assert direct.startswith(b"HTTP/1.1 200 OK\r\n")
    assert [e.stream_version for e in live.store.read("whole")] == [1, 2]


@pytest.mark.usefixtures("no_access_log")
def test_a_body_still_arriving_is_received_as_before(live: LiveServer, taken: dict[str, list[Any]]) -> None:
    body = orjson.dumps(event("later", n=2))
    answer = _exchange(live, live.token(), body, body_after=lambda: bool(taken["whole_body"]))
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert _calls(taken, "whole_body", 1) == [None]  # the app had the request before its body
    assert orjson.loads(answer.partition(b"\r\n\r\n")[2])["stream-name"] == "later"


def test_an_access_log_line_is_written_for_a_plain_emit(
    tmp_path: Path, taken: dict[str, list[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    server = LiveServer(make_config(tmp_path, log_access="true"))
    try:
        with caplog.at_level(logging.INFO, logger="uvicorn.access"):
            answer = _exchange(server, server.token(), orjson.dumps(event("logged")))
    finally:
        server.stop()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert _calls(taken, "answer_whole", 1) == [False]  # uvicorn's send writes the line
    assert any('"POST /api/event HTTP/1.1" 200' in record.getMessage() for record in caplog.records)


@pytest.mark.usefixtures("no_access_log")
def test_a_token_known_by_its_header_is_refused_once_expired(live: LiveServer, token_clock: TokenClock) -> None:
    signer = live.app.state.tokens
    token = signer.issue(now=token_clock.now - signer.ttl + 1)  # expires in a second
    body = orjson.dumps(event("expiring"))
    assert _exchange(live, token, body).startswith(b"HTTP/1.1 200 OK\r\n")
    assert _exchange(live, token, body).startswith(b"HTTP/1.1 200 OK\r\n")  # known by its header now
    token_clock.now += 1.2
    refused = _exchange_status(live, token, body)
    assert refused == 401
    assert [e.stream_version for e in live.store.read("expiring")] == [1, 2]


@pytest.mark.usefixtures("no_access_log")
def test_an_emit_asking_to_close_is_answered_and_closed_by_uvicorn(
    live: LiveServer, taken: dict[str, list[Any]]
) -> None:
    answer = _closing_exchange(live, live.token(), orjson.dumps(event("closing")))
    head = answer.partition(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0] == b"HTTP/1.1 200 OK"
    assert b"connection: close" in head
    assert _calls(taken, "answer_whole", 1) == [False]
    assert [e.stream_name for e in live.store.read("closing")] == ["closing"]


def _exchange_status(live: LiveServer, token: str, body: bytes) -> int:
    return int(_closing_exchange(live, token, body)[9:12])


def _closing_exchange(live: LiveServer, token: str, body: bytes) -> bytes:
    """One emit asking the server to close the connection after it; everything until it does."""
    host, port = live.url.removeprefix("http://").rsplit(":", 1)
    request = (
        f"POST /api/event HTTP/1.1\r\nHost: t\r\nAuthorization: Token {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.fixture
def awaited(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes | None]]:
    """What `DirectEmit._rest_of_body` was handed, call by call (None: a body still arriving)."""
    from photon.server.http.emit_direct import DirectEmit

    seen: list[bytes | None] = []
    real = DirectEmit._rest_of_body

    def spy(self: DirectEmit, scope: Any, receive: Any, body: bytes | None) -> Any:
        seen.append(body)
        return real(self, scope, receive, body)

    monkeypatch.setattr(DirectEmit, "_rest_of_body", spy)
    yield seen


@pytest.mark.usefixtures("no_access_log")
def test_a_body_there_whole_is_parsed_without_awaiting_it(
    live: LiveServer, taken: dict[str, list[Any]], awaited: list[bytes | None]
) -> None:
    """A body that arrived with its head goes to the parse as it is (no coroutine to await); one
    still arriving is awaited as before."""
    whole = _exchange(live, live.token(), orjson.dumps(event("whole")))
    later = _exchange(
        live, live.token(), orjson.dumps(event("later")), body_after=lambda: len(taken["whole_body"]) == 2
    )
    assert whole.startswith(b"HTTP/1.1 200 OK\r\n")
    assert later.startswith(b"HTTP/1.1 200 OK\r\n")
    assert awaited == [None]  # only the body that came after its head
    assert [e.stream_name for e in live.store.read("whole")] == ["whole"]
    assert [e.stream_name for e in live.store.read("later")] == ["later"]
