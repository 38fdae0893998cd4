"""The projection workers' life: started, watched, replaced when they die, stopped.

A worker that exits is replaced by a new one at the same index, which takes its projections:
they resume from their last reported state (workers that keep dying are replaced ever more
slowly). The watchdog kills a worker whose reduction has been on one event for longer than
`projections.timeout` (a stuck reduction cannot be interrupted any other way); the projection
is failed first, so its replacement does not run it again. A worker that dies while a reduction
folds an event is replaced and the projection resumes (the death may have had another cause); one
that dies again in the same projection on the same event fails that projection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from photon.projections import worker as worker_module
from photon.projections.messages import FromWorker, Stop
from photon.projections.pool import WorkerHandle

log = logging.getLogger("photon.projections")

Adopted = TypeVar("Adopted")

READY_SECONDS = 60
STOP_SECONDS = 10


class Supervisor(Generic[Adopted]):
    """Runs `count` workers. `adopt(old, new)` is called as soon as `new` replaces the dead `old`
    (it moves the projections, and returns them), `resume(new, adopted)` once `new` is ready to
    take them."""

    def __init__(
        self,
        count: int,
        store_config: Mapping[str, Any] | None,
        timeout: float,
        on_message: Callable[[WorkerHandle, FromWorker], None],
        adopt: Callable[[WorkerHandle, WorkerHandle], Adopted],
        resume: Callable[[WorkerHandle, Adopted], Awaitable[None]],
        culprit: Callable[[int, int, str | None], None],
    ) -> None:
        self.count = count
        self.store_config = store_config
        self.timeout = timeout
        self.on_message = on_message
        self.adopt = adopt
        self.resume = resume
        self.culprit = culprit
        """Fails a projection: (slot, order-id, why), why None for a reduction past the time limit."""
        self._last_death: tuple[int, int] | None = None
        """The projection (slot) and order-id a worker last died folding."""
        self.workers: list[WorkerHandle] = []
        """The workers, by index; a replacement takes its predecessor's place in this list."""
        self.stopping = False
        self.replaced_workers = 0
        self._deaths: list[float] = []
        self._stopped: dict[WorkerHandle, asyncio.Future[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Start every worker and wait until each is ready."""
        self._loop = asyncio.get_running_loop()
        self.workers[:] = [self._spawn(index) for index in range(self.count)]
        try:
            await asyncio.gather(*(self._wait_ready(w) for w in self.workers))
        except BaseException:
            self.stopping = True
            for w in self.workers:
                w.kill()
            raise

    def _spawn(self, index: int) -> WorkerHandle:
        assert self._loop is not None
        return WorkerHandle(index, self.store_config, self.on_message, self.lost, self._loop)

    async def _wait_ready(self, w: WorkerHandle) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while not w.ready.is_set():
            if not w.process.is_alive() and not w.ready.is_set():
                raise RuntimeError(f"projection worker {w.index} exited at start (exit code {w.process.exitcode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"projection worker {w.index} did not start within {READY_SECONDS} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(w.ready.wait(), timeout=0.1)

    def pick(self) -> WorkerHandle:
        """The worker to take a new projection: the one holding fewest."""
        # A dead worker's projections move to its replacement, so it may be picked too.
        alive = [w for w in self.workers if w.alive] or self.workers
        return min(alive, key=lambda w: len(w.slots))

    def lost(self, w: WorkerHandle) -> None:
        """A worker exited (or was killed): replace it, unless the pool is stopping."""
        if self.stopping or w.replaced or w not in self.workers:
            return
        w.replaced = True
        w.alive = False
        log.warning("projection worker %d (pid %s) exited; starting a replacement", w.index, w.pid)
        folding = (int(w.progress[0]), int(w.progress[1]))  # shared memory: still there after its death
        if folding[0] != worker_module.IDLE:
            if folding == self._last_death:
                code = w.process.exitcode
                self.culprit(
                    *folding, f"its worker process exited{'' if code is None else f' (exit code {code})'} twice"
                )
            self._last_death = folding
        asyncio.get_running_loop().create_task(self._replace(w))

    async def _replace(self, old: WorkerHandle) -> None:
        """Start a new worker in place of a dead one; its projections resume from their last state."""
        if self.stopping:
            return
        self.replaced_workers += 1
        # Back off when workers keep dying (a reduction that kills its process at every start).
        recent = [t for t in self._deaths if time.monotonic() - t < 60]
        self._deaths = [*recent, time.monotonic()]
        if len(recent) >= 3:
            await asyncio.sleep(min(30.0, 0.5 * 2 ** (len(recent) - 3)))
            if self.stopping:
                return
        new = self._spawn(old.index)
        self.workers[self.workers.index(old)] = new
        adopted = self.adopt(old, new)
        try:
            await self._wait_ready(new)
        except RuntimeError as exc:
            log.error("%s", exc)
            return  # its own exit starts the next replacement, which takes these projections
        await self.resume(new, adopted)

    async def watchdog(self) -> None:
        """Kill a worker whose reduction has been on one event for longer than the time limit,
        calling `culprit(slot, order-id, None)` first (order-id 0: while loading the definition)."""
        interval = min(max(self.timeout / 4, 0.05), 1.0)
        seen: dict[WorkerHandle, tuple[tuple[int, int], float]] = {}
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for w in list(self.workers):
                if not w.alive:
                    continue
                progress = (w.progress[0], w.progress[1])
                last, since = seen.get(w, ((worker_module.IDLE, 0), now))
                if progress != last:
                    seen[w] = (progress, now)
                    continue
                slot, order_id = progress
                if slot == worker_module.IDLE or now - since <= self.timeout:
                    continue
                self.culprit(slot, order_id, None)
                w.kill()
                self.lost(w)
            for w in [w for w in seen if w not in self.workers]:
                del seen[w]

    def stopped(self, w: WorkerHandle) -> None:
        """A worker answered `Stop` (its final reports have been taken)."""
        future = self._stopped.get(w)
        if future is not None and not future.done():
            future.set_result(None)

    async def stop(self) -> None:
        """Ask every worker for its final reports, then stop them all (killing those that hang)."""
        self.stopping = True
        loop = asyncio.get_running_loop()
        for w in self.workers:
            if w.alive:
                self._stopped[w] = loop.create_future()
                w.send(Stop())
        waits = [f for f in self._stopped.values() if not f.done()]
        if waits:
            await asyncio.wait(waits, timeout=STOP_SECONDS)
        await asyncio.gather(*(asyncio.to_thread(w.close, 2.0) for w in self.workers))
