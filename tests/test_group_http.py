"""Consumer groups over HTTP, on a real socket: routes, member streams, acks, a member killed, a server killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from .live import LiveServer, ServerProcess, event


def deliveries(response: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines():
        if line:
            yield orjson.loads(line)


def test_group_routes_create_list_describe_update_delete(api: httpx.Client) -> None:
    created = api.post("/api/groups", json={"group-name": "billing", "stream": "orders", "max-in-flight": 3})
    assert created.status_code == 201, created.text
    assert created.json()["max-in-flight"] == 3 and created.json()["strategy"] == "round-robin"
    assert api.post("/api/groups", json={"group-name": "billing"}).status_code == 409
    bad = api.post("/api/groups", json={"group-name": "x", "strategy": "random"})
    assert bad.status_code == 400 and bad.json()["field"] == "strategy"
    assert api.post("/api/groups", content=b"{nope").status_code == 400
    assert [g["group-name"] for g in api.get("/api/groups").json()["groups"]] == ["billing"]
    assert api.put("/api/group/billing", json={"ack-timeout-ms": 500}).json()["ack-timeout-ms"] == 500
    assert api.get("/api/group/billing").json()["ack-timeout-ms"] == 500
    assert api.get("/api/group/missing").status_code == 404
    assert api.post("/api/group/billing/ack", json={"order-ids": ["x"]}).status_code == 400
    assert api.post("/api/group/billing/nack", json={"order-ids": [1], "action": "drop"}).status_code == 400
    misspelt = api.post("/api/group/billing/nack", json={"order-ids": [1], "acton": "skip"})
    assert misspelt.status_code == 400 and misspelt.json()["field"] == "acton", misspelt.text
    assert misspelt.json()["error"].startswith("unknown key 'acton'")
    nameless = api.post("/api/groups", json={"stream": "orders"})
    assert nameless.status_code == 400 and nameless.json()["error"].startswith("group-name is required")
    assert api.post("/api/group/billing/reset", json={"from": 0}).status_code == 400
    refused = api.get("/api/group/billing/stream", params={"max-in-flight": 0})
    assert refused.status_code == 400 and refused.json()["parameter"] == "max-in-flight"
    unlimited = api.get("/api/group/billing/stream", params={"limit": 0})
    assert unlimited.status_code == 400 and unlimited.json()["parameter"] == "limit"
    assert api.get("/api/group/billing").json()["members"] == []
    assert api.delete("/api/group/billing").json() == {"correct": True}
    assert api.get("/api/groups").json() == {"groups": []}
    assert httpx.get(api.base_url.join("/api/groups")).status_code == 401


def test_reset_and_replay_parked_name_an_unknown_key_and_do_nothing(api: httpx.Client) -> None:
    api.post("/api/groups", json={"group-name": "g", "stream": "orders"}).raise_for_status()
    api.post("/api/event", json=[event("orders", n=i) for i in range(3)]).raise_for_status()
    api.post("/api/group/g/reset", json={"from": 3}).raise_for_status()
    before = api.get("/api/group/g").json()
    extra = api.post("/api/group/g/reset", json={"from": 1, "form": 2})
    assert extra.status_code == 400 and extra.json()["field"] == "form", extra.text
    assert extra.json()["error"].startswith("unknown key 'form'")
    missing = api.post("/api/group/g/reset", json={"form": 1})
    assert missing.status_code == 400 and missing.json()["field"] == "form"
    assert api.get("/api/group/g").json()["checkpoint"] == before["checkpoint"] == 2
    # replay-parked takes no options (KurrentDB's takes a stop-at): one sent is refused, not ignored
    option = api.post("/api/group/g/replay-parked", json={"stop-at": 5})
    assert option.status_code == 400 and option.json()["field"] == "stop-at", option.text
    assert api.post("/api/group/g/replay-parked", json=[1]).status_code == 400
    assert api.post("/api/group/g/replay-parked", content=b"{nope").status_code == 400
    assert api.post("/api/group/g/replay-parked", json={}).json() == {"replayed": 0}
    assert api.post("/api/group/g/replay-parked").json() == {"replayed": 0}


def test_a_lone_star_in_a_group_stream_is_refused_and_a_wildcard_group_delivers(api: httpx.Client) -> None:
    def config_events() -> int:
        streams = api.get("/api/streams").json()["streams"]
        return sum(s["total-events"] for s in streams if s["stream-name"] == "__config__")

    config_before = config_events()
    for stream in ("order*", "*", "order-***"):
        refused = api.post("/api/groups", json={"group-name": "g", "stream": stream})
        assert refused.status_code == 400 and refused.json()["field"] == "stream", (stream, refused.text)
        assert "the wildcard is '**'" in refused.json()["error"]
    assert api.get("/api/groups").json() == {"groups": []}
    assert config_events() == config_before
    api.post("/api/groups", json={"group-name": "g", "stream": "order-**"}).raise_for_status()
    changed = api.put("/api/group/g", json={"stream": "order*"})
    assert changed.status_code == 400 and changed.json()["field"] == "stream"
    assert api.get("/api/group/g").json()["stream"] == "order-**"
    api.post("/api/event", json=[event("order-1"), event("orders"), event("order-2")]).raise_for_status()
    with api.stream("GET", "/api/group/g/stream", params={"member": "m"}) as response:
        lines = deliveries(response)
        next(lines)
        assert [next(lines)["event"]["stream-name"] for _ in range(2)] == ["order-1", "order-2"]
    # a wildcard reads many streams, so it takes the filters of __all__ and categories, as a replay does
    narrowed = {"group-name": "g2", "stream": "order-**", "filter": {"stream-regex": "2$"}}
    api.post("/api/groups", json=narrowed).raise_for_status()
    with api.stream("GET", "/api/group/g2/stream", params={"member": "m"}) as response:
        lines = deliveries(response)
        next(lines)
        assert next(lines)["event"]["stream-name"] == "order-2"
    assert api.get("/api/group/g2").json()["filter"] == {"stream-regex": "2$"}
    one = api.post("/api/groups", json={"group-name": "g3", "stream": "orders", "filter": {"stream-regex": "2$"}})
    assert one.status_code == 400 and one.json()["field"] == "filter"


def test_member_stream_with_acks_and_nacks_on_one_connection(live: LiveServer, api: httpx.Client) -> None:
    api.post("/api/groups", json={"group-name": "g", "max-retries": 0}).raise_for_status()
    api.post("/api/event", json=[event("orders", n=i) for i in range(3)]).raise_for_status()
    with live.client() as stream_client, stream_client.stream("GET", "/api/group/g/stream?member=m1") as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = deliveries(response)
        assert next(lines) == {"group": "g", "member": "m1"}
        got = [next(lines) for _ in range(3)]
        assert [d["event"]["payload"]["n"] for d in got] == [0, 1, 2] and {d["attempt"] for d in got} == {1}
        ids = [d["event"]["order-id"] for d in got]
        assert api.post("/api/group/g/ack", json={"order-ids": ids[:1]}).json() == {"done": 1, "unknown": []}
        assert api.post("/api/group/g/nack", json={"order-id": ids[1], "action": "skip"}).json()["done"] == 1
        nacked = api.post("/api/group/g/nack", json={"order-ids": [ids[2]], "reason": "no stock"})
        assert nacked.json()["done"] == 1
        described = api.get("/api/group/g").json()
        assert described["members"][0]["member"] == "m1" and described["parked"] == 1
    parked = api.get("/api/replay/__parked__:g", params={"stream-type": "cold"})
    (line,) = parked.content.splitlines()
    assert orjson.loads(line)["payload"]["event"]["order-id"] == ids[2]
    assert api.post("/api/group/g/replay-parked").json() == {"replayed": 1}
    with (
        live.client() as stream_client,
        stream_client.stream("GET", "/api/group/g/stream", headers={"Accept": "text/event-stream"}) as response,
    ):
        text = ""
        for chunk in response.iter_text():
            text += chunk
            if 'data: {"attempt"' in text:
                break
        assert "event: joined" in text and f"id: {ids[2]}" in text


def test_member_killed_with_sigkill_gets_its_events_redelivered(live: LiveServer, api: httpx.Client) -> None:
    api.post("/api/groups", json={"group-name": "g", "max-in-flight": 5, "ack-timeout-ms": 600_000}).raise_for_status()
    api.post("/api/event", json=[event("orders", n=i) for i in range(5)]).raise_for_status()
    doomed = subprocess.Popen(
        [sys.executable, "-m", "tests.group_member", live.url, live.token(), "g", "doomed", "noack"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert doomed.stdout is not None
    received = [doomed.stdout.readline().split() for _ in range(5)]
    assert [attempt for _, attempt in received] == ["1"] * 5
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    started = time.monotonic()
    with live.client() as client, client.stream("GET", "/api/group/g/stream?member=survivor") as response:
        lines = deliveries(response)
        next(lines)
        again = [next(lines) for _ in range(5)]
    assert sorted(d["event"]["order-id"] for d in again) == sorted(int(o) for o, _ in received)
    assert {d["attempt"] for d in again} == {2}
    assert time.monotonic() - started < 30  # well before the ack time-out


@pytest.mark.slow
def test_server_killed_mid_stream_loses_nothing_and_redelivers_nothing_acked(tmp_path: Path) -> None:
    args = ["-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0", "-admin.secret", "s3cret"]
    args += ["-sqlite.path", str(tmp_path / "p.db")]
    server = ServerProcess(tmp_path, args)
    total = 400
    token = server.token()
    headers = {"Authorization": f"Token {token}"}
    httpx.post(server.url + "/api/groups", json={"group-name": "g", "max-in-flight": 20}, headers=headers)
    acked: list[int] = []
    in_doubt: list[int] = []  # the ack was sent but its answer lost with the server
    after_restart: list[tuple[int, int]] = []
    lock = threading.Lock()

    def member(url: str, name: str, sink: list[tuple[int, int]] | None) -> None:
        # Ends when the server goes away, or after 3 s without a delivery.
        timeout = httpx.Timeout(10, read=3)
        try:
            with (
                httpx.Client(base_url=url, headers=headers, timeout=timeout) as client,
                client.stream("GET", "/api/group/g/stream", params={"member": name}) as response,
            ):
                for line in response.iter_lines():
                    item = orjson.loads(line) if line else {}
                    if "event" not in item:
                        continue
                    order_id = item["event"]["order-id"]
                    if sink is not None:
                        with lock:
                            sink.append((order_id, item["attempt"]))
                    try:
                        client.post("/api/group/g/ack", json={"order-ids": [order_id]}).raise_for_status()
                    except (httpx.HTTPError, OSError):
                        in_doubt.append(order_id)
                        raise
                    with lock:
                        acked.append(order_id)
        except (httpx.HTTPError, OSError):
            return

    written: list[int] = []

    def writer(url: str, start: int, count: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
            for i in range(start, start + count, 10):
                answer = client.post("/api/event", json=[event(f"s-{i % 7}", n=n) for n in range(i, i + 10)])
                written.extend(e["order-id"] for e in answer.json())

    members = [threading.Thread(target=member, args=(server.url, f"m{i}", None)) for i in range(2)]
    for thread in members:
        thread.start()
    writer(server.url, 0, total // 2)
    deadline = time.monotonic() + 30
    while len(acked) < 40 and time.monotonic() < deadline:
        time.sleep(0.001)
    server.terminate(signal.SIGKILL)  # mid-stream: the members are acknowledging
    for thread in members:
        thread.join(30)
    acked_before = set(acked)
    assert 40 <= len(acked_before) < len(written), "the kill did not come mid-stream"

    server = ServerProcess(tmp_path, args)
    try:
        writer(server.url, total // 2, total // 2)
        members = [threading.Thread(target=member, args=(server.url, f"n{i}", after_restart)) for i in range(2)]
        for thread in members:
            thread.start()
        for thread in members:
            thread.join(60)
    finally:
        server.terminate()
    redelivered_acked = {order_id for order_id, _ in after_restart} & acked_before
    assert not redelivered_acked, f"acknowledged before the kill, delivered again: {sorted(redelivered_acked)[:10]}"
    counts = Counter(acked)
    assert max(counts.values()) == 1
    never = set(written) - set(counts) - set(in_doubt)
    assert not never, f"never delivered after the restart: {sorted(never)[:10]}"
    assert len(counts) >= len(written) - len(in_doubt)
