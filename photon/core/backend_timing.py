"""Timing a backend's appends and reads, for metrics (`photon.core.metrics`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from photon.core.backend import Backend, Query
from photon.core.events import RecordedEvent


def time_backend(backend: Backend, on_append: Callable[[float, int], None], on_read: Callable[[float], None]) -> None:
    """Have every append of `backend` (seconds, events) and read (seconds) reported: wraps the object once."""
    append, read = backend.append, backend.read

    def timed_append(events: Sequence[RecordedEvent]) -> None:
        started = time.perf_counter()
        try:
            append(events)
        finally:
            on_append(time.perf_counter() - started, len(events))

    def timed_read(query: Query) -> list[RecordedEvent]:
        started = time.perf_counter()
        try:
            return read(query)
        finally:
            on_read(time.perf_counter() - started)

    backend.append = timed_append  # type: ignore[method-assign]
    backend.read = timed_read  # type: ignore[method-assign]
