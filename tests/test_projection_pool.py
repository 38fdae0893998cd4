"""The worker pool's processes: workers fork with what they need to read the store loaded."""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path

from photon.core.backend import backend_modules
from photon.core.store import EventStore
from photon.projections.pool import preloaded, store_modules

from .projection_helpers import make_config, running


def test_workers_fork_with_the_store_backend_and_its_driver_loaded(tmp_path: Path) -> None:
    config = make_config(tmp_path, "sqlite")
    store = EventStore.open(config)
    try:
        modules = store_modules(store.backend)
        assert type(store.backend).__module__ in modules
        assert "sqlalchemy" in modules and "sqlalchemy" in sys.modules
        # Opening a store reads every installed backend's settings: their modules come preloaded too.
        assert set(backend_modules()) <= set(modules) and "photon_backends.memory" in modules
        for name in modules:
            importlib.import_module(name)  # each is a module the fork server can import

        async def scenario() -> None:
            async with running(store, config) as manager:
                assert all(w.reads_store for w in manager.workers)
                assert set(modules) <= set(preloaded())

        asyncio.run(scenario())
    finally:
        store.close()


def test_in_process_backends_preload_nothing_of_the_store(tmp_path: Path) -> None:
    config = make_config(tmp_path, "memory")
    store = EventStore.open(config)
    try:
        before = preloaded()

        async def scenario() -> None:
            async with running(store, config) as manager:
                assert not any(w.reads_store for w in manager.workers)

        asyncio.run(scenario())
        assert type(store.backend).__module__ not in set(preloaded()) - set(before)
    finally:
        store.close()
