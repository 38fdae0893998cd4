"""What operators look at: the metrics a dashboard needs (and the shipped Grafana dashboard names only
metrics that exist), and the server's logs as JSON lines, access logs included."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import orjson
import pytest

from photon.client.blocking import PhotonClient

from .live import LiveServer, ServerProcess, make_config

DASHBOARD = Path(__file__).parent.parent / "docs" / "grafana" / "photon.json"


def _exercise(url: str) -> None:
    """Appends, a refused append, a durable consumer with an ack, a projection: every metric gets a value."""
    with PhotonClient(url) as client:
        client.emit([{"stream-name": "orders", "event-type": "placed", "payload": {"n": n}} for n in range(5)])
        token = client.transport.token()  # type: ignore[attr-defined]
        refused = httpx.post(
            url + "/api/event",
            content=b'{"stream-name": "orders", "payload": {}}',
            headers={"Authorization": f"Token {token}"},
        )
        assert refused.status_code == 400
        sub = client.subscribe("billing", "orders", stream_type="cold", limit=2)
        list(sub)
        sub.ack()
        client.add_projection("count", "lambda state, event: state + 1", stream_name="orders", initial_value=0)
        deadline = time.monotonic() + 30
        while client.projection_value("count") != 5:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def _metric_names(exposition: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in exposition.splitlines() if line and not line.startswith("#")}


def _samples(exposition: str, name: str) -> dict[str, float]:
    found = {}
    for line in exposition.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, value = line.rsplit(" ", 1)
            found[key] = float(value)
    return found


def test_metrics_a_dashboard_needs(live: LiveServer) -> None:
    _exercise(live.url)
    text = httpx.get(live.url + "/metrics").text
    assert _samples(text, "photon_appends_refused_total") == {
        'photon_appends_refused_total{reason="invalid",transport="http"}': 1.0
    }
    assert _samples(text, "photon_projection_lag")['photon_projection_lag{projection="count"}'] == 0.0
    assert (
        _samples(text, "photon_projection_events_processed_total")[
            'photon_projection_events_processed_total{projection="count"}'
        ]
        == 5.0
    )
    assert (
        _samples(text, "photon_projection_status")['photon_projection_status{projection="count",status="running"}'] == 1
    )
    # billing acknowledged order-id 2 of 6 events in __all__ (5 orders + the projection's registration)
    assert _samples(text, "photon_consumer_lag") == {'photon_consumer_lag{consumer="billing"}': 4.0}
    assert _samples(text, "photon_commit_batch_events_count")["photon_commit_batch_events_count"] >= 2
    assert _samples(text, "photon_backend_append_seconds_count")["photon_backend_append_seconds_count"] >= 2
    assert _samples(text, "photon_backend_read_seconds_count")["photon_backend_read_seconds_count"] >= 1
    assert _samples(text, "process_resident_memory_bytes")["process_resident_memory_bytes"] > 10_000_000
    assert _samples(text, "photon_subscribers")["photon_subscribers"] >= 1  # the projection feed at least


def test_subscribers_and_their_buffered_events(tmp_path: Path) -> None:
    server = LiveServer(make_config(tmp_path, parallel_projections="1"))
    try:
        live = server.store.subscribe("__all__", "hot")
        server.store.append([{"stream-name": "s", "event-type": "t", "payload": {}} for _ in range(3)])
        text = httpx.get(server.url + "/metrics").text
        assert _samples(text, "photon_subscriber_buffered_events")["photon_subscriber_buffered_events"] >= 3
        live.close()
    finally:
        server.stop()


def test_every_metric_the_grafana_dashboard_names_exists(live: LiveServer) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    named = {name for expr in expressions for name in re.findall(r"\b((?:photon|process)_[a-z_]+)", expr)}
    assert len(named) >= 15, named
    _exercise(live.url)
    exposed = _metric_names(httpx.get(live.url + "/metrics").text)
    missing = sorted(named - exposed)
    assert not missing, f"the dashboard names metrics /metrics does not have: {missing}"


@pytest.mark.slow
def test_json_logs_with_access_lines(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path,
        [
            "-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0",
            "-sqlite.path", str(tmp_path / "p.db"),
            "-log.format", "json", "-log.access", "true", "-log.level", "DEBUG",
        ],
    )  # fmt: skip
    try:
        token = server.token()
        bad = httpx.post(
            server.url + "/api/event",
            content=b'{"stream-name": "s", "payload": {}}',
            headers={"Authorization": f"Token {token}", "X-Request-Id": "req-42"},
        )
        assert bad.status_code == 400
        httpx.get(server.url + "/health/live")
        time.sleep(0.3)
    finally:
        server.terminate()
    lines = [line for line in server.output().splitlines() if line.strip()]
    records = [orjson.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
    assert any(r["message"] == "photon ready" for r in records)
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert {(r["method"], r["path"], r["status"]) for r in access} >= {
        ("POST", "/api/event", 400),
        ("GET", "/health/live", 200),
    }
    refused = [r for r in records if r["message"].startswith("append refused")]
    assert refused and refused[0]["request-id"] == "req-42" and refused[0]["path"] == "/api/event"


def test_refusals_over_tcp_are_counted_by_reason(live: LiveServer) -> None:
    from .test_tcp import connect, read_lines

    with connect(live) as sock:
        sock.sendall(
            b'{oops\n{"stream-name":"__all__","event-type":"t","payload":{}}\n{"stream-name":"s","payload":{}}\n'
        )
        answers = read_lines(sock, 3)
    assert all("error" in a for a in answers)
    refused = _samples(httpx.get(live.url + "/metrics").text, "photon_appends_refused_total")
    assert refused == {
        'photon_appends_refused_total{reason="invalid",transport="tcp"}': 2.0,
        'photon_appends_refused_total{reason="internal-stream",transport="tcp"}': 1.0,
    }


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_access_log_never_holds_a_token_from_the_query(tmp_path: Path, log_format: str) -> None:
    """`?access_token=` authorizes a request; with `log.access` on, the access line shows the path
    with the token's value as ****, in either log format."""
    server = ServerProcess(
        tmp_path,
        [
            "-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0",
            "-sqlite.path", str(tmp_path / "p.db"), "-log.format", log_format, "-log.access", "true",
        ],
    )  # fmt: skip
    try:
        token = server.token()
        answer = httpx.get(server.url + "/api/streams", params={"limit": "5", "access_token": token})
        assert answer.status_code == 200, answer.text
        time.sleep(0.3)
    finally:
        server.terminate()
    output = server.output()
    assert token.split(".")[2] not in output
    assert "/api/streams?limit=5&access_token=****" in output, output[-2000:]
