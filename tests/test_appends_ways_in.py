"""Multi-stream and conditional (DCB) appends through every way in: HTTP over a real socket,
the Python client, the CLI (against a server process and directly on a store), TCP tags and AMQP."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from photon.client.blocking import PhotonClient
from photon.core.append_request import AppendCondition, QueryItem
from photon.core.errors import AppendConditionFailed, ValidationError, VersionConflict

from .live import PHOTON, LiveServer, ServerProcess


def ev(stream: str, event_type: str = "Happened", *tags: str) -> dict[str, Any]:
    event: dict[str, Any] = {"stream-name": stream, "event-type": event_type, "payload": {"n": 1}}
    if tags:
        event["tags"] = list(tags)
    return event


# -- HTTP -------------------------------------------------------------------------------------


def test_http_multi_stream_append_and_conflict(live: LiveServer, api: httpx.Client) -> None:
    api.post("/api/event", json=[ev("a"), ev("b")])
    ok = api.post("/api/event", json={"events": [ev("a"), ev("b")], "expected-versions": {"a": 1, "b": 1}})
    assert ok.status_code == 200, ok.text
    assert [(e["stream-name"], e["stream-version"]) for e in ok.json()] == [("a", 2), ("b", 2)]
    stale = api.post("/api/event", json={"events": [ev("a"), ev("b")], "expected-versions": {"a": 2, "b": 1}})
    assert stale.status_code == 409
    assert stale.json()["stream-name"] == "b" and stale.json()["current-version"] == 2
    assert live.store.last_order_id() == 4
    bad = api.post("/api/event", json={"events": [ev("a")], "expected-versions": {"a": "soon"}})
    assert bad.status_code == 400 and bad.json()["field"] == "expected-versions"
    unknown = api.post("/api/event", json={"events": [ev("a")], "expected-version-map": {}})
    assert unknown.status_code == 400 and "unknown field 'expected-version-map'" in unknown.json()["error"]
    assert live.store.last_order_id() == 4


def test_http_conditional_append_and_read_matching(live: LiveServer, api: httpx.Client) -> None:
    first = api.post("/api/event", json=ev("seat-1", "Booked", "seat:1A"))
    assert first.status_code == 200 and first.json()["tags"] == ["seat:1A"]
    condition = {"query": [{"event-types": ["Booked"], "tags": ["seat:1A"]}], "after": 0}
    refused = api.post("/api/event", json={"events": [ev("seat-2", "Booked", "seat:1A")], "condition": condition})
    assert refused.status_code == 409
    body = refused.json()
    assert body["condition-failed"] is True and body["order-id"] == 1 and body["stream-name"] == "seat-1"
    assert body["id"] == first.json()["id"] and "append condition failed" in body["error"]
    passed = api.post(
        "/api/event", json={"events": [ev("seat-2", "Booked", "seat:1A")], "condition": {**condition, "after": 1}}
    )
    assert passed.status_code == 200, passed.text

    read = api.post("/api/read-matching", json={"query": [{"tags": ["seat:1A"]}], "after": 0, "limit": 1})
    assert read.status_code == 200
    page = read.json()
    assert [e["order-id"] for e in page["results"]] == [1] and page["next"] == 1 and page["head"] == 2
    rest = api.post("/api/read-matching", json={"query": [{"tags": ["seat:1A"]}], "after": page["next"]}).json()
    assert [e["order-id"] for e in rest["results"]] == [2] and rest["next"] is None
    everything = api.post("/api/read-matching").json()
    assert len(everything["results"]) == 2
    for wrong, message in [
        ({"query": {"tags": []}}, "list of query items"),
        ({"after": -1}, "'after' must be an order-id"),
        ({"limit": 0}, "'limit' must be a whole number"),
        ({"from": 1}, "unknown field 'from'"),
    ]:
        answer = api.post("/api/read-matching", json=wrong)
        assert answer.status_code == 400 and message in answer.json()["error"], answer.text
    bad_tags = api.post("/api/event", json={**ev("x"), "tags": "seat"})
    assert bad_tags.status_code == 400 and bad_tags.json()["field"] == "tags"


# -- Python client ----------------------------------------------------------------------------


def test_client_multi_stream_and_conditional_appends(live: LiveServer) -> None:
    with PhotonClient(live.url, "admin", "p4010n") as client:
        client.emit([ev("a", "X", "k:1"), ev("b", "Y", "k:2")])
        stored = client.emit([ev("a"), ev("b")], expected_versions={"a": 1, "b": 1})
        assert [e.stream_version for e in stored] == [2, 2]
        with pytest.raises(VersionConflict):
            client.emit(ev("a"), expected_versions={"a": 1})
        with pytest.raises(AppendConditionFailed) as caught:
            client.emit(ev("c", "Z", "k:1"), condition=AppendCondition((QueryItem(tags=frozenset({"k:1"})),)))
        assert caught.value.order_id == 1 and caught.value.stream == "a"
        client.emit(ev("c", "Z", "k:1"), condition={"query": [{"tags": ["k:1"]}], "after": 1})
        assert [e.order_id for e in client.read_matching([{"tags": ["k:1"]}])] == [1, 5]
        assert [e.order_id for e in client.read_matching([{"tags": ["k:1"]}], after=1)] == [5]
        assert [e.order_id for e in client.read_matching(limit=2)] == [1, 2]
        with pytest.raises(ValidationError, match="expected-versions"):
            client.emit(ev("a"), expected_versions={"a": -3})


# -- CLI --------------------------------------------------------------------------------------


def photon(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTON_")}
    return subprocess.run([PHOTON, *args], cwd=cwd, capture_output=True, env=env, timeout=60)


def test_cli_against_a_server(server_process: ServerProcess, tmp_path: Path) -> None:
    url = ["-url", server_process.url]
    two = photon(["emit", *url, orjson.dumps([ev("a", "X", "t"), ev("b")]).decode()], tmp_path)
    assert two.returncode == 0, two.stderr
    multi = photon(
        ["emit", *url, "-expected-versions", '{"a": 1, "b": 1}', orjson.dumps([ev("a"), ev("b")]).decode()], tmp_path
    )
    assert multi.returncode == 0, multi.stderr
    assert [orjson.loads(line)["stream-version"] for line in multi.stdout.splitlines()] == [2, 2]
    stale = photon(["emit", *url, "-expected-versions", '{"a": 1}', orjson.dumps(ev("a")).decode()], tmp_path)
    assert stale.returncode == 2 and b"version conflict on stream 'a'" in stale.stderr
    refused = photon(
        ["emit", *url, "-condition", '{"query": [{"tags": ["t"]}]}', orjson.dumps(ev("c", "Y", "t")).decode()], tmp_path
    )
    assert refused.returncode == 2 and b"append condition failed" in refused.stderr
    found = photon(["read-matching", *url, '[{"tags": ["t"]}]'], tmp_path)
    assert found.returncode == 0, found.stderr
    assert [orjson.loads(line)["order-id"] for line in found.stdout.splitlines()] == [1]
    malformed = photon(["emit", *url, "-condition", "{nope", orjson.dumps(ev("c")).decode()], tmp_path)
    assert malformed.returncode == 2 and b"-condition is not valid JSON" in malformed.stderr


def test_cli_directly_on_a_store(tmp_path: Path) -> None:
    store = ["-db.backend", "sqlite", "-sqlite.path", str(tmp_path / "s.db")]
    wrapper = {"events": [ev("a", "X", "t"), ev("b")], "expected-versions": {"a": "no-stream", "b": 0}}
    stored = photon(["emit", *store, orjson.dumps(wrapper).decode()], tmp_path)
    assert stored.returncode == 0, stored.stderr
    again = photon(["emit", *store, orjson.dumps(wrapper).decode()], tmp_path)
    assert again.returncode == 2 and b"version conflict" in again.stderr
    refused = photon(
        [
            "emit",
            *store,
            "-condition",
            '{"query": [{"event-types": ["X"]}], "after": 0}',
            orjson.dumps(ev("c")).decode(),
        ],
        tmp_path,
    )
    assert refused.returncode == 2 and b"append condition failed" in refused.stderr
    found = photon(["read-matching", *store, '[{"event-types": ["X"]}, {"tags": ["none"]}]'], tmp_path)
    assert [orjson.loads(line)["stream-name"] for line in found.stdout.splitlines()] == ["a"]
    bad = photon(["read-matching", *store, '[{"tag": ["t"]}]'], tmp_path)
    assert bad.returncode == 2 and b"unknown field 'tag'" in bad.stderr


# -- TCP: events carry tags (one acknowledgement per event: batches and conditions do not fit) ----


def test_tcp_ingest_keeps_tags(live: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", live.tcp_port), timeout=10) as conn:
        conn.sendall(orjson.dumps({"token": live.token()}) + b"\n")
        conn.sendall(orjson.dumps(ev("t", "X", "tag:1")) + b"\n" + orjson.dumps({**ev("t"), "tags": 7}) + b"\n")
        answer = b""
        while answer.count(b"\n") < 2:
            answer += conn.recv(4096)
    first, second = (orjson.loads(line) for line in answer.splitlines())
    assert first["order-id"] == 1 and "tags" in second["error"]
    assert [e.order_id for e in live.store.read_matching([{"tags": ["tag:1"]}])] == [1]
