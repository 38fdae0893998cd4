"""Bad input gets a 4xx JSON error naming the problem, and nothing of it is stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from .live import LiveServer, event, make_config


@pytest.fixture
def small(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(make_config(tmp_path, **{"payload.max.bytes": "1000", "rest.body.max.bytes": "5000"}))
    try:
        yield server
    finally:
        server.stop()


def post(live: LiveServer, body: bytes, params: dict[str, str] | None = None) -> httpx.Response:
    with live.client() as api:
        return api.post("/api/event", content=body, params=params, headers={"Content-Type": "application/json"})


def expect(answer: httpx.Response, status: int, *fragments: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    for fragment in fragments:
        assert fragment in body["error"], body
    return body


CASES = [
    (b'{"stream-name": "s", "event-type": ', 400, ["malformed JSON"]),
    (b"", 400, ["empty request body"]),
    (b"42", 400, ["the body must be an event object"]),
    (b'{"stream-name": "s", "payload": {}}', 400, ["missing required field 'event-type'"]),
    (b'{"stream-name": "s", "event-type": "t", "payload": "text"}', 400, ["'payload' must be a JSON object"]),
    (b'{"stream-name": 5, "event-type": "t", "payload": {}}', 400, ["'stream-name' must be a string"]),
    (b'{"stream-name": "s", "event-type": "t", "payload": {}, "colour": 1}', 400, ["unknown field 'colour'"]),
    (b'{"stream-name": "s", "event-type": "t", "payload": {}, "order-id": 9}', 400, ["'order-id' is assigned"]),
    (b'{"stream-name": "__all__", "event-type": "t", "payload": {}}', 400, ["internal"]),
    (b'{"stream-name": "__config__", "event-type": "t", "payload": {}}', 400, ["internal"]),
    (b"[]", 400, ["no events"]),
    (
        b'[{"stream-name": "s", "event-type": "t", "payload": {}}, {"stream-name": "s", "payload": {}}]',
        400,
        ["event 1:", "event-type"],
    ),
    (b'{"events": [], "expected": 1}', 400, ["unknown field 'expected'"]),
    (
        b'{"events": [{"stream-name": "s", "event-type": "t", "payload": {}}], "expected-version": null}',
        400,
        ["expected-version is null", "leave it out"],
    ),
    (b'{"stream-name": "s", "event-type": "t", "event-type": "u", "payload": {}}', 400, ["duplicate key 'event-type'"]),
    (
        b'[{"stream-name": "s", "event-type": "t", "payload": {}}, '
        b'{"stream-name": "s", "event-type": "t", "payload": {"amount": 1, "to": "x:", "amount" : 2}}]',
        400,
        ["duplicate key 'amount'"],
    ),
    (b'{"events": 5}', 400, ["'events' must be a list"]),
    (
        b'{"events": [{"stream-name": "s", "event-type": "t", "payload": {}}], "expected-version": -1}',
        400,
        ["expected-version"],
    ),
    (
        b'{"events": [{"stream-name": "a", "event-type": "t", "payload": {}}, '
        b'{"stream-name": "b", "event-type": "t", "payload": {}}], "expected-version": 0}',
        400,
        ["one stream"],
    ),
    (
        b'{"stream-name": "s", "event-type": "t", "payload": {"x": "' + b"y" * 1200 + b'"}}',
        413,
        ["event too large", "payload.max.bytes"],
    ),
    (
        b"[" + b",".join([b'{"stream-name": "s", "event-type": "t", "payload": {}}'] * 200) + b"]",
        413,
        ["rest.body.max.bytes"],
    ),
]


@pytest.mark.parametrize(("body", "status", "fragments"), CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_bad_events_are_refused_and_nothing_stored(
    small: LiveServer, body: bytes, status: int, fragments: list[str]
) -> None:
    expect(post(small, body), status, *fragments)
    assert small.store.backend.last_order_id() == 0


def test_expected_version_given_twice_or_malformed(small: LiveServer) -> None:
    wrapped = b'{"events": [{"stream-name": "s", "event-type": "t", "payload": {}}], "expected-version": 0}'
    expect(post(small, wrapped, {"expected-version": "0"}), 400, "both in the body and as a query parameter")
    single = b'{"stream-name": "s", "event-type": "t", "payload": {}}'
    expect(post(small, single, {"expected-version": "soon"}), 400, "expected-version")
    assert small.store.backend.last_order_id() == 0


def test_version_conflict_stores_nothing(small: LiveServer) -> None:
    with small.client() as api:
        api.post("/api/event", json=event())
        answer = api.post("/api/event", json=[event(), event()], params={"expected-version": "0"})
    body = expect(answer, 409, "version conflict")
    assert body["current-version"] == 1
    assert small.store.backend.last_order_id() == 1


def test_unknown_routes_and_methods(live: LiveServer, api: httpx.Client) -> None:
    expect(api.get("/api/nothing"), 404, "no such route: GET /api/nothing")
    expect(httpx.get(live.url + "/elsewhere"), 404, "/elsewhere")
    expect(api.put("/api/event", json=event()), 405, "method PUT not allowed")
    assert live.store.backend.last_order_id() == 0


@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [
        ("/api/streams", {"verbose": "1"}, "unknown query parameter 'verbose'"),
        ("/api/stream-contents/s", {"limt": "5"}, "did you mean 'limit'"),
        ("/api/stream-contents/s", {"limit": "5000"}, "at most 1000"),
        ("/api/stream-contents/s", {"limit": "five"}, "whole number"),
        ("/api/replay/s", {"to": "1", "to2": "1"}, "'to2'"),
    ],
)
def test_unknown_and_bad_query_parameters(api: httpx.Client, path: str, params: dict[str, str], fragment: str) -> None:
    api.post("/api/event", json=event("s"))
    expect(api.get(path, params=params), 400, fragment)


def test_unknown_parameter_on_post_stores_nothing(small: LiveServer) -> None:
    single = b'{"stream-name": "s", "event-type": "t", "payload": {}}'
    expect(post(small, single, {"expected_version": "0"}), 400, "did you mean 'expected-version'")
    assert small.store.backend.last_order_id() == 0


def test_an_id_already_stored_in_another_stream_is_a_conflict(small: LiveServer) -> None:
    with small.client() as api:
        first = api.post("/api/event", json={**event("orders"), "id": "e-1"})
        assert first.status_code == 200, first.text
        # The same event sent again is a retry: answered with what is stored.
        again = api.post("/api/event", json={**event("orders"), "id": "e-1"})
        assert again.status_code == 200 and again.json() == first.json()
        clash = api.post("/api/event", json=[event("invoices"), {**event("invoices"), "id": "e-1"}])
    body = expect(clash, 409, "event id 'e-1' is already stored in stream 'orders'", "not in 'invoices'")
    assert body["stored-in"] == "orders" and body["id"] == "e-1"
    assert small.store.last_order_id() == 1


def test_duplicate_keys_are_refused_on_tcp_too(small: LiveServer) -> None:
    import socket

    token = small.token()
    with socket.create_connection(("127.0.0.1", small.tcp_port), timeout=10) as sock:
        sock.sendall(
            b'{"token":"%s"}\n' % token.encode()
            + b'{"stream-name":"s","event-type":"t","payload":{"a":1,"a":2}}\n'
            + b'{"stream-name":"s","event-type":"t","payload":{"a":1}}\n'
        )
        answers = b""
        while answers.count(b"\n") < 2:
            answers += sock.recv(4096)
    first, second = answers.splitlines()
    assert b"duplicate key 'a'" in first
    assert second == b'{"order-id":1,"stream-version":1}'
    assert small.store.last_order_id() == 1


def test_a_refused_event_of_a_batch_is_named_by_its_position(small: LiveServer) -> None:
    """The answer carries the refused event's index, and the client's error has it: a client
    points at the event without reading the message."""
    from photon.client import PhotonClient
    from photon.core.errors import ValidationError

    good = {"stream-name": "s", "event-type": "t", "payload": {}}
    answer = post(small, orjson.dumps([good, good, {"stream-name": "s", "payload": {}}]))
    body = expect(answer, 400, "event 2:", "event-type")
    assert (body["field"], body["event-index"]) == ("event-type", 2)
    # One event alone is not a batch: no index.
    assert "event-index" not in expect(post(small, orjson.dumps({"stream-name": "s", "payload": {}})), 400)
    with PhotonClient(small.url, "admin", "p4010n") as client, pytest.raises(ValidationError) as caught:
        client.emit([good, {**good, "payload": 5}])
    assert (caught.value.field, caught.value.index) == ("payload", 1)
    assert small.store.backend.last_order_id() == 0
