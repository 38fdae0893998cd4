"""The server backends are registered plugins whose drivers load only when a store is opened."""

from __future__ import annotations

import subprocess
import sys

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
