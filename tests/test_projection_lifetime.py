"""Projections over one stream and the stream's metadata, on a server over HTTP."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from .live import LiveServer, make_config

PHOTON = shutil.which("photon") or str(Path(sys.executable).parent / "photon")


def test_a_projection_added_later_folds_what_the_stream_shows(live: LiveServer, api: httpx.Client) -> None:
    """Metadata set while the server runs, then a projection over the stream added: its history
    read (by a projection worker, from the store) leaves out what the metadata truncates, as every
    read of the stream does."""
    api.post("/api/event", json=[{"stream-name": "acct-1", "event-type": "e", "payload": {"n": n}} for n in range(4)])
    # a projection first, so that the worker's own store is open before the metadata is set
    warm = {"projection-name": "warm", "language": "python", "stream-name": "other", "initial-value": 0}
    assert api.post("/api/projection", json={**warm, "reduction": "lambda s, e: s + 1"}).status_code in (200, 201)
    assert api.put("/api/stream-metadata/acct-1", json={"truncate-before": 3}).status_code == 200
    template = {
        "projection-name": "seen",
        "language": "python",
        "stream-name": "acct-1",
        "initial-value": [],
        "reduction": "lambda state, event: state + [event['stream-version']]",
    }
    assert api.post("/api/projection", json=template).status_code in (200, 201)

    def value() -> Any:
        return api.get("/api/projection/seen").json().get("current-value")

    deadline = time.monotonic() + 30
    while not value():
        assert time.monotonic() < deadline, "the projection did not fold the stream"
        time.sleep(0.05)
    assert value() == [3, 4]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_projections_over_streams_caught_up_together_fold_what_each_stream_shows(tmp_path: Path, workers: str) -> None:
    """Projections over several streams, behind at a server's start, catch up from one read of
    `__all__` (one worker's own, or the manager's shared by two workers): each still folds only
    what a read of its stream returns."""
    db = ["-db.backend", "sqlite", "-sqlite.path", str(tmp_path / "photon.db")]
    names = ["a", "b", "c", "d"]
    for name in names:
        run(
            [PHOTON, "emit", *db],
            input="".join(f'{{"stream-name":"{name}-1","event-type":"e","payload":{{}}}}\n' for _ in range(3)),
        )
        run([PHOTON, "metadata", f"{name}-1", '{"truncate-before": 3}', *db])
        source = tmp_path / f"p{name}.py"
        source.write_text(
            f'projection_name = "p{name}"\nstream_name = "{name}-1"\ninitial_value: list = []\n\n\n'
            "def reduction(state, event):\n    state.append(event['stream-version'])\n    return state\n"
        )
        run([PHOTON, "projections", "add", str(source), *db])
    live = LiveServer(make_config(tmp_path, **{"parallel.projections": workers}))
    try:
        with live.client() as api:
            deadline = time.monotonic() + 30
            for name in names:
                while (value := api.get(f"/api/projection/p{name}").json().get("current-value")) != [3]:
                    assert time.monotonic() < deadline, (name, value)
                    time.sleep(0.05)
    finally:
        live.stop()


def run(args: list[str], input: str | None = None) -> None:
    done = subprocess.run(args, input=input, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
