"""Giving memory back to the system after a large reader leaves.

CPython frees an event's bytes into the C allocator, and glibc's malloc keeps freed memory
in its heaps, so a server that held a few hundred MB for a reader keeps that RSS after the
reader is gone. `give_back` asks glibc to return free heap pages (`malloc_trim`), at most
once a second, from a thread of its own (a trim of a large heap takes milliseconds). Where
the C library is not glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from typing import Any

log = logging.getLogger("photon.memory")

MIN_INTERVAL = 1.0

_lock = threading.Lock()
_pending = False
_requests = 0
_trim: Any = None


def _load() -> Any:
    global _trim
    if _trim is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _trim = libc.malloc_trim
            _trim.argtypes = [ctypes.c_size_t]
            _trim.restype = ctypes.c_int
        except (OSError, AttributeError):
            _trim = False
    return _trim


def give_back() -> None:
    """Soon return freed heap memory to the system (coalesced: at most one trim a second, and
    always one after the last request)."""
    global _pending, _requests
    if not _load():
        return
    with _lock:
        _requests += 1
        if _pending:
            return
        _pending = True
    timer = threading.Timer(MIN_INTERVAL, _run)
    timer.daemon = True
    timer.start()


def _run() -> None:
    global _pending
    while True:
        with _lock:
            seen = _requests
        try:
            _trim(0)
        except Exception:  # never let housekeeping hurt the server
            log.debug("malloc_trim failed", exc_info=True)
        with _lock:
            if _requests == seen:
                _pending = False
                return
        time.sleep(MIN_INTERVAL)  # more was freed meanwhile: trim once more
