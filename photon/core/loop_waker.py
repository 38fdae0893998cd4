"""Waking asyncio callers from the writer thread: one wake-up per event loop per group commit."""

from __future__ import annotations

import asyncio
import contextlib
import threading


class LoopWaker:
    """Resolves asyncio futures of one event loop from the committer thread, one wake-up per batch.

    A group commit finishes many appends at once; waking the loop once for all of them (instead
    of once each) saves a system call and a thread switch per append.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._ready: list[asyncio.Future[None]] = []

    def resolve(self, future: asyncio.Future[None]) -> None:
        with self._lock:
            self._ready.append(future)
            if len(self._ready) > 1:
                return  # a wake-up is already on its way
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self.loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
        for future in ready:
            if not future.done():
                future.set_result(None)
