"""Streaming replay over HTTP (NDJSON and server-sent events) and durable named subscriptions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from .live import LiveServer, event


def lines(response: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines():
        if line:
            yield orjson.loads(line)


def cold(api: httpx.Client, stream: str, **params: Any) -> list[dict[str, Any]]:
    answer = api.get(f"/api/replay/{stream}", params={"stream-type": "cold", **params})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    return [orjson.loads(line) for line in answer.content.splitlines()]


def test_cold_replay_of_a_stream_and_of_all(api: httpx.Client) -> None:
    api.post("/api/event", json=[event("a", n=1), event("b", n=2), event("a", n=3)])
    assert [e["payload"]["n"] for e in cold(api, "a")] == [1, 3]
    assert [e["order-id"] for e in cold(api, "__all__")] == [1, 2, 3]


def test_cold_replay_bounds_and_filters(api: httpx.Client) -> None:
    api.post("/api/event", json=[event("s", "even" if i % 2 == 0 else "odd", i=i) for i in range(10)])
    assert [e["order-id"] for e in cold(api, "s", **{"from": 4, "to": 6})] == [4, 5, 6]
    assert [e["stream-version"] for e in cold(api, "s", **{"from-version": 9})] == [9, 10]
    assert [e["payload"]["i"] for e in cold(api, "s", **{"event-types": "odd", "limit": 2})] == [1, 3]
    both = cold(api, "__all__", **{"event-types": "odd,even", "limit": 3})
    assert [e["order-id"] for e in both] == [1, 2, 3]
    times = [e["event-time"] for e in cold(api, "s")]
    assert len(cold(api, "s", **{"from-time": times[0]})) == 10
    assert cold(api, "s", **{"from-time": times[-1] + 10_000}) == []


def test_hot_cold_sends_history_marker_then_live(live: LiveServer, api: httpx.Client) -> None:
    api.post("/api/event", json=[event(n=1), event(n=2)])
    with (
        live.client() as reader,
        reader.stream("GET", "/api/replay/orders", params={"stream-type": "hot-cold"}) as response,
    ):
        items = lines(response)
        assert [next(items)["payload"]["n"], next(items)["payload"]["n"]] == [1, 2]
        assert next(items) == {"caught-up": 2}
        api.post("/api/event", json=[event("other"), event(n=3)])
        live_event = next(items)
        assert live_event["payload"] == {"n": 3} and live_event["order-id"] == 4


def test_hot_sends_only_live_events(live: LiveServer, api: httpx.Client) -> None:
    api.post("/api/event", json=event(n=1))
    with (
        live.client() as reader,
        reader.stream("GET", "/api/replay/__all__", params={"stream-type": "hot"}) as response,
    ):
        items = lines(response)
        # A hot replay answers at once with the marker: it is live from the order-id it names.
        assert next(items) == {"caught-up": 1}
        api.post("/api/event", json=event(n=2))
        assert next(items)["payload"] == {"n": 2}


def test_sse_format_and_resume_with_last_event_id(live: LiveServer, api: httpx.Client) -> None:
    api.post("/api/event", json=[event(n=1), event(n=2)])
    headers = {"Accept": "text/event-stream"}
    with live.client() as reader, reader.stream("GET", "/api/replay/orders", headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        received: list[str] = []
        for line in response.iter_lines():
            received.append(line)
            if line.startswith('data: {"caught-up"'):
                break
    assert received[0] == "id: 1" and received[1].startswith("data: {")
    assert orjson.loads(received[1][len("data: ") :])["payload"] == {"n": 1}
    assert "event: caught-up" in received and 'data: {"caught-up":2}' in received
    resumed = api.get("/api/replay/orders", params={"stream-type": "cold"}, headers={**headers, "Last-Event-ID": "1"})
    assert resumed.text.startswith("id: 2\n")


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"stream-type": "warm"}, "stream-type"),
        ({"from": "x"}, "'from' must be a whole number"),
        ({"limit": "0"}, "at least 1"),
        ({"from": "-1"}, "ASCII digits only"),
        ({"from": "1_0"}, "ASCII digits only"),
        ({"from": "+1"}, "ASCII digits only"),
        ({"from": "\u0663"}, "ASCII digits only"),
        ({"from": str(1 << 63)}, "at most 9223372036854775807"),
        ({"form": "3"}, "did you mean 'from'"),
        ({"from-version": "2"}, "from-version"),
    ],
)
def test_bad_replay_parameters(api: httpx.Client, params: dict[str, str], fragment: str) -> None:
    answer = api.get("/api/replay/__all__", params=params)
    assert answer.status_code == 400
    assert fragment in answer.json()["error"]


def test_cold_replay_of_a_missing_stream_is_404(api: httpx.Client) -> None:
    assert api.get("/api/replay/missing", params={"stream-type": "cold"}).status_code == 404


def test_closed_connections_release_their_subscription(live: LiveServer, api: httpx.Client) -> None:
    others = set(live.store._broadcaster._all)  # the projection engine's own feed
    with (
        live.client() as reader,
        reader.stream("GET", "/api/replay/__all__", params={"stream-type": "hot"}) as response,
    ):
        # The hot replay's first line, the caught-up marker, means its subscription is in place.
        stream = response.iter_lines()  # keep it: a collected line iterator closes the response
        assert orjson.loads(next(stream)) == {"caught-up": 0}
        deadline = time.monotonic() + 5
        while "photon_replay_connections 1.0" not in api.get("/metrics").text:
            assert time.monotonic() < deadline, "the replay stream was never counted"
            time.sleep(0.05)
        assert len(live.store._broadcaster._all - others) == 1
    deadline = time.monotonic() + 5
    while "photon_replay_connections 0.0" not in api.get("/metrics").text:
        assert time.monotonic() < deadline, "the replay stream was not released"
        time.sleep(0.1)
    assert live.store._broadcaster._all == others  # the replay's live listener is gone


# -- durable subscriptions -------------------------------------------------------------------


def take(response: httpx.Response, count: int) -> list[dict[str, Any]]:
    found = []
    for item in lines(response):
        if "caught-up" not in item:
            found.append(item)
        if len(found) == count:
            break
    return found


def test_durable_subscription_resumes_after_the_last_ack(live: LiveServer, api: httpx.Client) -> None:
    api.post("/api/event", json=[event("s", n=i) for i in range(1, 6)] + [event("t")])
    with api.stream("GET", "/api/subscription/billing", params={"stream": "s"}) as response:
        first = take(response, 3)
    assert [e["payload"]["n"] for e in first] == [1, 2, 3]
    ack = api.post("/api/subscription/billing/ack", json={"order-id": first[1]["order-id"]})
    assert ack.status_code == 200
    assert ack.json() == {"consumer": "billing", "stream": "s", "acked": 2}
    with api.stream("GET", "/api/subscription/billing") as response:
        again = take(response, 3)
    assert [e["payload"]["n"] for e in again] == [3, 4, 5]
    # Acks only move forward.
    assert api.post("/api/subscription/billing/ack", json={"order-id": 1}).json()["acked"] == 2
    assert api.get("/api/subscription/billing/position").json() == {"consumer": "billing", "stream": "s", "acked": 2}


def test_durable_subscription_survives_a_restart(tmp_path: Any) -> None:
    from .live import make_config

    config = make_config(tmp_path)
    server = LiveServer(config)
    with server.client() as api:
        api.post("/api/event", json=[event(n=i) for i in range(1, 4)])
        with api.stream("GET", "/api/subscription/c", params={"stream-type": "cold"}) as response:
            assert len(take(response, 3)) == 3
        api.post("/api/subscription/c/ack", json={"order-id": 2})
    server.stop()
    server = LiveServer(config)
    try:
        with server.client() as api:
            rest = [
                orjson.loads(x)
                for x in api.get("/api/subscription/c", params={"stream-type": "cold"}).content.splitlines()
            ]
        assert [e["order-id"] for e in rest] == [3]
    finally:
        server.stop()


def test_durable_subscription_errors(api: httpx.Client) -> None:
    api.post("/api/event", json=event("s"))
    api.get("/api/subscription/c1", params={"stream": "s", "stream-type": "cold"})
    other = api.get("/api/subscription/c1", params={"stream": "t", "stream-type": "cold"})
    assert other.status_code == 409 and "follows stream 's'" in other.json()["error"]
    assert api.post("/api/subscription/nobody/ack", json={"order-id": 1}).status_code == 404
    past = api.post("/api/subscription/c1/ack", json={"order-id": 99})
    assert past.status_code == 409 and "past the newest" in past.json()["error"]
    for body in ({"order-id": "1"}, {"order-id": 1, "x": 2}, [1]):
        assert api.post("/api/subscription/c1/ack", json=body).status_code == 400
    misspelt = api.post("/api/subscription/c1/ack", json={"orderid": 1})
    assert misspelt.json() == {
        "error": "unknown key 'orderid'; the body is {\"order-id\": <number>}",
        "field": "orderid",
    }
    assert api.get("/api/subscription/c1/position").json()["acked"] == 0
    assert api.get("/api/subscription/nobody/position").status_code == 404
    star = api.get("/api/subscription/star", params={"stream": "s*", "stream-type": "cold"})
    assert star.status_code == 400 and "the wildcard is '**'" in star.json()["error"], star.text
    assert api.get("/api/subscription/star/position").status_code == 404
    assert [c["consumer"] for c in api.get("/api/subscriptions").json()["subscriptions"]] == ["c1"]
    wildcard = api.get("/api/subscription/w", params={"stream": "s**", "stream-type": "cold"})
    assert [orjson.loads(line)["stream-name"] for line in wildcard.content.splitlines()] == ["s"]
    assert api.delete("/api/subscription/c1").json() == {"correct": True}
    assert api.get("/api/subscription/c1/position").status_code == 404


def _raw_get(live: LiveServer, target: str, version: str, token: str, until: bytes | None = None) -> bytes:
    """A request over a bare socket; the answer up to `until` (or up to the connection's end)."""
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(live.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(f"GET {target} {version}\r\nHost: x\r\nAuthorization: Token {token}\r\n\r\n".encode())
        answer = b""
        while until is None or until not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


@pytest.mark.parametrize("stream_type", ["cold", "hot-cold"])
def test_streams_to_an_http_1_0_client_are_not_chunked(live: LiveServer, api: httpx.Client, stream_type: str) -> None:
    api.post("/api/event", json=[event("s"), event("s")]).raise_for_status()
    token = live.token()
    until = None if stream_type == "cold" else b'{"caught-up":2}\n'
    answer = _raw_get(live, f"/api/replay/s?stream-type={stream_type}", "HTTP/1.0", token, until)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    headers = head.lower()
    assert b"transfer-encoding" not in headers and b"content-length" not in headers
    assert b"connection: close" in headers
    lines = body.splitlines()
    assert [orjson.loads(line)["order-id"] for line in lines[:2]] == [1, 2]
    if stream_type == "cold":
        assert len(lines) == 2  # the body ended with the connection
    # HTTP/1.1 clients still get chunks.
    answer = _raw_get(live, "/api/replay/s?stream-type=cold", "HTTP/1.1", token, b"0\r\n\r\n")
    assert b"transfer-encoding: chunked" in answer.partition(b"\r\n\r\n")[0].lower()


def test_replay_of_a_stream_follows_its_metadata(live: LiveServer, api: httpx.Client) -> None:
    # A replay reads a stream as every other read does: what its metadata truncates is gone.
    api.post("/api/event", json=[event("kept", n=n) for n in range(1, 6)])
    answer = api.put("/api/stream-metadata/kept", json={"max-count": 2})
    assert answer.status_code == 200, answer.text
    assert [e["payload"]["n"] for e in cold(api, "kept")] == [4, 5]
    with (
        live.client() as reader,
        reader.stream("GET", "/api/replay/kept", params={"stream-type": "hot-cold"}) as response,
    ):
        items = lines(response)
        assert [next(items)["payload"]["n"], next(items)["payload"]["n"]] == [4, 5]
        assert "caught-up" in next(items)
