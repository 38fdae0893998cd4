"""Worker processes seen from the manager: start, talk, kill.

Each worker has one duplex pipe, carrying the messages of `photon.projections.messages`,
read and written by the event loop (`photon.projections.worker_pipe`). Workers come from
the ``forkserver`` context (``spawn`` where there is none): the manager runs threads (the
store's writer, the HTTP server), which plain ``fork`` must not copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from photon.core.backend import backend_modules
from photon.projections import worker as worker_module
from photon.projections.messages import FromWorker, Stop, ToWorker
from photon.projections.worker_pipe import WorkerPipe

log = logging.getLogger("photon.projections")

_context: Any = None
#: What the fork server imports before it forks a worker, so that no worker imports it again.
#: Not Hy: importing it patches runpy, and a child re-runs the parent's main script (e.g.
#: bin/photon) through runpy.
_preload: list[str] = ["photon.projections.worker", "photon.projections.messages", "orjson"]


def context() -> Any:
    global _context
    if _context is None:
        methods = multiprocessing.get_all_start_methods()
        _context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            _context.set_forkserver_preload(list(_preload))
    return _context


def store_modules(backend: Any) -> list[str]:
    """What a worker imports to open the store of `backend`: Photon's store, the backend's module,
    every installed backend's module (opening a store reads its settings from all of them: 0.05 s
    of a worker's CPU at each start when each worker imported them itself), and the drivers the
    backend uses that this process has loaded (a backend imports its driver at open)."""
    names = ["photon.core.store", type(backend).__module__, *backend_modules()]
    names += [name for name in (backend.driver, "sqlalchemy") if name and name in sys.modules]
    # SQLAlchemy imports a database's dialect when an engine is first made for it.
    names += sorted(name for name in sys.modules if name.startswith("sqlalchemy.dialects."))
    return names


def preloaded() -> list[str]:
    """The modules the fork server imports before forking a worker."""
    return list(_preload)


def preload(modules: Iterable[str]) -> None:
    """Have the fork server import `modules` too, so that workers fork with them loaded.

    For the store's backend and its driver: a worker that reads the store imported them itself
    at every start, about 0.15 s of CPU each (SQLAlchemy alone), in the time a start-up refold
    is measured by. Takes effect when the fork server starts (with the first worker or check).
    """
    added = [name for name in modules if name not in _preload]
    if not added:
        return
    _preload.extend(added)
    ctx = context()
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(list(_preload))


class WorkerHandle:
    """One worker process and its pipe, and the projections (slots) it holds. Made in the
    loop's thread; `on_message` and `on_exit` are called there.

    How much is sent to it and not yet answered is the feed's business (`photon.projections.feed`).
    """

    def __init__(
        self,
        index: int,
        store_config: Mapping[str, Any] | None,
        on_message: Callable[[WorkerHandle, FromWorker], None],
        on_exit: Callable[[WorkerHandle], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        ctx = context()
        self.index = index
        self.loop = loop
        self.progress = ctx.RawArray("q", 2)
        self.progress[0] = worker_module.IDLE
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=worker_module.main,
            args=(child, self.progress, store_config),
            name=f"photon-projections-{index}",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.alive = True
        self.reads_store = False
        self.ready = asyncio.Event()
        self.slots: set[int] = set()
        self.replaced = False
        self.cpu_ns = 0
        """The worker's CPU time (ns) at its last answer to a batch (`Folded.cpu_ns`)."""
        self.cpu_at = 0.0
        """When that answer came (the loop's time)."""
        self._on_message = on_message
        self._on_exit = on_exit
        self._pipe = WorkerPipe(self.conn, loop, self._received, self._pipe_closed)

    @property
    def pid(self) -> int | None:
        pid: int | None = self.process.pid
        return pid

    def send(self, message: ToWorker) -> None:
        if self.alive:
            self._pipe.send(message)

    def _received(self, message: FromWorker) -> None:
        self._on_message(self, message)

    def _pipe_closed(self) -> None:
        # The worker's end closed: it exited or is exiting. Its exit code is known once it is
        # joined, which may take a moment: not in the loop's thread.
        threading.Thread(target=self._reap, name=f"{self.process.name}-exit", daemon=True).start()

    def _reap(self) -> None:
        self.process.join()
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self.loop.call_soon_threadsafe(self._on_exit, self)

    def kill(self) -> None:
        """Stop the process at once (a stuck reduction cannot be interrupted any other way). In
        the loop's thread."""
        self.alive = False
        self._pipe.discard()
        if self.process.is_alive():
            self.process.kill()

    def close(self, timeout: float = 5.0) -> None:
        """Ask the worker to stop (sent after everything queued); kill it if it does not."""
        self.send(Stop())
        self._pipe.flush(timeout)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1)
        self.alive = False
        self._pipe.close_soon()
