"""The SQL writer's record of stream numbers (``photon_streams.stream_id``, by name), which the
events' stream index holds instead of the names (see `schema`).

The writer numbers new streams itself (the next number after the highest), so it must know each
stream's number before it inserts its events. It learns the numbers of the streams of an append
in the committer's look-up of their versions (`versions_before_append`, one query for both), and
keeps the last STREAM_IDS_KEPT of them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from operator import add
from typing import Any

from photon.core.errors import BackendError
from photon.core.events import RecordedEvent

from .reads import CHUNK, SQLReads
from .statements import STREAM_NAME, last_versions

HEADS_CHUNK = 512
"""Streams per statement of the writer's look-up of versions and numbers."""
STREAM_IDS_KEPT = 100_000
"""The writer remembers this many stream numbers; past it, it starts again (and looks them up)."""


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
            self._number_streams([name for name in versions if name not in ids])
        self._absent = set()  # this write may create any of them: the next append asks again
        numbers = list(map(ids.__getitem__, map(STREAM_NAME, events)))
        return numbers, [(name, version, ids[name]) for name, version in versions.items()]

    def _number_streams(self, names: list[str]) -> None:
        """Find the numbers of streams the writer has not met yet; give new streams the next ones."""
        import sqlalchemy as sa

        table, ids, absent = self._streams_table, self._stream_ids, self._absent
        unknown = [name for name in names if name not in absent]  # the writer just found the others missing
        for start in range(0, len(unknown), CHUNK):
            chunk = unknown[start : start + CHUNK]
            rows = self._core(sa.select(table.c.stream_name, table.c.stream_id).where(table.c.stream_name.in_(chunk)))
            ids.update({name: number for name, number in rows})
        if self._last_stream_id is None:
            self._last_stream_id = self._core(sa.select(sa.func.max(table.c.stream_id)))[0][0] or 0
        for name in names:
            if name not in ids:
                self._last_stream_id += 1
                ids[name] = self._last_stream_id

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
