"""The installed `photon` command, run as a user would."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from photon.core.store import EventStore

PHOTON = shutil.which("photon") or str(Path(sys.executable).parent / "photon")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PHOTON, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_info_shows_the_store(tmp_path: Path) -> None:
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db")) as store:
        store.append([{"stream-name": "a", "event-type": "E", "payload": {}}] * 3)
    result = run("info", "-db.backend", "sqlite", "-sqlite.path", "s.db", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "last order-id: 3" in result.stdout and "a: 3 events" in result.stdout


def test_reading_a_store_that_is_not_there_says_so_and_creates_nothing(tmp_path: Path) -> None:
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db")) as store:
        store.append([{"stream-name": "a", "event-type": "E", "payload": {}}])
    one = run("info", "-sqlite.path", "s.db", cwd=tmp_path)
    assert one.returncode == 0 and "a: 1 event\n" in one.stdout, one.stderr
    for command in (["info"], ["streams", "-db.backend", "sqlite"], ["backup", "b.jsonl"]):
        result = run(*command, "-sqlite.path", "typo.db", cwd=tmp_path)
        assert result.returncode == 2, (command, result.stdout)
        assert "no SQLite store at typo.db (sqlite.path)" in result.stderr, result.stderr
    assert not [p.name for p in tmp_path.iterdir() if not p.name.startswith("s.db")]


def test_backends_lists_builtins_and_their_keys(tmp_path: Path) -> None:
    result = run("backends", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for text in ("sqlite (alias h2)", "memory (alias dummy)", "file [installed]:", "-sqlite.path", "-file.path"):
        assert text in result.stdout
    # Which reads each backend answers from an index, and which the core answers by scanning.
    lines = result.stdout.splitlines()
    ways = {lines[i].split(" ", 1)[0]: lines[i + 1].strip() for i in range(len(lines) - 1) if lines[i][0] != " "}
    indexed = "reads by category: index, event-type: index, tags: index"
    for name in ("sqlite", "postgres", "mongo", "redis", "cassandra"):
        assert ways[name] == indexed, name
    assert ways["memory"] == "reads by category: scanning __all__, event-type: scanning __all__, tags: scanning __all__"


def test_unknown_backend_is_an_error_listing_the_choices(tmp_path: Path) -> None:
    result = run("info", "-db.backend", "riak", cwd=tmp_path)
    assert result.returncode != 0
    assert "unknown db.backend 'riak'" in result.stderr and "sqlite" in result.stderr
    assert not (tmp_path / "photon.db").exists()


def test_help_shows_java_style_options(tmp_path: Path) -> None:
    result = run("info", "-h", cwd=tmp_path)
    assert result.returncode == 0
    assert "-rest.port" in result.stdout and "-db.backend" in result.stdout
