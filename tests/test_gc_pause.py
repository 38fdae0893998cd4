"""The cycle collector's settings for processes that move events in batches (`photon.core.gc_pause`)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from photon.core.gc_pause import BATCH_THRESHOLD, collect_less_often, cycle_collection_paused
from photon.server import server

from .live import make_config


@pytest.fixture
def thresholds() -> Iterator[None]:
    """The process's collector thresholds and switch interval, put back after the test."""
    kept, interval = gc.get_threshold(), sys.getswitchinterval()
    try:
        yield
    finally:
        gc.set_threshold(*kept)
        sys.setswitchinterval(interval)


def test_collect_less_often_raises_only_the_first_threshold(thresholds: None) -> None:
    gc.set_threshold(700, 10, 10)
    collect_less_often()
    assert gc.get_threshold() == (BATCH_THRESHOLD, 10, 10)


def test_the_server_process_collects_less_often(
    thresholds: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`photon serve` (`server.run`) serves with the raised threshold: the server's appends move
    their events in batches, which the default threshold walks again and again."""
    gc.set_threshold(700, 10, 10)
    seen: list[tuple[int, int, int]] = []

    async def serve(self: server.PhotonServer) -> None:
        seen.append(gc.get_threshold())

    monkeypatch.setattr(server.PhotonServer, "serve", serve)
    server.run(make_config(tmp_path))
    assert seen == [(BATCH_THRESHOLD, 10, 10)]


def test_a_pause_enables_the_collector_again_only_if_it_was() -> None:
    assert gc.isenabled()
    with cycle_collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with cycle_collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
