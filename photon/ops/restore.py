"""Restore: load a backup (JSON lines of stored events) into a store, keeping every position.

A backup is what a cold replay of `__all__` prints: one stored event per line, exactly the
event's stored JSON (`RecordedEvent.data`), with its `id`, `order-id`, `stream-version` and
`event-time`. Restoring writes those events as they are, so consumers' positions (order-ids),
idempotency (ids) and projections (the `__config__` events, which are in `__all__`) stay valid.

What is checked, for every event, against the store and the lines before it:

- order-ids strictly increase, and the first is after the store's last order-id. Holes are
  allowed: a deleted stream's order-ids are never reused, so a backup of a store that deleted
  a stream skips them.
- stream-versions increase in each stream (1, 2, 3... for a new stream; past the store's version
  for an incremental backup). They may skip: a scavenge removes a stream's expired and truncated
  events, so a backup taken after it starts such a stream past version 1. A `__config__`
  `stream-deleted` event written by an earlier Photon (without a `mode`) ends its stream: the
  stream's next event is version 1 again, and when the store holds that stream (an incremental
  restore), the stream is deleted there too at that point, as in the source. Deletions of this
  Photon are soft or hard (`mode`), kept in `__metadata__`, and restored as they are.

Lines that are not events at all (a JSON object with neither `stream-name` nor `event-type`,
such as a replay's caught-up marker) and blank lines are skipped.

Writes go through the store's single writer thread in large batches, between the commits of
any concurrent appends, so the committer's positions stay right and subscribers see the
restored events like any others.

A file restored into an empty store whose backend can undo a bulk load (`restore_file`,
`photon restore`) is checked in a second process while this one loads it (`load_verified`):
the load succeeds only if the check does, and a failed check empties the store again.
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import orjson

from photon.core.errors import PhotonError, ValidationError
from photon.core.events import ALL_STREAM, CONFIG_STREAM, RecordedEvent
from photon.ops.backup_files import backup_lines, reading

if TYPE_CHECKING:
    from photon.core.store import EventStore, _Committer

log = logging.getLogger("photon.restore")
STREAM_DELETED = "stream-deleted"
# Builds a RecordedEvent from a tuple without NamedTuple's keyword handling (the hot path).
_record = partial(tuple.__new__, RecordedEvent)
BATCH_SIZE = 20_000


class BackupFormatError(ValidationError):
    """A backup line is not a stored event, or breaks the order of the lines before it."""

    def __init__(self, line: int | None, message: str, field: str | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message, field)
        self.line = line
        self.reason = message


class RestoreConflict(PhotonError):
    """The backup does not follow what the store already holds (a restore into a non-empty store)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


_FIELDS = ("order-id", "stream-name", "stream-version", "id", "event-type", "event-time", "payload")
_fields = itemgetter(*_FIELDS)


def parse_line(line: bytes, number: int | None = None) -> RecordedEvent | None:
    """One backup line as a stored event; None for a blank or marker line.

    The event keeps the line's own bytes as its stored JSON, so nothing is encoded again.
    """
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if not line.strip():
            return None
        raise BackupFormatError(number, f"not valid JSON ({exc})") from None
    if type(item) is not dict:
        raise BackupFormatError(number, f"expected a JSON object (a stored event), got {_type_name(item)}")
    try:
        order_id, stream, version, event_id, event_type, event_time, payload = _fields(item)
    except KeyError:
        if "stream-name" not in item and "event-type" not in item:
            return None  # a marker (e.g. a replay's caught-up line), not an event
        missing = next(name for name in _FIELDS if name not in item)
        raise BackupFormatError(number, f"missing field {missing!r} (not a stored event)", missing) from None
    # One test for the common case; the field-by-field checks below only run to name a fault.
    if not (
        type(order_id) is int
        and order_id > 0
        and type(version) is int
        and version > 0
        and type(stream) is str
        and stream
        and stream != ALL_STREAM
        and type(event_id) is str
        and event_id
        and type(event_type) is str
        and event_type
        and type(event_time) is int
        and event_time >= 0
        and type(payload) is dict
    ):
        _explain(number, order_id, stream, version, event_id, event_type, event_time, payload)
    if stream == CONFIG_STREAM and event_type == STREAM_DELETED:
        deleted = payload.get("stream-name")
        if type(deleted) is not str or not deleted:
            raise BackupFormatError(number, "a stream-deleted event must name its stream in payload.stream-name")
    return _record((order_id, stream, version, event_id, event_type, event_time, line.strip()))


def _explain(
    number: int | None,
    order_id: Any,
    stream: Any,
    version: Any,
    event_id: Any,
    event_type: Any,
    event_time: Any,
    payload: Any,
) -> None:
    """Raise the error naming the first field of a stored event that has a wrong value."""
    if type(order_id) is not int or order_id < 1:
        raise BackupFormatError(number, f"field 'order-id' must be a positive integer, got {order_id!r}", "order-id")
    if type(version) is not int or version < 1:
        raise BackupFormatError(
            number, f"field 'stream-version' must be a positive integer, got {version!r}", "stream-version"
        )
    if type(stream) is not str or not stream or stream == ALL_STREAM:
        raise BackupFormatError(number, f"field 'stream-name' must name a stream, got {stream!r}", "stream-name")
    if type(event_id) is not str or not event_id:
        raise BackupFormatError(number, f"field 'id' must be a non-empty string, got {event_id!r}", "id")
    if type(event_type) is not str or not event_type:
        raise BackupFormatError(
            number, f"field 'event-type' must be a non-empty string, got {event_type!r}", "event-type"
        )
    if type(event_time) is not int or event_time < 0:
        raise BackupFormatError(
            number, f"field 'event-time' must be a non-negative integer, got {event_time!r}", "event-time"
        )
    raise BackupFormatError(number, f"field 'payload' must be a JSON object, got {_type_name(payload)}", "payload")


def parse_lines(lines: Iterable[bytes]) -> Iterator[tuple[int, RecordedEvent]]:
    """The events of a backup with their line numbers (markers and blank lines skipped)."""
    for number, line in enumerate(lines, start=1):
        record = parse_line(line, number)
        if record is not None:
            yield number, record


def deleted_stream(record: RecordedEvent) -> str | None:
    """The stream a `__config__` stream-deleted event ends, else None."""
    if record.stream_name != CONFIG_STREAM or record.event_type != STREAM_DELETED:
        return None
    payload = orjson.loads(record.data)["payload"]
    if "mode" in payload:
        # A soft or hard delete (kept in `__metadata__`): the stream's numbering goes on, and
        # its events stay until a scavenge. Only the deletions of earlier Photons removed them.
        return None
    name = payload.get("stream-name")
    return name if isinstance(name, str) else None


class Continuity:
    """The ordering rule of a restore: order-ids increase, stream-versions continue each stream.

    `versions` holds the known current version of each stream and is updated as events are
    accepted; `lookup` is asked for streams it does not hold yet (missing ones are at 0).
    """

    def __init__(
        self,
        last_order_id: int,
        versions: dict[str, int],
        lookup: Callable[[Collection[str]], dict[str, int]] | None = None,
    ) -> None:
        self.store_last_order_id = last_order_id
        self.last_order_id = last_order_id
        self.versions = versions
        self.lookup = lookup
        self.accepted = 0

    def prefetch(self, records: Iterable[RecordedEvent]) -> None:
        """Fetch the versions of a batch's streams in one look-up."""
        versions = self.versions
        wanted = {r.stream_name for r in records} - versions.keys()
        if wanted and self.lookup is not None:
            found = self.lookup(wanted)
            for name in wanted:
                versions[name] = found.get(name, 0)

    def _current(self, stream: str) -> int:
        current = self.versions.get(stream)
        if current is None:
            current = self.lookup([stream]).get(stream, 0) if self.lookup is not None else 0
            self.versions[stream] = current
        return current

    def check(self, record: RecordedEvent, line: int | None = None) -> str | None:
        """Accept `record` or raise; returns a stream that must be deleted in the store before it.

        That is the stream a stream-deleted event ends, when the store holds events of it.
        """
        if record.order_id <= self.last_order_id:
            if self.accepted == 0 and self.store_last_order_id > 0:
                raise RestoreConflict(
                    line,
                    f"the store is not empty: it holds events up to order-id {self.store_last_order_id}; "
                    "restore into an empty store, or restore an incremental backup whose first order-id "
                    f"is after {self.store_last_order_id} (this one starts at order-id {record.order_id}"
                    + (f", line {line})" if line is not None else ")"),
                )
            raise BackupFormatError(
                line, f"order-id {record.order_id} does not follow order-id {self.last_order_id}", "order-id"
            )
        stream = record.stream_name
        current = self._current(stream)
        if record.stream_version <= current:
            # Versions may jump ahead (a scavenge removes expired and truncated events, leaving
            # gaps), but never repeat or go back.
            raise BackupFormatError(
                line,
                f"stream {stream!r}: stream-version {record.stream_version} does not follow version {current}",
                "stream-version",
            )
        self.versions[stream] = record.stream_version
        self.last_order_id = record.order_id
        self.accepted += 1
        ended = deleted_stream(record)
        if ended is None:
            return None
        had_events = self._current(ended) > 0
        self.versions[ended] = 0
        return ended if had_events else None


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


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a backup is read: it makes millions of small objects
    and no reference cycles, and each collection would scan the batch held so far again
    (measured: 15% of a restore's time). Process-wide; enabled again after, if it was before."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Checked:
    """What the writer knows of a batch's events before it checks them itself."""

    __slots__ = ("generation",)

    def __init__(self, generation: int | None) -> None:
        self.generation = generation
        """The write generation the events were checked against; None when they were not
        checked, or when something else wrote to the store since."""


def _write_batch(batch: list[RecordedEvent], first: bool, checked: _Checked, committer: _Committer) -> None:
    """Runs in the writer thread: check `batch` against the committed state and store it."""
    backend = committer.backend

    def flush(chunk: list[RecordedEvent]) -> None:
        if not chunk:
            return
        backend.append(chunk)
        committer.metadata.apply(chunk)  # stream metadata, deletions and tombstones restored
        committer.last_order_id = chunk[-1].order_id
        committer.commits += 1
        committer.committed_events += len(chunk)
        committer.broadcaster.publish(chunk)

    try:
        if checked.generation is not None and checked.generation == committer.generation:
            # Checked against the store as it still is: only the stream deletions need the writer.
            start = 0
            for index in [i for i, record in enumerate(batch) if record[1] == CONFIG_STREAM]:
                ended = deleted_stream(batch[index])
                if ended is not None:
                    flush(batch[start:index])
                    start = index
                    if backend.stream_versions([ended]).get(ended, 0) > 0:
                        backend.delete_stream(ended)
            flush(batch[start:])
            committer.versions.clear()  # a cache: refilled from the backend by the next commit
            checked.generation += 1  # this write's own step (see _Committer._run_action)
            return
        # Something else wrote since the events were checked (or they never were): check them
        # here, and from now on every batch of this import.
        checked.generation = None
        continuity = Continuity(committer.last_order_id, committer.versions, backend.stream_versions)
        if not first:
            continuity.accepted = 1  # an order problem past the first batch is the file's, not the store's
        continuity.prefetch(batch)
        start = 0
        for index, record in enumerate(batch):
            ended = continuity.check(record)
            if ended is not None:
                # As in the source: the stream's events go, then the deletion is recorded.
                flush(batch[start:index])
                start = index
                backend.delete_stream(ended)
        flush(batch[start:])
    except BaseException:
        # The cached versions may hold positions that were never stored: ask the backend again.
        checked.generation = None
        committer.versions.clear()
        committer.last_order_id = backend.last_order_id()
        raise


def import_events(
    store: EventStore,
    records: Iterable[RecordedEvent],
    *,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], object] | None = None,
) -> int:
    """Store events that already carry their positions, in batches through the writer thread.

    Each batch is checked (see `Continuity`) and written atomically; on an error the store holds
    exactly the batches before the one that failed. Returns the number of events stored.
    Events from `checked_records` were checked already: the writer checks them again only if
    something else wrote to the store since.

    Reading the next batch does not overlap with writing this one: the database driver takes
    the interpreter back after every row it inserts, and a thread parsing meanwhile makes
    those waits longer than the parsing it would hide (measured: overlapping was slower).
    """
    written = 0
    checked = _Checked(None)
    with cycle_collection_paused():
        iterator = iter(records)  # a CheckedRecords takes its snapshot (and generation) here
        if isinstance(records, _Snapshot):
            checked.generation = records.generation
        batch: list[RecordedEvent] = []
        for record in iterator:
            batch.append(record)
            if len(batch) >= batch_size:
                written += _submit(store, batch, written == 0, checked, on_batch)
                batch = []
        if batch:
            written += _submit(store, batch, written == 0, checked, on_batch)
    return written


def _submit(
    store: EventStore,
    batch: list[RecordedEvent],
    first: bool,
    checked: _Checked,
    on_batch: Callable[[int], object] | None,
) -> int:
    store._in_writer(partial(_write_batch, batch, first, checked))
    if on_batch is not None:
        on_batch(len(batch))
    return len(batch)


@contextmanager
def bulk_load(store: EventStore) -> Iterator[bool]:
    """Let the backend load faster when the store is empty.

    Yields True when a failure inside will leave the store empty again (the backend can undo a
    bulk load), False otherwise (a store that holds events, or a backend without bulk loading).
    """
    if not store.backend.bulk_load or store.last_order_id() != 0 or store.streams():
        yield False
        return

    def begin(committer: _Committer) -> bool:
        return bool(committer.backend.begin_bulk_load())

    def end(ok: bool, committer: _Committer) -> None:
        try:
            committer.backend.end_bulk_load(ok)
        finally:
            committer.versions.clear()
            committer.metadata.load(committer.backend)
            committer.last_order_id = committer.backend.last_order_id()
            # A failed load was emptied again: readers must not be told of events now gone.
            committer.broadcaster.head = committer.last_order_id

    undoable: bool = store._in_writer(begin)
    try:
        yield undoable
    except BaseException:
        store._in_writer(partial(end, False))
        raise
    store._in_writer(partial(end, True))


class _Snapshot:
    """Events checked (here or elsewhere) against the store as it was at one write generation."""

    generation: int | None = None
    """The store's write generation the check started from (None before it starts)."""

    def _take_generation(self, store: EventStore | None) -> None:
        committer = store._committer if store is not None else None
        self.generation = committer.generation if committer is not None else None


class CheckedRecords(_Snapshot):
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
        self._take_generation(store)
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


class UncheckedRecords(_Snapshot):
    """A backup's events, read without the checks (a `_Checker` makes them at the same time).

    Only what the store's columns need is taken from each line (`_Columns`: the payload is not
    even decoded); a line that does not give that stops the read, and the checker names the
    first bad line. Every `POLL_LINES` lines it asks the checker whether it found a bad line
    already, so a load of a bad file stops early.
    """

    def __init__(self, lines: Iterable[bytes], store: EventStore, checker: _Checker) -> None:
        self.lines = lines
        self.store = store
        self.checker = checker

    def __iter__(self) -> Iterator[RecordedEvent]:
        self._take_generation(self.store)  # the store is empty: the checker's snapshot
        return self._read()

    def _read(self) -> Iterator[RecordedEvent]:
        decode, record, poll = _decode_columns, _record, self.checker.poll
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


class _Columns(msgspec.Struct, gc=False):
    """The fields of a backup line that a row of the store needs, as `msgspec` decodes them:
    typed, other fields skipped unread. For valid JSON it reads the same values as `orjson`
    (which the check uses), duplicate keys included: the last one counts."""

    order_id: int = msgspec.field(name="order-id")
    stream_name: str = msgspec.field(name="stream-name")
    stream_version: int = msgspec.field(name="stream-version")
    id: str
    event_type: str = msgspec.field(name="event-type")
    event_time: int = msgspec.field(name="event-time")


_decode_columns = msgspec.json.Decoder(_Columns).decode


POLL_LINES = 20_000


class _Checker:
    """A second process that checks a backup file as `check_backup` does, against an empty store,
    while this one loads the file (see `load_verified`).

    It runs `python -m photon._restore_check FILE`, which prints one verdict: a new interpreter,
    not a fork of this one (which runs threads) nor multiprocessing's spawn (which imports the
    caller's main module again)."""

    def __init__(self, path: str | Path) -> None:
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "photon.ops.restore_check", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=env,
        )
        self._verdict: list[Any] | None = None

    def poll(self) -> None:
        """Raise the checker's error if it found one already."""
        if self._verdict is None and self._process.poll() is not None:
            self._receive()
        if self._verdict is not None:
            self._raise_if_bad()

    def result(self) -> BackupSummary:
        """Wait for the checker: what the backup holds, or its error naming the first bad line."""
        if self._verdict is None:
            self._receive()
        self._raise_if_bad()
        _ok, events, skipped, lines, first, last = self._verdict  # type: ignore[misc]
        return BackupSummary(events, skipped, lines, first, last)

    def _receive(self) -> None:
        assert self._process.stdout is not None
        answer = self._process.stdout.read()
        code = self._process.wait()
        try:
            verdict = orjson.loads(answer)
            if type(verdict) is not list or verdict[0] not in ("ok", "bad", "failed"):
                raise ValueError(answer)
        except (orjson.JSONDecodeError, ValueError, IndexError):
            verdict = ["failed", f"the backup check stopped without an answer (exit code {code})"]
        self._verdict = verdict

    def _raise_if_bad(self) -> None:
        verdict = self._verdict
        assert verdict is not None
        if verdict[0] == "bad":
            raise BackupFormatError(verdict[1], verdict[2], verdict[3])
        if verdict[0] == "failed":
            raise PhotonError(verdict[1])

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def check_file(path: str | Path) -> list[Any]:
    """Check a whole backup file against an empty store: the verdict `_Checker` reads, as a JSON
    array: ["ok", events, skipped, lines, first order-id, last order-id], ["bad", line, reason,
    field] or ["failed", message]."""
    summary = BackupSummary()
    try:
        with reading(path) as stream, cycle_collection_paused():
            for _record in CheckedRecords(backup_lines(stream), None, summary):
                pass
    except BackupFormatError as exc:
        return ["bad", exc.line, exc.reason, exc.field]
    except Exception as exc:
        return ["failed", f"cannot check the backup {path}: {exc}"]
    return ["ok", summary.events, summary.skipped, summary.lines, summary.first_order_id, summary.last_order_id]


def load_verified(
    store: EventStore,
    path: str | Path,
    summary: BackupSummary,
    *,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], object] | None = None,
) -> int:
    """Load a backup file into an empty store, checking it in a second process at the same time.

    For use inside `bulk_load(store)` when it yields True: a bad line makes the load fail, and the
    bulk load then leaves the store empty again. Reading and checking each line costs about as
    much as storing it; split over two processes, the two run side by side instead of one after
    the other. The checker reads the same file as `check_backup` would; this process takes from
    each line only what it stores. Fills `summary`; returns the number of events stored.
    """
    try:
        checker = _Checker(path)
    except OSError as exc:  # no interpreter to start (an embedded Python): check while loading
        log.warning("cannot start the backup check in a second process (%s); checking as it loads", exc)
        with reading(path) as stream:
            return import_events(
                store, CheckedRecords(backup_lines(stream), store, summary), batch_size=batch_size, on_batch=on_batch
            )
    try:
        try:
            with reading(path) as stream:
                records = UncheckedRecords(backup_lines(stream), store, checker)
                written = import_events(store, records, batch_size=batch_size, on_batch=on_batch)
        except Exception:
            # A line the load could not take, or a value the database refused: when the file is
            # at fault, the checker's error names the first bad line.
            checker.result()
            raise
        checked = checker.result()
    finally:
        checker.close()
    if checked.events != written:
        raise BackupFormatError(
            None, f"the backup changed while it was restored: checked {checked.events} events, stored {written}"
        )
    summary.events, summary.skipped, summary.lines = checked.events, checked.skipped, checked.lines
    summary.first_order_id, summary.last_order_id = checked.first_order_id, checked.last_order_id
    return written


def checked_records(
    lines: Iterable[bytes],
    store: EventStore,
    summary: BackupSummary,
    *,
    on_event: Callable[[int], object] | None = None,
) -> CheckedRecords:
    """The backup's events, each checked (see `CheckedRecords`)."""
    return CheckedRecords(lines, store, summary, on_event=on_event)


def restore(
    store: EventStore,
    open_lines: Callable[[], Iterable[bytes]],
    *,
    batch_size: int = BATCH_SIZE,
    on_checked: Callable[[int], object] | None = None,
    on_written: Callable[[int], object] | None = None,
    on_checked_all: Callable[[BackupSummary], None] | None = None,
) -> BackupSummary:
    """Check a whole backup and write it: a bad backup leaves the store as it was.

    Into an empty store whose backend can undo a bulk load, one pass reads, checks and writes
    (a bad line undoes what was written). Otherwise a first pass checks every line and writes
    nothing, and a second writes: `open_lines` is then called twice and must give the same lines.
    """
    with bulk_load(store) as undoable:
        if undoable:
            summary = BackupSummary()
            records = checked_records(open_lines(), store, summary, on_event=on_checked)
            import_events(store, records, batch_size=batch_size, on_batch=on_written)
            if on_checked_all is not None:
                on_checked_all(summary)
            return summary
    summary = check_backup(open_lines(), store, on_event=on_checked)
    if on_checked_all is not None:
        on_checked_all(summary)
    if summary.events:
        parsed = (record for _number, record in parse_lines(open_lines()))
        written = import_events(store, parsed, batch_size=batch_size, on_batch=on_written)
        if written != summary.events:
            raise BackupFormatError(
                None, f"the backup changed while it was restored: checked {summary.events} events, wrote {written}"
            )
    return summary


def restore_file(
    store: EventStore,
    path: str | Path,
    *,
    batch_size: int = BATCH_SIZE,
    on_written: Callable[[int], object] | None = None,
) -> BackupSummary:
    """Restore a backup file (plain or gzip): as `restore`, but into an empty store whose backend
    can undo a bulk load, the file is checked in a second process while this one loads it."""
    with bulk_load(store) as undoable:
        if undoable:
            summary = BackupSummary()
            load_verified(store, path, summary, batch_size=batch_size, on_batch=on_written)
            return summary
    return restore(store, partial(_file_lines, path), batch_size=batch_size, on_written=on_written)


def _file_lines(path: str | Path) -> Iterator[bytes]:
    with reading(path) as stream:
        yield from backup_lines(stream)
