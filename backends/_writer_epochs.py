"""Writer epochs: which event copies in the cassandra backend's read index a reader may trust.

The cassandra backend writes a batch's rows before its commit point (the head) moves, so a batch
that never committed can leave rows behind, and the next batch gives its order-ids to other
events. An index row that carries a copy of its event is trusted without looking at
``events_all`` only if no such batch can have written it. Each stretch of appends without a
failure is an epoch: a writer claims a new epoch (numbered by the head's lightweight
transaction) when it opens the store and after any append that failed, and stamps every index
row it writes with it. Epoch ``e`` begins at ``start(e)``, the head when it was claimed, and
its writer never wrote below that. So a row of epoch ``e`` at order-id ``o`` (at or below the
head) is one a committed batch wrote if no later epoch began before ``o``; otherwise it may be
the leftover of a failed batch, and the reader checks it against ``events_all`` as before.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from typing import NamedTuple


class Epoch(NamedTuple):
    number: int
    start: int  # the head when the epoch was claimed: its rows lie above it
    writer: str  # the writer token that claimed it


class WriterEpochs:
    """The recorded epochs (``writer_epochs``), as last loaded; immutable snapshots, so readers
    on several threads share it without a lock."""

    def __init__(self) -> None:
        self._numbers: list[int] = []
        self._epochs: list[Epoch] = []
        self._claimed_after: list[int | None] = []

    def load(self, epochs: Iterable[Epoch]) -> None:
        ordered = sorted(epochs)
        # For each epoch, the start of the next epoch a writer claimed (a marker's start is not a head).
        claimed_after: list[int | None] = [None] * len(ordered)
        following: int | None = None
        for at in range(len(ordered) - 1, -1, -1):
            claimed_after[at] = following
            if ordered[at].writer:
                following = ordered[at].start
        self._epochs, self._numbers, self._claimed_after = ordered, [e.number for e in ordered], claimed_after

    def left_over(self, order_id: int, epoch: int | None) -> bool:
        """Whether a key's part that epoch `epoch` began at `order_id` was begun by a batch that
        never committed, proven by a later claimed epoch beginning below it: a committed batch's
        order-ids are at or below the head any later claim saw. Used for ``key_index_parts``
        rows, which have no ``events_all`` row to be checked against: unproven parts are kept."""
        if epoch is None:
            return False
        at = bisect.bisect_left(self._numbers, epoch)
        if at == len(self._numbers) or self._numbers[at] != epoch:
            return False
        start = self._claimed_after[at]
        return start is not None and order_id > start

    def stale(self, head_epoch: int | None) -> bool:
        """Whether the head names an epoch newer than any loaded (load them again first)."""
        return head_epoch is not None and (not self._numbers or head_epoch > self._numbers[-1])

    def judge(self, head_epoch: int | None, head_writer: str | None) -> Callable[[int, int | None], bool]:
        """For the head just read (its epoch and writer, loaded after it): whether a row of an
        epoch at an order-id at or below that head was written by a committed batch."""
        numbers, epochs = self._numbers, self._epochs

        def latest_trusted(epoch: Epoch) -> bool:
            # A newer epoch claimed but not recorded yet (a moment, or a writer that died before
            # recording it), or a head writer that is not the one that claimed the epoch (a
            # writer that keeps no epochs took the store over and may have reused this epoch's
            # order-ids): this epoch's rows are checked against events_all.
            return head_epoch == epoch.number and epoch.writer == head_writer

        last_ok = latest_trusted(epochs[-1]) if epochs else False

        def trusted(order_id: int, epoch: int | None) -> bool:
            if epoch is None:
                return False  # written before copies had epochs: checked against events_all
            at = bisect.bisect_left(numbers, epoch)
            if at == len(numbers) or numbers[at] != epoch:
                return False
            if at + 1 < len(numbers):
                return order_id <= epochs[at + 1].start
            return last_ok

        return trusted
