"""`photon backup FILE` and `photon restore FILE`: thin commands over `photon.ops.backup` and `photon.ops.restore`."""

from __future__ import annotations

import itertools
import tempfile
import time
import zlib
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from photon.cli.options import CONTEXT, PhotonCommand, config_from, config_options, warn_if_transient
from photon.core.errors import PhotonError
from photon.ops.backup_files import STDIO, atomic_output, backup_lines, reading, spooled_stdin
from photon.ops.progress import interactive, progress_bar

if TYPE_CHECKING:
    from photon.ops.restore_records import BackupSummary


class BackupFailed(PhotonError):
    """A backup or restore stopped; the message says what happened to the file or the store."""


def _events(count: int) -> str:
    return "1 event" if count == 1 else f"{count} events"


def _rate(events: int, seconds: float) -> str:
    return f"{events / seconds:,.0f} events/s" if seconds > 0 else "-"


@click.command(cls=PhotonCommand, context_settings=CONTEXT)
@click.argument("file", metavar="FILE")
@click.option(
    "-from",
    "from_order_id",
    type=click.IntRange(min=1),
    default=1,
    metavar="ORDER-ID",
    help="First order-id to back up (an incremental backup of what came after an earlier one).",
)
@click.option(
    "-url",
    "url",
    default=None,
    metavar="URL",
    help="Back up a running server (e.g. http://localhost:3000) instead of opening the store; "
    "signs in with admin.user and admin.pass.",
)
@click.option(
    "-force", "force", is_flag=True, help="Replace FILE if it exists (without it, an existing FILE is refused)."
)
@config_options
def backup(file: str, from_order_id: int, url: str | None, force: bool, **params: Any) -> None:
    """Replay __all__ cold into FILE as JSON lines (gzip when FILE ends in .gz; - for standard output).

    Reads the store read-only (next to a running server on SQLite) or, with -url, a running server.
    The file appears only once it is complete.
    """
    from photon.ops.backup import backup_chunks, events_to_back_up, positions_line, write_chunks

    config = config_from(params)
    if file != STDIO and not force and Path(file).exists():
        raise BackupFailed(f"{file!r} already exists; add -force to replace it")
    started = time.perf_counter()
    with ExitStack() as stack:
        if url is not None:
            from photon.ops.backup_remote import remote_chunks

            chunks: Iterable[tuple[bytes, int]] = remote_chunks(
                url, config["admin.user"], config["admin.pass"], from_order_id=from_order_id
            )
            total: int | None = None
            source = url
        else:
            from photon.core.store import EventStore

            store = stack.enter_context(EventStore.open(config, read_only=True))
            positions = positions_line(store)  # first: positions never point past the events
            last = store.last_order_id()
            chunks = backup_chunks(store, from_order_id=from_order_id, to_order_id=last)
            if positions is not None:
                chunks = itertools.chain([(positions, 0)], chunks)
            total = events_to_back_up(store, from_order_id)
            source = store.backend.describe()
        bar = stack.enter_context(progress_bar("backup", total))
        try:
            out = stack.enter_context(atomic_output(file))
            count = write_chunks(chunks, out, bar.update)
        except OSError as exc:
            raise BackupFailed(f"cannot write the backup {file!r}: {exc}") from exc
        if bar.total is not None and bar.n != bar.total:
            bar.total = bar.n  # deleted streams leave order-ids unused: end the bar at 100%
            bar.refresh()
    seconds = time.perf_counter() - started
    target = "standard output" if file == STDIO else file
    click.echo(
        f"backed up {_events(count)} from {source} to {target} in {seconds:.1f}s ({_rate(count, seconds)})", err=True
    )


@click.command(cls=PhotonCommand, context_settings=CONTEXT)
@click.argument("file", metavar="FILE")
@click.option(
    "-batch",
    "batch_size",
    type=click.IntRange(min=1),
    default=20_000,
    metavar="N",
    help="Events written per transaction.",
)
@config_options
def restore(file: str, batch_size: int, **params: Any) -> None:
    """Load a backup (FILE, - for standard input; gzip found by its magic bytes) into the configured store.

    The store must be empty, unless FILE is an incremental backup whose first order-id follows the
    store's last. Every line is checked before the restore succeeds: a bad line stops the restore
    with its line number and the store stays as it was. A backup of the Clojure Photon (`muon replay
    __all__ > FILE`) is recognised and converted: see docs/muon.md.
    """
    from photon.core.store import EventStore
    from photon.ops.backup import apply_positions, read_positions
    from photon.ops.clojure_backup import ORIGINAL_ORDER_ID, Conversion, convert, first_event, is_clojure_backup
    from photon.ops.restore import restore_file

    config = config_from(params)
    conversion = Conversion()
    started = time.perf_counter()
    with ExitStack() as stack:
        if file == STDIO:
            try:
                source = stack.enter_context(spooled_stdin())
            except (EOFError, OSError, zlib.error) as exc:
                raise BackupFailed(f"cannot read standard input ({exc}); nothing was restored") from exc
            path = source.name
        else:
            if not Path(file).is_file():
                raise BackupFailed(f"no backup file {file!r}")
            source = stack.enter_context(reading(file))
            path = file
        try:
            positions = read_positions(source)
        except PhotonError as exc:
            raise BackupFailed(f"{exc}; nothing was restored, the store is as it was") from exc
        store = stack.enter_context(EventStore.open(config))
        warn_if_transient(store)
        before = store.last_order_id()
        if is_clojure_backup(first_event(source)):
            # The Clojure Photon's `muon replay __all__` output: made into a Photon backup first.
            converted = stack.enter_context(tempfile.NamedTemporaryFile(prefix="photon-restore-", suffix=".jsonl"))
            try:
                for line in convert(backup_lines(source), first_order_id=before + 1, conversion=conversion):
                    converted.write(line)
            except PhotonError as exc:
                raise BackupFailed(f"{exc}; nothing was restored, the store is as it was") from exc
            converted.flush()
            source = stack.enter_context(reading(converted.name))
            path = converted.name
            click.echo(
                f"{name_of(file)} is a backup of the Clojure Photon: {conversion.events} events get order-ids "
                f"{conversion.first_order_id}..{conversion.last_order_id} in file order (each keeps its old one as "
                f"{ORIGINAL_ORDER_ID}), stream-versions are derived"
                + (
                    f"; its projections {', '.join(conversion.projections)} come back stopped (Clojure/JavaScript)"
                    if conversion.projections
                    else ""
                ),
                err=True,
            )
        bars = _RestoreBars(stack, source)
        try:
            summary = restore_file(
                store,
                path,
                batch_size=batch_size,
                on_start=bars.start,
                on_checked=bars.checked,
                on_written=bars.written,
                on_checked_all=bars.checked_all,
            )
        except PhotonError as exc:
            now = store.last_order_id()
            if not bars.writing or now == before:
                raise BackupFailed(f"{exc}; nothing was restored, the store is as it was") from exc
            raise BackupFailed(f"restore stopped: {exc}; the store now holds the events up to order-id {now}") from exc
        written = summary.events
        bars.finish(written)
        if positions and written:
            # The consumers', groups' and projections' positions, once their events are in.
            apply_positions(store, positions)
            click.echo(f"restored {len(positions)} positions (consumers, groups, projections)", err=True)
        elif positions:
            # Without its events a position would point past what the store holds: a projection
            # would skip the store's next events as already folded.
            click.echo(f"left out the backup's positions ({len(positions)}): it holds no events", err=True)
    seconds = time.perf_counter() - started
    name = name_of(file)
    if written == 0:
        click.echo(f"restored 0 events from {name}: the backup holds no events", err=True)
        return
    click.echo(
        f"restored {_events(written)} (order-ids {summary.first_order_id}..{summary.last_order_id}) from {name} "
        f"in {seconds:.1f}s ({_rate(written, seconds)})",
        err=True,
    )


def name_of(file: str) -> str:
    return "standard input" if file == STDIO else file


class _RestoreBars:
    """The progress bars of `photon restore`, fed by `restore_file`'s callbacks: one "restore" bar
    for a load checked in a second process; a "check" bar, then a "restore" bar, otherwise."""

    def __init__(self, stack: ExitStack, source: Any) -> None:
        self.stack = stack
        self.source = source
        self.bar: Any = None
        self.writing = False
        """Whether events are being written after a separate check (a failure then leaves some)."""

    def start(self, undoable: bool) -> None:
        if undoable:
            total = _count_lines(self.source) if interactive() else None
            self.bar = self.stack.enter_context(progress_bar("restore", total))
        else:
            self.bar = self.stack.enter_context(progress_bar("check"))

    def checked(self, events: int) -> None:
        self.bar.update(events)

    def checked_all(self, summary: BackupSummary) -> None:
        self.bar.close()
        self.bar = self.stack.enter_context(progress_bar("restore", summary.events))
        self.writing = True

    def written(self, events: int) -> None:
        self.bar.update(events)

    def finish(self, written: int) -> None:
        if not self.writing and self.bar is not None:
            self.bar.total = written  # lines counted blank and marker lines too
            self.bar.refresh()
        if self.bar is not None:
            self.bar.close()


def _count_lines(source: Any) -> int:
    """Lines in the (decompressed) backup, for the progress bar's total: one fast pass in C."""
    count = 0
    while chunk := source.read(1 << 20):
        count += chunk.count(b"\n")
    source.seek(0)
    return count
