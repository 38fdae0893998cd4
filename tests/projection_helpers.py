"""Shared helpers of the projection tests: configs, a running manager, waiting for a condition."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

from photon.core.config import Config, load_config
from photon.core.store import EventStore
from photon.projections import ProjectionManager, load
from photon.projections.definition import ProjectionSpec


def make_config(tmp_path: Path, backend: str = "memory", **settings: Any) -> Config:
    values = {
        "db.backend": backend,
        "sqlite.path": str(tmp_path / "store.db"),
        "parallel.projections": "2",
        "projections.path": str(tmp_path / "projections"),
        "projections.port": "0",
        "rest.host": "127.0.0.1",
        "projections.checkpoint.seconds": "0.2",
    }
    values.update({key.replace("_", "."): str(value) for key, value in settings.items()})
    return load_config(values, environ={}, cwd=tmp_path)


@contextlib.asynccontextmanager
async def running(store: EventStore, config: Config) -> AsyncIterator[ProjectionManager]:
    manager = ProjectionManager(store, config)
    await manager.start()
    try:
        yield manager
    finally:
        await manager.stop()


async def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def caught_up(manager: ProjectionManager, names: Iterable[str] | None = None, timeout: float = 30.0) -> None:
    """Wait until every running projection (or one still loading its checkpoint) has folded up
    to the store's last order-id."""
    head = manager.store.last_order_id()

    def done() -> bool:
        for name, projection in manager.projections.items():
            if names is not None and name not in names:
                continue
            if projection.status.live and projection.position < head:
                return False
        return True

    await wait_for(done, timeout, f"projections to reach order-id {head}")


def direct_fold(store: EventStore, payload: dict[str, Any]) -> Any:
    """The reference: fold the projection's stream in this process, from the start."""
    definition = load(ProjectionSpec.from_payload(payload))
    state = definition.initial_value
    for event in store.read(definition.stream_name, event_types=definition.event_types):
        state = definition.reduction(state, event.to_dict())
    return state


def events(stream: str, count: int, event_type: str = "happened", start: int = 0) -> list[dict[str, Any]]:
    return [{"stream-name": stream, "event-type": event_type, "payload": {"n": i}} for i in range(start, start + count)]
