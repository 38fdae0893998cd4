"""The SQL writer's record of stream numbers (``photon_streams.stream_id``, by name), which the
events' stream index holds instead of the names (see `schema`).

The writer numbers new streams itself (the next number after the highest), so it must know each
stream's number before it inserts its events. It learns the numbers of the streams of an append
in the committer's look-up of their versions (`versions_before_append`, one query for both), and
keeps the last STREAM_IDS_KEPT of them.

The highest number given, when the writer opens (or after a failed write): the highest number in
the first block of the events' stream index (every stream's first events are there: a new
stream starts at version 1, block 0 of `schema.block`), or the number kept in the streams table's
row `NUMBERS_ROW`, whichever is higher. That row is written only where a stream's number may be
missing from block 0: a truncation that removes events of block 0 (`keep_number`), a new stream
whose first events are past block 0 (a restore of a truncated stream), and the upgrade of a file
made before 2026-11. A number index on ``photon_streams`` is then not needed for ``max(stream_id)``:
on SQLite it was 1.2 of the 12.2 pages an eventsourcing insert put into the log
(`benchmarks.es_floor --pages`). PostgreSQL keeps it, and its writer seeks it instead
(`_highest_number`). A stream removed whole (its row and all its events) may give its number
again: nothing holds it any more, as before.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from operator import add
from typing import Any

from photon.core.errors import BackendError
from photon.core.events import RecordedEvent

from .reads import CHUNK, SQLReads
from .schema import BLOCK_BITS, block
from .statements import STREAM_NAME, last_versions

HEADS_CHUNK = 512
"""Streams per statement of the writer's look-up of versions and numbers."""
STREAM_IDS_KEPT = 100_000
"""The writer remembers this many stream numbers; past it, it starts again (and looks them up)."""
NUMBERS_ROW = ""
"""The streams table's row that keeps a stream number (as minus its version, so that listings of
streams, which take versions above 0, pass over it; its own number is 0, never a stream's): no
stream has this name (a client's has at least one character, Photon's own start with '__')."""
FIRST_BLOCK_END = 1 << BLOCK_BITS
"""The first version past block 0 of the stream index."""


class StreamNumbers(SQLReads):
    """The numbers of the streams the writer writes; `SQLBackend` gives it the writer's connection."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self._stream_ids: dict[str, int] = {}
        self._last_stream_id: int | None = None
        self._absent: set[str] = set()
        self._heads: dict[int, str] = {}
        """The look-up statement for each number of streams, compiled and checked once."""
        """Streams the writer's last look-up (`versions_before_append`) found missing: the append
        that follows numbers them without asking again. Emptied by every write."""

    def _writer_rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """A read on the writer's own connection (see `SQLBackend`)."""
        raise NotImplementedError

    def _numbered(self, events: Sequence[RecordedEvent]) -> tuple[Iterator[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The rows to insert for `events` (each with its stream's number last), made one by one
        as the insert takes them, and the rows that set each stream's version (name, version,
        number). Numbers new streams first."""
        numbers, versions = self._stream_numbers(events)
        # event + (number,), in C: zip() of one iterable gives the 1-tuples.
        return map(add, events, zip(numbers)), versions

    def _stream_numbers(self, events: Sequence[RecordedEvent]) -> tuple[list[int], list[tuple[Any, ...]]]:
        """Each event's stream number (the insert's last column), and the rows that set each
        stream's version (name, version, number). Numbers new streams first."""
        versions = last_versions(events)
        ids = self._stream_ids
        if not ids.keys() >= versions.keys():
            if len(ids) > STREAM_IDS_KEPT:
                # Bounded cache: start again, and look every stream of this batch up below (a
                # clear between the look-up and the rows would lose the numbers of known ones).
                ids.clear()
                self._absent.clear()
            new = self._number_streams([name for name in versions if name not in ids])
        else:
            new = []
        self._absent = set()  # this write may create any of them: the next append asks again
        numbers = list(map(ids.__getitem__, map(STREAM_NAME, events)))
        heads = [(name, version, ids[name]) for name, version in versions.items()]
        # A new stream with all its events past block 0 (only a restore writes one): its number
        # would not be found there when the writer opens again. Asked of the last version first
        # (a new stream's last version is past block 0 only in a batch of 64 events or more).
        if new and max(versions[name] for name in new) >= FIRST_BLOCK_END:
            first = first_versions(events, new)
            past = [ids[name] for name in new if first[name] >= FIRST_BLOCK_END]
            if past:
                heads.append((NUMBERS_ROW, -max(past), 0))
        return numbers, heads

    def _number_streams(self, names: list[str]) -> list[str]:
        """Find the numbers of streams the writer has not met yet; give new streams the next ones
        (returned)."""
        import sqlalchemy as sa

        table, ids, absent = self._streams_table, self._stream_ids, self._absent
        unknown = [name for name in names if name not in absent]  # the writer just found the others missing
        for start in range(0, len(unknown), CHUNK):
            chunk = unknown[start : start + CHUNK]
            rows = self._core(sa.select(table.c.stream_name, table.c.stream_id).where(table.c.stream_name.in_(chunk)))
            ids.update({name: number for name, number in rows})
        new = [name for name in names if name not in ids]
        if new:
            last = self._highest_number() if self._last_stream_id is None else self._last_stream_id
            for name in new:
                last += 1
                ids[name] = last
            self._last_stream_id = last
        return new

    def _highest_number(self) -> int:
        """The highest stream number given (see the module's docstring). Where the numbers have
        their index (PostgreSQL), one seek of it: every number a stream's row holds, that of a
        stream truncated before the kept row existed included. On SQLite, one seek of the stream
        index and one of the streams table (its upgrade kept the dropped index's highest in the
        row)."""
        import sqlalchemy as sa

        events, table = self._events, self._streams_table
        if self._dialect != "sqlite":
            return int(self._core(sa.select(sa.func.max(table.c.stream_id)))[0][0] or 0)
        first_block = block(events.c.stream_version) == 0
        found = self._core(
            sa.select(
                sa.select(events.c.stream_id)
                .where(first_block)
                .order_by(events.c.stream_id.desc())
                .limit(1)
                .scalar_subquery(),
                sa.select(-table.c.version).where(table.c.stream_name == NUMBERS_ROW).scalar_subquery(),
            )
        )[0]
        return max(found[0] or 0, found[1] or 0)

    def _forget_stream_numbers(self) -> None:
        """After a failed write: numbers given to new streams may not have been stored."""
        self._stream_ids.clear()
        self._last_stream_id = None
        self._absent = set()

    def versions_before_append(self, streams: Collection[str]) -> dict[str, int]:
        """From the writer's own connection, with each stream's number, kept for the append that
        follows (which then inserts without looking any of them up again)."""
        names = list(streams)
        ids = self._stream_ids
        if len(ids) > STREAM_IDS_KEPT:
            ids.clear()
        found: dict[str, int] = {}
        for start in range(0, len(names), HEADS_CHUNK):
            chunk = names[start : start + HEADS_CHUNK]
            size = 1 << (len(chunk) - 1).bit_length()  # a few statement shapes: pad with a repeated name
            for name, version, number in self._writer_rows(
                self._heads_sql(size), chunk + chunk[-1:] * (size - len(chunk))
            ):
                found[name] = version
                ids[name] = number
        self._absent = {name for name in names if name not in found}
        return found

    def _heads_sql(self, size: int) -> str:
        made = self._heads.get(size)
        if made is None:
            made = self._heads[size] = self._compile_heads(size)
        return made

    def _compile_heads(self, size: int) -> str:
        import sqlalchemy as sa

        table = self._streams_table
        statement = self._sql(
            ("heads", size),
            lambda: sa.select(table.c.stream_name, table.c.version, table.c.stream_id).where(
                table.c.stream_name.in_([sa.bindparam(f"n{i}") for i in range(size)])
            ),
        )
        if statement.names != tuple(f"n{i}" for i in range(size)):
            raise BackendError(f"unexpected look-up parameter order {statement.names}")
        return statement.sql


def first_versions(events: Sequence[RecordedEvent], names: Collection[str]) -> dict[str, int]:
    """The first version of each stream of `names` among `events`."""
    first: dict[str, int] = {}
    wanted = set(names)
    for event in events:
        if event.stream_name in wanted and event.stream_name not in first:
            first[event.stream_name] = event.stream_version
    return first


def keep_number(conn: Any, streams: Any, number: int) -> None:
    """Keep `number` in the streams table's `NUMBERS_ROW` (where it is higher than the one kept),
    in the transaction of `conn`: called by a truncation that removes events of block 0, whose
    stream's number may then be found there no more."""
    import sqlalchemy as sa

    row = streams.c.stream_name == NUMBERS_ROW
    kept = conn.execute(sa.select(-streams.c.version).where(row)).scalar()
    if kept is None:
        conn.execute(sa.insert(streams).values(stream_name=NUMBERS_ROW, version=-number, stream_id=0))
    elif number > kept:
        conn.execute(sa.update(streams).where(row).values(version=-number))
