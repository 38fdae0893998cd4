"""The benchmark's peers are what they claim to be: a JetStream server that fsyncs every acked write,
Message DB's own functions on PostgreSQL, a bare route that answers; and the summary as JSON lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.peer_servers import BareRoute, NatsServer, ensure_installed, install_message_db
from benchmarks.summary import Row

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def peers_installed() -> None:
    ensure_installed()


@pytest.mark.parametrize("sync_always", [True, False])
def test_jetstream_acks_file_stored_publishes(sync_always: bool) -> None:
    import nats
    from nats.js.api import StorageType, StreamConfig

    async def scenario(server: NatsServer) -> tuple[int, Any]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="T", subjects=["t.>"], storage=StorageType.FILE))
        for i in range(10):
            ack = await js.publish("t.a", str(i).encode())
        info = await js.stream_info("T")
        await nc.close()
        return ack.seq, info

    with NatsServer(sync_always=sync_always) as server:
        seq, info = asyncio.run(scenario(server))
        conf = (server.base_dir / "nats.conf").read_text()  # type: ignore[operator]
        stored = list(server.data_dir.rglob("*.blk"))
    assert seq == 10 and info.state.messages == 10
    assert str(getattr(info.config.storage, "value", info.config.storage)) == "file"
    assert stored, "JetStream kept no message block on disk"
    assert ("sync_interval: always" in conf) is sync_always


@contextlib.contextmanager
def message_db(postgres_server: Any) -> Iterator[str]:
    """A fresh database of `postgres_server` with Message DB installed (its DSN), dropped after."""
    import psycopg

    name = f"mdb_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = postgres_server.dsn.rsplit("/", 1)[0] + "/" + name
        install_message_db(dsn)
        yield dsn
    finally:
        with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_message_db_functions_on_postgres(postgres_server: Any) -> None:
    import psycopg

    with message_db(postgres_server) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path TO message_store, public")
        write = "SELECT write_message(%s, %s, %s, %s, NULL, %s)"
        first = conn.execute(write, (str(uuid.uuid4()), "account-1", "Opened", '{"a": 1}', None)).fetchone()
        second = conn.execute(write, (str(uuid.uuid4()), "account-1", "Deposited", '{"a": 2}', 0)).fetchone()
        assert (first, second) == ((0,), (1,))
        with pytest.raises(psycopg.errors.RaiseException, match="Wrong expected version"):
            conn.execute(write, (str(uuid.uuid4()), "account-1", "Late", "{}", 0))
        rows = conn.execute("SELECT type, position FROM get_stream_messages('account-1', 0, 1000)").fetchall()
        assert rows == [("Opened", 0), ("Deposited", 1)]


def test_bare_route_answers_every_post() -> None:
    import httpx

    with BareRoute() as server, httpx.Client(base_url=server.url) as client:
        answers = [client.post("/api/event", json={"i": i}) for i in range(5)]
        missing = client.get("/api/event")
    assert [a.status_code for a in answers] == [200] * 5
    assert answers[0].json() == {"ok": True}
    assert missing.status_code == 405


def test_row_ratio_and_target() -> None:
    rate = Row("w", 300.0, "peer", 200.0, target=1.5)
    latency = Row("l", 3.0, "peer", 2.0, unit="ms", target=2.0, higher=False)
    assert rate.ratio == 1.5 and rate.met is True
    assert latency.met is True and Row("l", 5.0, "p", 2.0, target=2.0, higher=False).met is False
    assert Row("w", 1.0, "p", 2.0).met is None


@pytest.mark.slow
def test_json_lines_summary_of_the_sqlite_comparison() -> None:
    code = (
        "import sys; from benchmarks import __main__ as m, store_peers as s;"
        "s_main = s.main; s.main = lambda argv: s_main(['--events', '2000', '--single', '128', '--repeat', '1',"
        " '--sections', 'sqlite']); m.main(['--json', 'store_peers'])"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 5, done.stdout
    assert {line["benchmark"] for line in lines} == {"store_peers"}
    first = lines[0]
    assert first["peer_name"].startswith("raw sqlite3") and first["durability"].startswith("WAL")
    assert first["photon"] > 0 and first["peer"] > 0 and first["ratio"] == round(first["photon"] / first["peer"], 3)
    assert "| workload |" in done.stderr  # the table went to stderr


def test_unknown_benchmark_is_named() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--json", "nosuch"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode != 0 and "unknown benchmark 'nosuch'" in done.stderr


def test_interleaved_reads_turn_the_order_and_time_each_contender_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import store_peers

    clock = iter(range(1000))
    monkeypatch.setattr(store_peers.time, "perf_counter", lambda: float(next(clock)))
    order: list[str] = []

    def reader(name: str, took: int) -> Any:
        def read(stream: str) -> int:
            order.append(name)
            for _ in range(took - 1):  # each read spans `took` ticks of the clock
                next(clock)
            return 10

        return read

    rates = store_peers.interleaved_reads(
        {"a": reader("a", 1), "b": reader("b", 2), "c": reader("c", 4)}, ["s1", "s2", "s3"], 30
    )
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert rates == {"a": 30 / 3, "b": 30 / 6, "c": 30 / 12}
    with pytest.raises(AssertionError):
        store_peers.interleaved_reads({"a": reader("a", 1)}, ["s1"], 11)


@pytest.mark.slow
def test_the_postgres_round_reads_every_contender(postgres_server: Any) -> None:
    from benchmarks import store_peers
    from benchmarks.core import make_events

    def fresh_dsn() -> str:
        import psycopg

        name = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return postgres_server.dsn.rsplit("/", 1)[0] + "/" + name

    results = store_peers.postgres_round(fresh_dsn, make_events(1000), make_events(128, seed=2))
    assert set(results) == {"photon", "es", "mdb"}
    assert all(set(result) == {"a", "b", "c"} and min(result.values()) > 0 for result in results.values())
