"""The direct path of ``POST /api/event`` answers exactly as the routed endpoint, over a real socket.

Each request is sent twice to one live server: once as it comes (a plain emit takes the direct
path, `photon.server.http.emit_direct`) and once with the direct path switched off (the request
goes through the middleware stack and the router). Status, headers, body and the metrics must be
the same; the parts of a stored event that differ by nature (id, time, position) are set aside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from .live import LiveServer, event, make_config

LIMIT = 4000
Send = Callable[[httpx.Client], httpx.Response]


@pytest.fixture
def small(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(make_config(tmp_path, rest_body_max_bytes=str(LIMIT), payload_max_bytes="1000"))
    try:
        yield server
    finally:
        server.stop()


def _chunks(total: int) -> Iterator[bytes]:
    yield b'{"stream-name": "s", "event-type": "t", "payload": {"x": "'
    for _ in range(total // 1000):
        yield b"x" * 1000
    yield b'"}}'


def _post(body: bytes, **headers: str) -> Send:
    return lambda client: client.post("/api/event", content=body, headers=headers)


CASES: dict[str, Send] = {
    "one event": _post(orjson.dumps(event(total=5))),
    "a batch": _post(orjson.dumps([event(n=1), event("other", n=2)])),
    "a wrapped batch with expected-version": _post(orjson.dumps({"events": [event("w")], "expected-version": "any"})),
    "a version conflict": _post(orjson.dumps({"events": [event("orders")], "expected-version": 7})),
    "malformed JSON": _post(b'{"stream-name": '),
    "an empty body": _post(b""),
    "an empty list": _post(b"[]"),
    "a repeated key": _post(b'{"stream-name": "s", "stream-name": "t", "event-type": "e", "payload": {}}'),
    "a missing event type": _post(orjson.dumps({"stream-name": "s", "payload": {}})),
    "an internal stream": _post(orjson.dumps(event("__config__"))),
    "a mistyped payload": _post(orjson.dumps({"stream-name": "s", "event-type": "t", "payload": 3})),
    "an event over payload.max.bytes": _post(orjson.dumps(event(blob="y" * 2000))),
    "a declared body over the limit": _post(b"{" * (LIMIT + 1)),
    "a chunked body over the limit": lambda c: c.post("/api/event", content=_chunks(LIMIT + 2000)),
    "no token": _post(orjson.dumps(event()), authorization=""),
    "a wrong token": _post(orjson.dumps(event()), authorization="Token nope"),
    "a Bearer token": lambda c: c.post(
        "/api/event",
        content=orjson.dumps(event()),
        headers={"authorization": c.headers["authorization"].replace("Token", "Bearer")},
    ),
}


def _comparable(answer: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in answer.headers.items() if k not in ("date", "content-length")}
    body: Any = answer.json()
    events = body if isinstance(body, list) else [body]
    for stored in events:
        if isinstance(stored, dict) and "order-id" in stored:
            for varying in ("id", "event-time", "order-id", "stream-version"):
                stored.pop(varying, None)
    return answer.status_code, headers, body


def _metrics(server: LiveServer) -> dict[str, float]:
    text = httpx.get(server.url + "/metrics").text
    found = {}
    for line in text.splitlines():
        if line.startswith(("photon_appends_total", "photon_appends_refused_total", "photon_events_appended_total")):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


@pytest.mark.parametrize("case", list(CASES))
def test_the_direct_path_answers_as_the_routed_endpoint(small: LiveServer, case: str) -> None:
    send = CASES[case]
    answers = []
    counted = []
    inner = small.app.direct_emit
    assert inner is not None
    taken: list[str] = []

    async def spy(scope: Any, receive: Any, send_: Any) -> None:
        taken.append(scope["path"])
        await inner(scope, receive, send_)

    with small.client() as client:
        client.post("/api/event", json={"events": [event("orders")] * 3})  # the conflict's stream
        for direct in (True, False):
            taken.clear()
            small.app.direct_emit = spy if direct else None
            before = _metrics(small)
            answer = send(client)
            after = _metrics(small)
            small.app.direct_emit = inner
            assert taken == (["/api/event"] if direct else [])
            answers.append(_comparable(answer))
            counted.append({k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)})
    assert answers[0] == answers[1]
    assert counted[0] == counted[1]
    status, headers, body = answers[0]
    assert headers["content-type"] == "application/json"
    if status != 200:
        assert isinstance(body["error"], str) and body["error"]


def test_an_emit_with_a_query_string_takes_the_routed_way(live: LiveServer, api: httpx.Client) -> None:
    taken: list[str] = []
    inner = live.app.direct_emit
    assert inner is not None

    async def spy(scope: Any, receive: Any, send: Any) -> None:
        taken.append(scope["query_string"])
        await inner(scope, receive, send)

    live.app.direct_emit = spy
    assert api.post("/api/event", json=event()).status_code == 200
    answer = api.post("/api/event", params={"expected-version": "0"}, json=event())
    assert answer.status_code == 409 and answer.json()["current-version"] == 1
    token = api.headers["authorization"].split()[1]
    by_query = httpx.post(live.url + "/api/event", params={"access_token": token}, json=event())
    assert by_query.status_code == 200 and by_query.json()["stream-version"] == 2
    assert taken == [b""]
    assert api.options("/api/event").headers["allow"] == "POST, OPTIONS"
    wrong = api.put("/api/event", json=event())
    assert wrong.status_code == 405 and "not allowed" in wrong.json()["error"]


def test_an_unexpected_error_is_a_json_500_on_both_paths(live: LiveServer, api: httpx.Client) -> None:
    store = live.store

    async def failing(events: Any, options: Any, caller: Any = 0) -> Any:
        raise RuntimeError("the disk caught fire")

    store.append_request_async = failing  # type: ignore[method-assign]
    try:
        answers = []
        for direct in (live.app.direct_emit, None):
            keep = live.app.direct_emit
            live.app.direct_emit = direct
            # A new connection each: the server closes one whose request raised.
            answers.append(httpx.post(live.url + "/api/event", json=event(), headers=api.headers))
            live.app.direct_emit = keep
    finally:
        del store.append_request_async
    for answer in answers:
        assert answer.status_code == 500
        assert answer.json() == {"error": "internal error: RuntimeError: the disk caught fire"}
    assert api.post("/api/event", json=event()).status_code == 200


def test_a_middleware_added_later_sees_emits(live: LiveServer) -> None:
    from photon.core.config import load_config
    from photon.core.store import EventStore
    from photon.server.http.app import create_app

    config = load_config({"db.backend": "memory", "admin.pass": "p"})
    store = EventStore.open(config=config)
    try:
        app = create_app(store, config)
        assert app.direct_emit is not None
        app.add_middleware(lambda inner: inner)
        assert app.direct_emit is None
    finally:
        store.close()
