"""Calling the store from asyncio front ends.

Appends use the store's own async path (`EventStore.append_async`): the caller's coroutine waits
for the group commit without holding a thread. Reads and other blocking calls run in a pool of
the store's own, so that slow reads do not queue behind unrelated work in asyncio's default pool.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from photon.core.events import PendingEvent, RecordedEvent
from photon.core.store import EventStore

T = TypeVar("T")

BLOCKING_THREADS = 32

_pools: weakref.WeakKeyDictionary[EventStore, ThreadPoolExecutor] = weakref.WeakKeyDictionary()


def blocking_pool(store: EventStore) -> ThreadPoolExecutor:
    """The store's shared pool for blocking calls (one per store, made on first use)."""
    pool = _pools.get(store)
    if pool is None:
        pool = ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="photon-blocking")
        _pools[store] = pool
    return pool


def shutdown_pool(store: EventStore) -> None:
    pool = _pools.pop(store, None)
    if pool is not None:
        pool.shutdown(wait=True)


async def run_blocking(store: EventStore, call: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(blocking_pool(store), call, *args)


async def append_validated(store: EventStore, pending: Sequence[PendingEvent]) -> list[RecordedEvent]:
    """`store.append_validated_async`: events checked by `store.validate`, appended without blocking the event loop."""
    return await store.append_validated_async(pending)
