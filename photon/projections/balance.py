"""Which worker each projection runs on, weighed by what it costs while it runs live.

A worker decodes every event it is sent once, however many of its projections fold it: that
cost is paid again by every worker that holds projections of the same events. Projections are
spread over the pool by count when they start (`Supervisor.pick`), which is what a start-up
refold wants (the workers read the store side by side on otherwise idle cores). Live, the store's
writers want the cores too: 4 simple projections of `__all__` spread over 2 workers ran at 0.83x
to 0.90x the rate of the same on 1 (`benchmarks.projections`, live), each event decoded twice on
the 2 cores the appends ran on, while the one worker had used a quarter of a core.

So the manager weighs its projections over windows of live folding (`Balancer`), and `plan`
decides from one window:

- a worker's *load* is the share of a core it used (its CPU, reported with each batch it answers);
- a projection's *cost* is its folding per event of the store (`Report.fold_ns`); a worker's
  *overhead* is its CPU per event beyond folding (decoding, its pipe, its reports).

Projections spread over workers none of which is busy go to as few as keep the busiest under
`PACK_LOAD` of a core: the others stop decoding events nobody needed them to. A busy worker
(over `SPREAD_LOAD` of a core) has its projections spread while it is worth it: a k+1-th
worker takes F/(k(k+1)) of their folding F (per event) off the busiest and costs one overhead
o more, so it is used while F/(k(k+1)) > o. Heavy reductions spread; cheap ones stay together.

Moves are made only from a whole window of live folding (every projection caught up, none
moved or added, no worker replaced or behind the live feed) and only when they change the
number of workers used or take `GAIN` off the busiest worker's cost. A moved projection resumes
on its new worker from its last reported state and catches up to what that worker has been sent,
as after a worker's replacement (`Balancer.move`). A projection whose state is large
(`PINNED_STATE` bytes of JSON and more, as the built-in `__streams__` at many streams) stays
where it is: handing it over would cost more than any window could gain.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from photon.projections.feed import Feed
from photon.projections.messages import Remove
from photon.projections.pool import WorkerHandle
from photon.projections.registry import Projection, Registry, Status

log = logging.getLogger("photon.projections")

TICK = 0.05
"""Seconds between two looks at the pool."""
MIN_EVENTS = 5_000
"""Events of the store a window must hold: fewer measure the costs too coarsely."""
MIN_SECONDS = 0.1
"""Seconds a window must last, so that each worker has answered several batches in it."""
PACK_LOAD = 0.5
"""The share of a core under which the projections of idle workers are packed onto fewer."""
SPREAD_LOAD = 0.75
"""The share of a core over which a worker is busy, and its projections worth spreading."""
GAIN = 0.2
"""The share of the busiest worker's cost that moves between as many workers must take off."""
PINNED_STATE = 1 << 20
"""Bytes of state JSON from which a projection is not moved."""


@dataclass(frozen=True)
class Window:
    """What one window of live folding measured."""

    seconds: float
    events: int
    """Events of the store fed to the workers in the window."""
    cpu: dict[int, float]
    """Each worker's CPU seconds in the window, by worker index."""
    cpu_seconds: dict[int, float]
    """The wall seconds each worker's CPU was measured over (between its two readings)."""
    fold: dict[int, float]
    """Each projection's folding in the window, in seconds, by slot."""
    where: dict[int, int]
    """Each projection's worker index, by slot."""
    pinned: frozenset[int]
    """The slots that stay where they are."""
    workers: tuple[int, ...]
    """The indexes of the live workers."""


def plan(window: Window) -> dict[int, int]:
    """The moves the window calls for (slot: worker index); empty when none is worth making."""
    if window.events <= 0 or len(window.workers) < 2 or not window.where:
        return {}
    used = sorted(set(window.where.values()))
    if any(index not in window.cpu for index in used):
        return {}
    cost = {slot: window.fold.get(slot, 0.0) / window.events for slot in window.where}
    held = {index: sum(c for slot, c in cost.items() if window.where[slot] == index) for index in used}
    overhead = max(max(0.0, window.cpu[index] / window.events - held[index]) for index in used)
    rate = window.events / window.seconds
    total = sum(cost.values())
    busiest = max(window.cpu[index] / max(window.cpu_seconds[index], 1e-9) for index in used)
    # The workers that must stay in use: those holding a projection that does not move.
    anchored = sorted({window.where[slot] for slot in window.pinned if slot in window.where})
    most = min(len(window.workers), len(cost))
    if busiest > SPREAD_LOAD:
        count = 1
        while count < most and total / (count * (count + 1)) > overhead:
            count += 1
        count = max(count, len(used))  # a busy pool is not packed tighter
    else:
        count = 1
        while count < len(used) and rate * (overhead + total / count) > PACK_LOAD:
            count += 1
        if count >= len(used):
            return {}  # not busy, and packing tighter would make a worker busy: as it is
    count = max(count, len(anchored))
    # The workers to use: those anchored, then those folding most now, then idle ones.
    ranked = anchored + sorted((i for i in used if i not in anchored), key=lambda i: (-held[i], i))
    ranked += [i for i in window.workers if i not in ranked]
    bins = {index: 0.0 for index in ranked[:count]}
    target: dict[int, int] = {}
    for slot in sorted(cost, key=lambda s: (s not in window.pinned, -cost[s], s)):
        current = window.where[slot]
        if slot in window.pinned:
            choice = current
        else:
            least = min(bins.values())
            # Longest first, each to the least loaded; where it is, when that is about as good.
            if current in bins and bins[current] <= least + 0.05 * total:
                choice = current
            else:
                choice = min(bins, key=lambda i: (bins[i], i))
        bins[choice] += cost[slot]
        target[slot] = choice
    moves = {slot: index for slot, index in target.items() if index != window.where[slot]}
    if not moves:
        return {}
    now = max(overhead + held[index] for index in used)
    after = max(overhead + load for load in bins.values() if load > 0) if total > 0 else overhead
    if count == len(used) and after > (1 - GAIN) * now:
        return {}
    return moves


@dataclass(frozen=True)
class _Mark:
    """The pool at one moment: a window runs between two marks of the same arrangement."""

    at: float
    position: int
    resyncs: int
    replaced: int
    arrangement: tuple[tuple[int, int, int], ...]
    """(slot, worker index, catch-up target) of every projection on a worker."""
    fold: dict[int, int]
    cpu: dict[int, tuple[int, float]]
    """Each worker's last CPU reading (ns) and when it came (loop time), by index."""
    pinned: frozenset[int]


class Balancer:
    """Looks at the pool every `TICK` and moves projections as `plan` says."""

    def __init__(self, registry: Registry, feed: Feed, replaced: Callable[[], int]) -> None:
        self.registry = registry
        self.feed = feed
        self.workers = feed.workers
        self._replaced = replaced
        self.moves = 0
        """How many projections were moved between workers."""

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        start: _Mark | None = None
        while True:
            await asyncio.sleep(TICK)
            mark = self._mark(loop.time())
            if mark is None or start is None or not _same(start, mark):
                start = mark
                continue
            if mark.position - start.position < MIN_EVENTS or mark.at - start.at < MIN_SECONDS:
                continue
            window, start = _window(start, mark), mark
            try:
                moves = plan(window)
                if moves:
                    log.info("projections moved between workers by their measured cost (slot: worker): %s", moves)
                    await self.move(moves)
                    start = None
            except Exception:
                # The projections fold on where they are: balancing is an optimisation, not a duty.
                log.exception("the projections' balancing failed; left where they are")
                start = None

    async def move(self, moves: dict[int, int]) -> None:
        """Move projections (slot: worker index) to other workers, each resuming there from its
        last reported state: the old worker drops it (the manager applies only the reports of a
        projection's own worker), the new one takes it and catches up to what it has been sent
        before its next live batch (`Feed.assign`)."""
        taking: dict[WorkerHandle, list[Projection]] = {}
        for slot, index in moves.items():
            projection = self.registry.by_slot.get(slot)
            to = self.workers[index]
            old = projection.worker if projection is not None else None
            if projection is None or old is None or old is to or not to.alive:
                continue
            if projection.status is not Status.RUNNING:
                continue
            old.slots.discard(slot)
            if old.alive:
                old.send(Remove(slot))
            projection.worker = to
            to.slots.add(slot)
            taking.setdefault(to, []).append(projection)
            self.moves += 1
        for to, projections in taking.items():
            await self.feed.assign(to, [p for p in projections if p.worker is to and self.registry.is_current(p)])

    def _mark(self, now: float) -> _Mark | None:
        """The pool now, or None while it is not folding live (something is catching up)."""
        if self.feed.lagging():
            return None
        arrangement = []
        fold = {}
        pinned = set()
        for projection in self.registry.by_slot.values():
            w = projection.worker
            if w is None or not projection.status.on_worker:
                continue
            if projection.status is not Status.RUNNING or projection.position < projection.catch_up_target:
                return None
            arrangement.append((projection.slot, w.index, projection.catch_up_target))
            fold[projection.slot] = projection.fold_ns
            if len(projection.state_json) >= PINNED_STATE:
                pinned.add(projection.slot)
        cpu = {w.index: (w.cpu_ns, w.cpu_at) for w in self.workers if w.alive}
        return _Mark(
            now,
            self.feed.position,
            self.feed.resyncs,
            self._replaced(),
            tuple(sorted(arrangement)),
            fold,
            cpu,
            frozenset(pinned),
        )


def _same(a: _Mark, b: _Mark) -> bool:
    """Whether nothing but folding happened between two marks."""
    return (
        a.arrangement == b.arrangement
        and a.resyncs == b.resyncs
        and a.replaced == b.replaced
        and a.cpu.keys() == b.cpu.keys()
    )


def _window(start: _Mark, end: _Mark) -> Window:
    cpu: dict[int, float] = {}
    cpu_seconds: dict[int, float] = {}
    for index, (ns, at) in end.cpu.items():
        was_ns, was_at = start.cpu[index]
        if at - was_at < MIN_SECONDS / 2:
            continue  # too few answers in the window to tell its load
        cpu[index] = (ns - was_ns) / 1e9
        cpu_seconds[index] = at - was_at
    return Window(
        seconds=end.at - start.at,
        events=end.position - start.position,
        cpu=cpu,
        cpu_seconds=cpu_seconds,
        fold={slot: (ns - start.fold.get(slot, ns)) / 1e9 for slot, ns in end.fold.items()},
        where={slot: index for slot, index, _ in end.arrangement},
        pinned=end.pinned,
        workers=tuple(sorted(end.cpu)),
    )
