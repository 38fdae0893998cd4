"""The three ways the `eventsourcing` library's test cases reach Photon: an embedded SQLite
store, an embedded PostgreSQL store (a fresh database on the real test server) and a real Photon
server over HTTP. Each mode is a mixin giving the test case a fresh, empty store per test and the
library environment that selects it."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.utils import Environment

from photon.eventsourcing import PhotonFactory

from .live import LiveServer, make_config


class PhotonMode:
    """A fresh store per test; `photon_env` is the environment that selects it."""

    photon_env: dict[str, str]
    factory: Any

    def new_factory(self) -> PhotonFactory:
        return PhotonFactory(Environment(env={"PERSISTENCE_MODULE": "photon.eventsourcing", **self.photon_env}))


class EmbeddedSQLite(PhotonMode):
    @pytest.fixture(autouse=True)
    def _photon_store(self) -> Iterator[None]:
        with tempfile.TemporaryDirectory() as folder:
            self.photon_env = {
                "PHOTON_DB_BACKEND": "sqlite",
                "PHOTON_SQLITE_PATH": str(Path(folder) / "photon.db"),
                "PHOTON_SQLITE_SYNCHRONOUS": "NORMAL",
            }
            yield


class SharedSQLite(PhotonMode):
    """An embedded SQLite store that already holds a `__config__` event and another application's
    events: the application's notification ids are order-ids with gaps (the library's
    EXPECT_CONTIGUOUS_NOTIFICATION_IDS = False case)."""

    EXPECT_CONTIGUOUS_NOTIFICATION_IDS = False

    @pytest.fixture(autouse=True)
    def _photon_store(self) -> Iterator[None]:
        from eventsourcing.persistence import StoredEvent

        from photon.core.store import EventStore

        with tempfile.TemporaryDirectory() as folder:
            path = str(Path(folder) / "photon.db")
            with EventStore.open(db_backend="sqlite", sqlite_path=path) as store:
                store.append_internal("__config__", "projection-registered", {"projection-name": "other"})
            self.photon_env = {"PHOTON_DB_BACKEND": "sqlite", "PHOTON_SQLITE_PATH": path}
            other = PhotonFactory(Environment("Other", self.photon_env))
            other.application_recorder().insert_events([StoredEvent(uuid.uuid4(), 1, "other:Event", b"{}")])
            other.close()
            yield


class EmbeddedPostgres(PhotonMode):
    pytestmark = pytest.mark.postgres

    @pytest.fixture(autouse=True)
    def _photon_store(self, postgres_server: Any) -> Iterator[None]:
        import psycopg

        name = f"photon_es_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = postgres_server.dsn.rpartition("/")
        self.photon_env = {"PHOTON_DB_BACKEND": "postgres", "PHOTON_POSTGRES_URL": f"{base}/{name}"}
        yield
        with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RemoteServer(PhotonMode):
    @pytest.fixture(autouse=True)
    def _photon_store(self, tmp_path: Path) -> Iterator[None]:
        server = LiveServer(make_config(tmp_path, admin_pass="s3cret", sqlite_synchronous="NORMAL"))
        self.photon_env = {"PHOTON_URL": server.url, "PHOTON_ADMIN_USER": "admin", "PHOTON_ADMIN_PASS": "s3cret"}
        try:
            yield
        finally:
            server.stop()
