"""SQLite readers keep the pages they read past the mapped part of the file in a page cache of
their own (`sqlite.cache.mib`, `backends.sql.sqlite.READER_CACHE_MIB`), large enough that a
category read repeated finds its pages there; the writer sizes its own cache."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from photon_backends.sql import sqlite

from photon.core.config import ConfigError, load_config
from photon.core.store import EventStore


def cache_sizes(store: EventStore) -> tuple[int, int]:
    """PRAGMA cache_size of a reading connection of `store` and of its writer's."""
    backend: Any = store.backend
    reader = backend._reading(lambda run: run("PRAGMA cache_size").fetchone()[0])
    writer = backend._writer.driver_connection.execute("PRAGMA cache_size").fetchone()[0]
    return reader, writer


def test_readers_have_the_set_cache_and_the_writer_its_own(tmp_path: Path) -> None:
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(tmp_path / "a.db")}) as store:
        store.append([{"stream-name": "a-1", "event-type": "E", "payload": {}}])
        reader, writer = cache_sizes(store)
        assert reader == -sqlite.READER_CACHE_MIB * 1024  # negative: KiB
        assert writer == -sqlite.WRITER_CACHE_MIN_KIB  # a small store's writer (writer_cache_kib)
    config = {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "b.db"), "sqlite.cache.mib": "3"}
    with EventStore.open(config) as store:
        assert cache_sizes(store) == (-3 * 1024, -sqlite.WRITER_CACHE_MIN_KIB)


def test_no_cache_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"bad value for sqlite\.cache\.mib"):
        load_config({"db.backend": "sqlite", "sqlite.cache.mib": "0"}, environ={}, cwd=tmp_path)


def read_calls() -> int:
    """The read system calls (`pread` among them) this process has made."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("syscr:"):
            return int(line.split()[1])
    raise AssertionError("no syscr in /proc/self/io")


@pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/proc/self/io").exists(), reason="Linux")
def test_a_repeated_read_past_the_mapping_finds_its_pages_in_the_cache(tmp_path: Path) -> None:
    """A file of about 10 MB, 1 MiB of it mapped: a category read of 1,000 events, each on a leaf
    of its own past the mapping, reads its pages once with the default cache, and every time
    with a cache smaller than they are (1 MiB: about 230 pages)."""
    path = tmp_path / "store.db"
    big = "x" * 2500  # one event a leaf page
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)}) as store:
        for start in range(0, 3000, 500):
            store.append(
                [
                    {
                        "stream-name": f"c-{i % 7}" if i % 3 == 0 else f"other-{i}",
                        "event-type": "E",
                        "payload": {"b": big},
                    }
                    for i in range(start, start + 500)
                ]
            )
    assert path.stat().st_size > 8 * 1024 * 1024
    calls = {}
    for cache_mib in (str(sqlite.READER_CACHE_MIB), "1"):
        config = {
            "db.backend": "sqlite",
            "sqlite.path": str(path),
            "sqlite.mmap.mib": "1",
            "sqlite.cache.mib": cache_mib,
        }
        with EventStore.open(config, read_only=True) as store:
            first = [e.order_id for e in store.read("__category__:c", limit=1000)]
            assert first == list(range(1, 3001, 3))
            before = read_calls()
            assert [e.order_id for e in store.read("__category__:c", limit=1000)] == first
            calls[cache_mib] = read_calls() - before
    assert calls[str(sqlite.READER_CACHE_MIB)] < 20, calls
    assert calls["1"] > 500, calls
