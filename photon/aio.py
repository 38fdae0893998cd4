"""Calling the (blocking, thread-safe) store from asyncio front ends.

An append blocks its caller until the group commit that holds it is durable. The front ends
run appends in a pool of their own, larger than asyncio's default, because the point of group
commit is that many appends wait together: 32 concurrent clients need 32 waiting threads for
their appends to share commits.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .events import PendingEvent, RecordedEvent
from .store import EventStore

T = TypeVar("T")

APPEND_THREADS = 128

_pools: weakref.WeakKeyDictionary[EventStore, ThreadPoolExecutor] = weakref.WeakKeyDictionary()


def append_pool(store: EventStore) -> ThreadPoolExecutor:
    """The store's shared pool of append threads (one per store, made on first use)."""
    pool = _pools.get(store)
    if pool is None:
        pool = ThreadPoolExecutor(APPEND_THREADS, thread_name_prefix="photon-append")
        _pools[store] = pool
    return pool


def shutdown_pool(store: EventStore) -> None:
    pool = _pools.pop(store, None)
    if pool is not None:
        pool.shutdown(wait=True)


async def run_blocking(store: EventStore, call: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(append_pool(store), call, *args)


async def append(
    store: EventStore,
    events: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    expected_version: int | str | None = "any",
) -> list[RecordedEvent]:
    """`store.append` without blocking the event loop (no thread is held while the commit runs)."""
    return await store.append_async(events, expected_version=expected_version)


async def append_validated(store: EventStore, pending: Sequence[PendingEvent]) -> list[RecordedEvent]:
    """`store.append_validated` without blocking the event loop."""
    return await store.append_validated_async(pending)
