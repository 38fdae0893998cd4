"""The TCP ingest benchmark (`benchmarks.tcp_ingest`) stores what it says on both sides, refuses to
report a run in which the server refused events, and prints its rows with the CPU split by thread."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from benchmarks import server as photon_server
from benchmarks import tcp_ingest
from benchmarks.core import make_events
from photon.core.store import EventStore


def test_the_in_process_side_stores_the_events_durably(tmp_path: Path) -> None:
    events = make_events(2500)
    events_file = tmp_path / "events.ndjson"
    events_file.write_bytes(b"".join(tcp_ingest.ndjson(events)))
    result = tcp_ingest.in_process(tmp_path / "store.db", events_file)
    assert result["seconds"] > 0 and result["cpu"] > 0
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(tmp_path / "store.db")}) as store:
        stored = list(store.read())
    assert [orjson.loads(e.data)["payload"] for e in stored] == [e["payload"] for e in events]


def test_a_refused_event_fails_the_run_with_the_servers_error(tmp_path: Path) -> None:
    events = make_events(30)
    events[17] = {"stream-name": "bad", "event-type": "x"}  # no payload
    server = photon_server.Server(tmp_path)
    try:
        token = asyncio.run(server.token())
        with pytest.raises(RuntimeError, match="refused an event: .*payload"):
            asyncio.run(tcp_ingest.tcp_ingest(server.host, server.tcp_port, token, tcp_ingest.ndjson(events)))
        good = tcp_ingest.ndjson(make_events(2500))
        assert len(good) == 3  # blocks of 1,000 lines
        assert asyncio.run(tcp_ingest.tcp_ingest(server.host, server.tcp_port, token, good)) > 0
    finally:
        server.stop()


def test_the_benchmark_prints_its_rows_and_the_cpu_by_thread(capsys: pytest.CaptureFixture[str]) -> None:
    rows = tcp_ingest.main(["--events", "3000", "--rounds", "2"])
    assert [row.workload for row in rows] == [
        "TCP ingest, 1 connection",
        "TCP ingest: server and worker CPU per event",
    ]
    rate, cpu = rows
    assert rate.photon > 0 and rate.peer > 0 and rate.target == 0.8
    assert len(rate.runs["photon"]) == len(rate.runs["peer"]) == 2
    assert cpu.unit == "µs" and not cpu.higher and cpu.photon > 0 and cpu.peer > 0
    threads = set(cpu.runs)
    assert "server: event loop (main thread: TCP front end), µs/event" in threads
    assert "server: writer (photon-committer), µs/event" in threads
    assert "client CPU, µs/event" in threads
    assert cpu.as_json("tcp_ingest")["benchmark"] == "tcp_ingest"
    out = capsys.readouterr().out
    assert "ratio, TCP / in-process" in out and "load average" in out


def test_threads_are_grouped_by_role() -> None:
    assert tcp_ingest.thread_group(10, 10, 10, "MainThread").startswith("server: event loop")
    assert tcp_ingest.thread_group(10, 10, 12, "photon-committer").startswith("server: writer")
    assert tcp_ingest.thread_group(11, 10, 13, "MainThread") == "projection worker (process)"
    assert tcp_ingest.thread_group(10, 10, 14, "photon-blocking_3") == "server: photon-blocking"
