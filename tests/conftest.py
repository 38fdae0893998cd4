"""Session-wide fixtures: the real database servers the backend tests run against.

Each server fixture starts its server once per test session (through `tests/servers.py`), or
uses an external one named by its ``PHOTON_TEST_*_URL`` variable. A server that cannot be had
fails the tests that need it; only ``PHOTON_SKIP_SERVERS`` (set to 1, or to a comma-separated
list such as ``cassandra,mongo``) turns that into a skip.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .live import LiveServer, ServerProcess, make_config


def _skipped(kind: str) -> bool:
    value = os.environ.get("PHOTON_SKIP_SERVERS", "").strip().lower()
    if not value:
        return False
    return value in ("1", "true", "yes", "all") or kind in {v.strip() for v in value.split(",")}


def _server(kind: str, class_name: str, **options: Any) -> Iterator[Any]:
    if _skipped(kind):
        pytest.skip(f"PHOTON_SKIP_SERVERS={os.environ['PHOTON_SKIP_SERVERS']} skips the {kind} server tests")
    from tests import servers

    server = getattr(servers, class_name)(**options)
    try:
        server.start()
    except Exception:
        server.close()
        raise
    try:
        yield server
    finally:
        server.close()


def restartable(server: Any) -> None:
    """Skip a test that stops the server when the server is an external one."""
    if not server.restartable:
        pytest.skip(f"{server.env_var} names an external server; the fault tests do not stop it")


# Every server is set up so that what it acknowledged survives SIGKILL: the fault tests kill them.


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    yield from _server("postgres", "PostgresServer")


@pytest.fixture
def postgres_database(postgres_server: Any) -> Iterator[str]:
    """A fresh, empty database on the shared PostgreSQL server, dropped after the test; its URL."""
    import uuid

    import psycopg

    name = f"photon_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_server.dsn.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    yield from _server("redis", "RedisServer", appendonly=True)


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[Any]:
    yield from _server("mongo", "MongoServer", on_disk=True, sync_on_commit=True)


@pytest.fixture(scope="session")
def cassandra_server() -> Iterator[Any]:
    yield from _server("cassandra", "CassandraServer", commitlog_sync="batch")


# -- a Photon server for the API tests (see tests/live.py) --------------------------------


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(make_config(tmp_path))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path,
        ["-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0", "-sqlite.path", str(tmp_path / "p.db")],
    )
    try:
        yield proc
    finally:
        proc.terminate()


class TokenClock:
    """The wall clock the in-process server's tokens are issued and checked by, set by the test."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))  # a whole second, as a token's times are

    def time(self) -> float:
        return self.now


@pytest.fixture
def token_clock(monkeypatch: pytest.MonkeyPatch) -> TokenClock:
    """A token's expiry as the test decides it, not as a loaded machine's pace does: with the
    real clock, a request that took longer than the second a token had left was refused."""
    from photon.server import tokens

    clock = TokenClock()
    monkeypatch.setattr(tokens, "time", clock)
    return clock
