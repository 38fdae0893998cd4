"""`photon projections list|show|add|remove`, run as the installed command, against a server
process and directly on a store."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson

from photon.core.store import EventStore

from .live import ServerProcess
from .projection_helpers import caught_up, make_config, running
from .test_cli_client import photon

COUNT_BY_TYPE = """
projection_name = "by-type"
stream_name = "orders"
initial_value = {}


def reduction(state, event):
    kind = event["event-type"]
    state[kind] = state.get(kind, 0) + 1
    return state
"""

TOTAL_HY = """
(setv projection-name "total")
(setv stream-name "orders")
(setv initial-value 0)
(defn reduction [state event] (+ state (get event "payload" "amount")))
"""


def emit(args: list[str], cwd: Path, events: list[tuple[str, int]]) -> None:
    lines = b"".join(
        orjson.dumps({"stream-name": "orders", "event-type": kind, "payload": {"amount": amount}}) + b"\n"
        for kind, amount in events
    )
    result = photon(["emit", *args], cwd, stdin=lines)
    assert result.returncode == 0, result.stderr


def test_projections_directly_on_a_store(tmp_path: Path) -> None:
    store = ["-db.backend", "sqlite", "-sqlite.path", str(tmp_path / "s.db")]
    (tmp_path / "by_type.py").write_text(COUNT_BY_TYPE)
    (tmp_path / "total.hy").write_text(TOTAL_HY)
    emit(store, tmp_path, [("placed", 10), ("placed", 5), ("shipped", 0)])

    added = photon(["projections", "add", "by_type.py", *store], tmp_path)
    assert added.returncode == 0 and b"registered projection by-type" in added.stderr, added.stderr
    assert photon(["projections", "add", "total.hy", *store], tmp_path).returncode == 0

    listing = photon(["projections", "list", *store], tmp_path).stdout.decode().splitlines()
    assert listing == ["__streams__\t__all__\tstopped\t0", "by-type\torders\tstopped\t0", "total\torders\tstopped\t0"]

    shown = photon(["projections", "show", "by-type", *store], tmp_path)
    assert orjson.loads(shown.stdout) == {"placed": 2, "shipped": 1}, shown.stderr
    assert orjson.loads(photon(["projections", "show", "by-type", "placed", *store], tmp_path).stdout) == 2
    assert orjson.loads(photon(["projections", "show", "total", *store], tmp_path).stdout) == 15
    # Folded from the store as it is now: a later event counts.
    emit(store, tmp_path, [("placed", 7)])
    assert orjson.loads(photon(["projections", "show", "total", *store], tmp_path).stdout) == 22

    missing_key = photon(["projections", "show", "by-type", "lost", *store], tmp_path)
    assert missing_key.returncode != 0 and b"has no key 'lost'" in missing_key.stderr

    removed = photon(["projections", "remove", "total", *store], tmp_path)
    assert removed.returncode == 0, removed.stderr
    gone = photon(["projections", "show", "total", *store], tmp_path)
    assert gone.returncode != 0 and b"projection 'total' does not exist" in gone.stderr
    again = photon(["projections", "remove", "total", *store], tmp_path)
    assert again.returncode != 0 and b"does not exist" in again.stderr
    builtin = photon(["projections", "remove", "__streams__", *store], tmp_path)
    assert builtin.returncode != 0 and b"built in" in builtin.stderr

    # A definition that does not load is refused, and nothing is recorded.
    (tmp_path / "broken.py").write_text("projection_name = 'broken'\nreduction = 42\n")
    broken = photon(["projections", "add", "broken.py", *store], tmp_path)
    assert broken.returncode != 0 and b"reduction" in broken.stderr
    names = [
        line.split("\t")[0]
        for line in photon(["projections", "list", *store], tmp_path).stdout.decode().split("\n")
        if line
    ]
    assert names == ["__streams__", "by-type"]


def test_projections_against_a_server(server_process: ServerProcess, tmp_path: Path) -> None:
    url = ["-url", server_process.url]
    (tmp_path / "by_type.py").write_text(COUNT_BY_TYPE)
    emit(url, tmp_path, [("placed", 10), ("shipped", 0), ("placed", 1)])

    added = photon(["projections", "add", "by_type.py", "-name", "kinds", *url], tmp_path)
    assert added.returncode == 0 and b"registered projection kinds" in added.stderr, added.stderr

    deadline = time.monotonic() + 60  # each look starts a `photon` process: seconds apiece when loaded
    while True:  # the server folds in the background
        shown = photon(["projections", "show", "kinds", *url], tmp_path)
        if shown.returncode == 0 and orjson.loads(shown.stdout) == {"placed": 2, "shipped": 1}:
            break
        assert time.monotonic() < deadline, (shown.stdout, shown.stderr)
        time.sleep(0.2)
    assert orjson.loads(photon(["projections", "show", "kinds", "placed", *url], tmp_path).stdout) == 2

    listing = photon(["projections", "list", *url], tmp_path).stdout.decode().splitlines()
    (kinds,) = [line.split("\t") for line in listing if line.startswith("kinds\t")]
    # Its position passes every event of __all__ it has seen, its own registration included.
    assert kinds[:3] == ["kinds", "orders", "running"] and int(kinds[3]) >= 3

    assert photon(["projections", "remove", "kinds", *url], tmp_path).returncode == 0
    gone = photon(["projections", "show", "kinds", *url], tmp_path)
    assert gone.returncode != 0 and b"does not exist" in gone.stderr


def test_a_projection_added_directly_on_a_store_is_kept_by_the_next_server_start(tmp_path: Path) -> None:
    """`add` records the file's source as `photon projections add` against a server does: a
    projection of the command's, which the server's projections folder does not take back."""
    store_args = ["-db.backend", "sqlite", "-sqlite.path", str(tmp_path / "store.db")]
    (tmp_path / "by_type.py").write_text(COUNT_BY_TYPE)
    emit(store_args, tmp_path, [("placed", 10), ("shipped", 0)])
    added = photon(["projections", "add", "by_type.py", *store_args], tmp_path)
    assert added.returncode == 0, added.stderr
    (tmp_path / "projections").mkdir()  # the server's folder, which holds no by_type.py

    config = make_config(tmp_path, "sqlite")
    store = EventStore.open(config)

    async def scenario() -> None:
        async with running(store, config) as manager:
            await caught_up(manager)
            await asyncio.sleep(1.5)  # the folder is read again once it is watched
            assert manager.get("by-type")["status"] == "running"
            assert manager.get("by-type")["origin"] == "api"
            assert manager.value("by-type") == {"placed": 1, "shipped": 1}

    try:
        asyncio.run(scenario())
        assert "projection-deleted" not in [e.event_type for e in store.read("__config__")]
    finally:
        store.close()


FAILS_ON_SHIPPED = """
projection_name = "fails"
stream_name = "orders"
initial_value = {}


def reduction(state, event):
    if event["event-type"] == "shipped":
        raise ValueError("no shipping here")
    state[event["event-type"]] = state.get(event["event-type"], 0) + 1
    return state
"""


def test_show_of_a_failed_projection_says_so_on_a_server_and_directly_on_a_store(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    """Both ways print the value it holds (the state before the failing event) and fail naming the
    error: a failed projection's value is not current."""
    (tmp_path / "fails.py").write_text(FAILS_ON_SHIPPED)
    store_args = ["-db.backend", "sqlite", "-sqlite.path", str(tmp_path / "s.db")]
    for where in (["-url", server_process.url], store_args):
        emit(where, tmp_path, [("placed", 10), ("shipped", 0), ("placed", 1)])
        assert photon(["projections", "add", "fails.py", *where], tmp_path).returncode == 0
        deadline = time.monotonic() + 60
        while True:  # a server folds in the background
            shown = photon(["projections", "show", "fails", *where], tmp_path)
            if shown.returncode != 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert shown.returncode == 2, (where, shown.stdout, shown.stderr)
        assert orjson.loads(shown.stdout) == {"placed": 1}
        assert b"projection 'fails' failed: ValueError: no shipping here" in shown.stderr, shown.stderr
