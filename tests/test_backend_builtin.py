"""The contract suite against the embedded backends: sqlite (default), memory and file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from photon.testing import BackendContract


class TestSQLite(BackendContract):
    @pytest.fixture
    def store_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "store.db")}


class TestSQLiteByAlias(BackendContract):
    """Photon's `h2` name and `h2.path` key reach the SQLite backend."""

    @pytest.fixture
    def store_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"db.backend": "h2", "h2.path": str(tmp_path / "store.db")}


class TestMemory(BackendContract):
    persistent = False

    @pytest.fixture
    def store_config(self) -> dict[str, Any]:
        return {"db.backend": "memory"}


class TestFile(BackendContract):
    @pytest.fixture
    def store_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"db.backend": "file", "file.path": str(tmp_path / "events.jsonl")}
