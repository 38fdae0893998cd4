"""Backup: a cold replay of `__all__` written out as JSON lines, one stored event per line.

Each line is the event's stored JSON (`RecordedEvent.data`) exactly as the store holds it, so a
backup costs no decoding or encoding, equals what `photon replay __all__ -stream-type cold`
prints, and restores with `photon restore` into any backend (see `photon.ops.restore`).

A backup stops at the last order-id the store had when it began, so a backup taken next to a
running server is that moment's store, and its size is known up front.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import orjson

from photon.core.events import ALL_STREAM
from photon.core.positioned import BackupFormatError
from photon.core.store import EventStore
from photon.ops.backup_files import backup_lines

PAGE = 10_000
POSITIONS = "photon-positions"
"""The key of a backup's first line when it carries positions: ``{"photon-positions": {key: value}}``."""
POSITION_PREFIXES = ("group:", "consumer:", "projection:")
"""Consumer groups' states, durable consumers' positions and projections' checkpoints."""


def positions_line(store: EventStore) -> bytes | None:
    """The line that carries the store's positions (None when there are none, or the backend cannot
    list them). Positions are taken before the events are read, so they never point past them."""
    if not store.backend.listing_checkpoints:
        return None
    found: dict[str, Any] = {}
    for prefix in POSITION_PREFIXES:
        for key, value in store.backend.checkpoints(prefix).items():
            found[key] = orjson.loads(value)
    return orjson.dumps({POSITIONS: found}) + b"\n" if found else None


def read_positions(source: IO[bytes]) -> dict[str, Any] | None:
    """The positions a backup's first line carries, or None; the file is rewound after.

    A first line that begins as the positions line but is not one (cut short, corrupted) is a
    `BackupFormatError` for line 1, as a bad event line is.
    """
    try:
        first = next(backup_lines(source), b"")  # a cut gzip is a bad line 1 too
        if not first.startswith(b'{"' + POSITIONS.encode()):
            return None
        try:
            value = orjson.loads(first)[POSITIONS]
        except orjson.JSONDecodeError as exc:
            raise BackupFormatError(1, f"not valid JSON ({exc})") from None
        if not isinstance(value, dict):
            raise BackupFormatError(1, f"{POSITIONS} must be an object of positions by key", POSITIONS)
        return value
    finally:
        source.seek(0)


def apply_positions(store: EventStore, positions: dict[str, Any]) -> int:
    """Store a backup's positions (after its events are restored); returns how many."""
    for key, value in positions.items():
        if isinstance(key, str) and key.startswith(POSITION_PREFIXES):
            store.write_checkpoint(key, value)
    return len(positions)


def backup_chunks(
    store: EventStore,
    *,
    from_order_id: int = 1,
    to_order_id: int | None = None,
    page: int = PAGE,
) -> Iterator[tuple[bytes, int]]:
    """`__all__` from `from_order_id` to `to_order_id` (default: the last now) as chunks of lines.

    Yields (bytes of whole lines, number of events in them), one chunk per page read (at most
    `page` events, about `replay.page.bytes`: `EventStore.read_pages`), so memory stays bounded
    by one page.
    """
    last = store.last_order_id() if to_order_id is None else to_order_id
    position = max(from_order_id, 1)
    if position > last:
        return
    for events in store.read_pages(ALL_STREAM, from_order_id=position, to_order_id=last, page_events=page):
        yield b"\n".join([event.data for event in events]) + b"\n", len(events)


def write_chunks(
    chunks: Iterable[tuple[bytes, int]], out: IO[bytes], on_progress: Callable[[int], object] | None = None
) -> int:
    """Write every chunk to `out`; returns the number of events written.

    Writing (and gzip compression, which lets go of the interpreter) runs in its own thread while
    the next page is read, so reading and writing overlap. At most a few chunks wait in between.
    """
    waiting: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
    failure: list[BaseException] = []

    def drain() -> None:
        try:
            while (data := waiting.get()) is not None:
                out.write(data)
        except BaseException as exc:
            failure.append(exc)
            while waiting.get() is not None:  # keep taking, so the reader never blocks
                pass

    writer = threading.Thread(target=drain, name="photon-backup-writer", daemon=True)
    writer.start()
    count = 0
    try:
        for data, events in chunks:
            if failure:
                break
            waiting.put(data)
            count += events
            if on_progress is not None:
                on_progress(events)
    finally:
        waiting.put(None)
        writer.join()
    if failure:
        raise failure[0]
    return count


def events_to_back_up(store: EventStore, from_order_id: int = 1) -> int:
    """How many events a backup from `from_order_id` will hold (for the progress bar).

    The store keeps no count of `__all__`, and deleted streams leave holes in the order-ids,
    so this is an upper bound: the order-ids from `from_order_id` to the last.
    """
    return max(store.last_order_id() - max(from_order_id, 1) + 1, 0)
