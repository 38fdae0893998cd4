"""SQLite statements that write many rows at once (``INSERT ... VALUES (...), (...), ...``).

`executemany` steps SQLite once per row, and the sqlite3 driver lets go of the GIL and takes it
back around every step. One statement of many rows does the same writes in one step. Measured on
the events table with all its indexes, batches of 1,000: about 12% less CPU than `executemany`
(statements of 256 rows; larger ones gained no more), and for the small groups of many
single-event writers it saves the GIL hand-offs of the writer, which then waits for the callers'
threads at every one of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain, islice
from typing import Any

APPEND_ROWS = 256
"""Rows per statement of an ordinary append (8 parameters a row: far under SQLite's limit of
32,766 parameters a statement)."""
EXACT_ROWS = 32
"""Up to this many rows (what is left of a batch, or a group of single events) go in one
statement of exactly that many rows; more go in statements of powers of two."""


def rows_in_statement(left: int, limit: int) -> int:
    """How many of the `left` rows still to write the next statement takes: all of them up to
    EXACT_ROWS, else the largest power of two within `limit` and `left`."""
    return left if left <= EXACT_ROWS else 1 << (min(limit, left).bit_length() - 1)


STATEMENT_CACHE = 256
"""Prepared statements the driver keeps per connection (its default, 128, is about what the
writer's forms of these statements alone take)."""


class MultiRow:
    """The many-row forms of one-row statements, made once per (statement, row count).

    Row counts are powers of two, or at most EXACT_ROWS, so a few forms serve every batch and the
    driver's cache of prepared statements keeps them all (see `STATEMENT_CACHE`)."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, int], str] = {}
        self._made_last: dict[tuple[str, int], str] = {}

    def statement(self, sql: str, count: int) -> str:
        """`sql` (``INSERT ... VALUES (?, ...)`` with an optional tail such as ``ON CONFLICT ...``)
        made to take `count` rows."""
        made = self._made.get((sql, count))
        if made is None:
            head, _, rest = sql.partition(" VALUES ")
            end = rest.index(")") + 1
            made = self._made[(sql, count)] = f"{head} VALUES {', '.join([rest[:end]] * count)}{rest[end:]}"
        return made

    def statement_last_apart(self, sql: str, count: int) -> str:
        """`statement` for rows whose last value is passed apart from the others: the parameters
        are every row's other values, row after row, then the `count` last values (numbered
        parameters, ``?NNN``, put each where its row needs it)."""
        made = self._made_last.get((sql, count))
        if made is None:
            head, _, rest = sql.partition(" VALUES ")
            end = rest.index(")") + 1
            width = rest[:end].count("?")
            if rest[:end] != "(" + ", ".join(["?"] * width) + ")":
                raise ValueError(f"not a row of plain parameters: {rest[:end]!r}")
            before = width - 1
            tail = count * before + 1  # the number of the first row's last value
            rows = [
                "(" + "".join(f"?{row * before + column}, " for column in range(1, width)) + f"?{tail + row})"
                for row in range(count)
            ]
            made = self._made_last[(sql, count)] = f"{head} VALUES {', '.join(rows)}{rest[end:]}"
        return made

    def run_last_apart(
        self, connection: Any, sql: str, rows: Sequence[Sequence[Any]], last: Sequence[Any], limit: int
    ) -> None:
        """`run` for rows each missing its last value, which `last` gives (one a row, in order).

        The parameters of each statement are the rows' values in one list, made in C, with the
        last values after them: no row of all its values is made (an append's thousand rows of
        eight were a tuple each, built, flattened and dropped: about half the writer's Python
        work per event outside SQLite)."""
        total = len(rows)
        if len(last) != total:
            raise ValueError(f"{len(last)} last values for {total} rows")
        start = 0
        while start < total:
            count = rows_in_statement(total - start, limit)
            end = start + count
            params = list(chain.from_iterable(rows[start:end]))
            params += last[start:end]
            connection.execute(self.statement_last_apart(sql, count), params)
            start = end

    def run(self, connection: Any, sql: str, rows: Sequence[Sequence[Any]], limit: int) -> None:
        """Write `rows` in order with statements of at most `limit` rows each."""
        self.run_taking(connection, sql, iter(rows), len(rows), limit)

    def run_taking(self, connection: Any, sql: str, rows: Iterator[Sequence[Any]], total: int, limit: int) -> None:
        """`run` for `total` rows made one by one as the statements take them: no row outlives
        its statement's parameters (an append's rows alive all at once were a thousand tuples
        more for the cyclic garbage collector to count and walk)."""
        start = 0
        while start < total:
            count = rows_in_statement(total - start, limit)
            if count == 1:
                connection.execute(sql, next(rows))
            else:
                connection.execute(self.statement(sql, count), list(chain.from_iterable(islice(rows, count))))
            start += count
