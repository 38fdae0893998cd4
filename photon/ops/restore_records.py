"""Reading a backup for a restore: every line checked against the store (or read quickly while another
process checks it), counted as it goes.

A check runs against a snapshot of the store taken when the reading starts, and carries the
store's write generation at that moment (`ImportSnapshot`), so the writer can skip checking the
same events again when nothing else was written since.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from photon.core.events import CONFIG_STREAM, RecordedEvent
from photon.core.gc_pause import cycle_collection_paused
from photon.core.positioned import Continuity
from photon.core.positioned_import import ImportSnapshot
from photon.ops.backup_parse import decode_columns, parse_line, record_of

if TYPE_CHECKING:
    from photon.core.store import EventStore

POLL_LINES = 20_000
"""A quick read asks the checker for its verdict every this many lines."""


@dataclass
class BackupSummary:
    """What a checked backup holds."""

    events: int = 0
    skipped: int = 0
    """Blank and marker lines."""
    lines: int = 0
    first_order_id: int | None = None
    last_order_id: int | None = None


def check_backup(
    lines: Iterable[bytes],
    store: EventStore,
    *,
    on_event: Callable[[int], object] | None = None,
) -> BackupSummary:
    """Read a whole backup and check every line against the store, writing nothing.

    Memory grows with the number of streams, not of events. Raises `BackupFormatError` (or
    `RestoreConflict`) naming the first bad line.
    """
    summary = BackupSummary()
    with cycle_collection_paused():
        for _record in checked_records(lines, store, summary, on_event=on_event):
            pass
    return summary


class CheckedRecords(ImportSnapshot):
    """The backup's events, each checked as `check_backup` checks it (line numbers in errors),
    counted into `summary` as they go: one pass that reads, checks and feeds the writer.

    The check runs against a snapshot of the store taken when the iteration starts. Along with
    it goes the store's write generation at that moment: the writer compares it with its own,
    and when nothing else was written in between (the usual case) it skips checking the same
    events a second time.
    """

    def __init__(
        self,
        lines: Iterable[bytes],
        store: EventStore | None,
        summary: BackupSummary,
        *,
        on_event: Callable[[int], object] | None = None,
    ) -> None:
        """With `store` None the check is against an empty store."""
        self.lines = lines
        self.store = store
        self.summary = summary
        self.on_event = on_event

    def __iter__(self) -> Iterator[RecordedEvent]:
        store = self.store
        if store is None:
            return self._check(Continuity(0, {}))
        # Read before the snapshot: a write that lands while it is taken moves the generation.
        self.take_generation(store)
        versions = {info.stream_name: info.total_events for info in store.streams()}
        return self._check(Continuity(store.last_order_id(), versions))

    def _check(self, continuity: Continuity) -> Iterator[RecordedEvent]:
        summary, on_event, versions = self.summary, self.on_event, continuity.versions
        last = continuity.last_order_id
        events = skipped = tick = number = 0
        first: int | None = None
        try:
            # The common case is checked inline; Continuity.check handles (and names) the rest.
            for number, line in enumerate(self.lines, start=1):
                record = parse_line(line, number)
                if record is None:
                    skipped += 1
                    continue
                order_id, stream, version = record[0], record[1], record[2]
                if order_id > last and version == versions.get(stream, 0) + 1 and stream != CONFIG_STREAM:
                    versions[stream] = version
                else:
                    continuity.last_order_id, continuity.accepted = last, events
                    continuity.check(record, number)
                last = order_id
                if first is None:
                    first = order_id
                events += 1
                if on_event is not None:
                    tick += 1
                    if tick >= 10_000:
                        on_event(tick)
                        tick = 0
                yield record
            if on_event is not None and tick:
                on_event(tick)
        finally:
            summary.lines, summary.events, summary.skipped = number, events, skipped
            if first is not None:
                summary.first_order_id, summary.last_order_id = first, last


class UncheckedRecords(ImportSnapshot):
    """A backup's events, read without the checks (a `Checker` process makes them at the same time).

    Only what the store's columns need is taken from each line (`Columns`: the payload is not
    even decoded); a line that does not give that stops the read, and the checker names the
    first bad line. Every `POLL_LINES` lines it asks the checker whether it found a bad line
    already, so a load of a bad file stops early.
    """

    def __init__(self, lines: Iterable[bytes], store: EventStore, poll: Callable[[], None]) -> None:
        """`poll` raises the checker's error once it found one."""
        self.lines = lines
        self.store = store
        self.poll = poll

    def __iter__(self) -> Iterator[RecordedEvent]:
        self.take_generation(self.store)  # the store is empty: the checker's snapshot
        return self._read()

    def _read(self) -> Iterator[RecordedEvent]:
        decode, record, poll = decode_columns, record_of, self.poll
        for number, line in enumerate(self.lines, start=1):
            try:
                c = decode(line)
            except msgspec.DecodeError:
                # Not the usual shape (a blank or marker line, a value of another type): read and
                # checked in full; a line that is not an event raises (and the checker's error
                # then names the file's first bad line).
                parsed = parse_line(line, number)
                if parsed is not None:
                    yield parsed
            else:
                row = (c.order_id, c.stream_name, c.stream_version, c.id, c.event_type, c.event_time, line.strip())
                yield record(row)
            if not number % POLL_LINES:
                poll()


def checked_records(
    lines: Iterable[bytes],
    store: EventStore,
    summary: BackupSummary,
    *,
    on_event: Callable[[int], object] | None = None,
) -> CheckedRecords:
    """The backup's events, each checked (see `CheckedRecords`)."""
    return CheckedRecords(lines, store, summary, on_event=on_event)
