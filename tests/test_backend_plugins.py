"""The server backends are registered plugins whose drivers load only when a store is opened."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from photon.core.backend import backend_class, backend_names
from photon.core.config import all_settings


def test_server_backends_and_aliases_are_registered() -> None:
    names = set(backend_names())
    assert {"postgres", "postgresql", "redis", "mongo", "mongodb", "cassandra", "sql"} <= names
    assert backend_class("mongodb").name == "mongo"
    assert backend_class("postgresql").name == "postgres"


def test_each_backend_declares_its_keys() -> None:
    keys = set(all_settings())
    assert {"postgres.url", "redis.url", "redis.prefix", "mongodb.host", "mongodb.database"} <= keys
    assert {"cassandra.ip", "cassandra.port", "cassandra.keyspace", "cassandra.replication"} <= keys


def test_listing_backends_imports_no_driver() -> None:
    program = (
        "import sys\n"
        "from photon.core.backend import available_backends\n"
        "from photon.core.config import all_settings\n"
        "available_backends(); all_settings()\n"
        "print(sorted(m for m in ('redis', 'pymongo', 'cassandra', 'psycopg') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_opening_a_backend_by_its_name_loads_that_backend_alone() -> None:
    # A projection worker opens the store in a fresh process: loading every installed backend to
    # find one took a tenth of a second there. An alias still finds its backend, by loading them all.
    program = (
        "import sys\n"
        "from photon.core.backend import backend_class\n"
        "print(backend_class(sys.argv[1]).__name__)\n"
        "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules\n"
        "             if m in ('photon_backends.redis', 'photon_backends.mongo', 'photon_backends.cassandra')))\n"
    )

    def loaded(name: str) -> list[str]:
        result = subprocess.run([sys.executable, "-c", program, name], capture_output=True, text=True, check=True)
        return result.stdout.split("\n", 1)

    assert loaded("sqlite") == ["SQLiteBackend", "[]\n"]
    assert loaded("h2") == ["SQLiteBackend", "['cassandra', 'mongo', 'redis']\n"]
    assert loaded("mongodb")[0] == "MongoBackend"


def test_photon_runs_without_pytest_which_only_the_shipped_suite_needs() -> None:
    program = (
        "import sys\n"
        "import photon, photon.cli.main, photon.server.server\n"
        "from photon.core.backend import available_backends\n"
        "from photon.core.store import EventStore\n"
        "available_backends()\n"
        "EventStore.open(db_backend='memory').close()\n"
        "print('pytest' in sys.modules, 'photon.testing' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False False"


TOY_TESTS = """
import importlib.util

import pytest

from photon.testing import BackendContract


def test_the_repositorys_tests_are_not_on_the_path():
    assert importlib.util.find_spec("tests") is None


def test_what_the_backend_cannot_do_is_refused_clearly_and_changes_nothing():
    from photon.core.errors import BackendError
    from photon.core.store import EventStore

    with EventStore.open({"db.backend": "toy"}) as store:
        stored = store.append([{"stream-name": "s", "event-type": "T", "payload": {"n": n}} for n in range(3)])
        store.set_stream_metadata("s", {"max-count": 1})
        with pytest.raises(BackendError, match="the toy backend cannot scavenge"):
            store.scavenge()
        with pytest.raises(BackendError, match="the toy backend cannot redact"):
            store.redact(stream="s")
        assert [e.payload for e in store.read()][:3] == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert store.backend.events_by_id([stored[0].event_id]) == {stored[0].event_id: stored[0]}


class TestToy(BackendContract):
    persistent = False

    @pytest.fixture
    def store_config(self):
        return {"db.backend": "toy"}
"""


@pytest.mark.slow
def test_a_third_party_backend_runs_the_shipped_contract_suite(tmp_path: Path) -> None:
    # The backend is "installed" as pip leaves a package: its module, and a .dist-info folder
    # whose entry points register it, on the path. It runs from a folder outside the repository,
    # so the suite comes from the installed photon.testing, not from tests/.
    shutil.copy(Path(__file__).parent / "plugin" / "photon_toy_backend.py", tmp_path)
    info = tmp_path / "photon_toy_backend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: photon-toy-backend\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[photon.backends]\ntoy = photon_toy_backend:ToyBackend\n")
    (tmp_path / "test_toy.py").write_text(TOY_TESTS)
    # The suite marks its volume tests `slow` (a project may deselect them with -m "not slow").
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: long-running\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--strict-markers", "test_toy.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))  # type: ignore[union-attr]
    assert passed >= 50, summary
    # What it does not declare is skipped, saying so; everything else passes unchanged.
    assert "the toy backend does not declare scavenging" in result.stdout
    assert "the toy backend does not declare redaction" in result.stdout
    assert "the toy backend does not declare listing_checkpoints" in result.stdout
