"""The contract suite against the embedded backends: sqlite (default), memory and file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from photon_backends.sql import read_index

from photon.testing import BackendContract


class TestSQLite(BackendContract):
    @pytest.fixture
    def store_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "store.db")}


class TestSQLiteFiledInSmallSteps(BackendContract):
    """The read index filed every few events, so that the suite's category and event-type reads
    straddle its mark (part from the index, part from the events past it)."""

    @pytest.fixture
    def store_config(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        monkeypatch.setattr(read_index, "EVERY", 40)
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
