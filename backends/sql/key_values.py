"""The key/value entries of ``photon_checkpoints`` (projection checkpoints, consumer positions,
group states), a large value stored in parts.

A value is its ``photon_checkpoints`` row's value followed by its rows of
``photon_checkpoint_parts`` (``part`` 1, 2, ...), each at most `CHECKPOINT_PART_BYTES`: a
projection's state of an entry per stream (148 MiB at 1M streams) is written a part a statement,
as views of the bytes the server holds, so that neither Photon, nor the driver, nor the database
holds a second copy of it whole. Written whole in one row, such a state took the server three
times its size for a moment, and libpq kept an output buffer of its size afterwards
(docs/benchmarks.md). Every write replaces all of a key's rows in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .schema import CHECKPOINT_PART_BYTES

Part = bytes | memoryview


def pieces(parts: Sequence[Part]) -> list[Part]:
    """`parts` cut where they are larger than CHECKPOINT_PART_BYTES (views, not copies), empty
    ones left out; one empty piece for an empty value (its row in ``photon_checkpoints``)."""
    found: list[Part] = []
    for part in parts:
        size = len(part)
        if size <= CHECKPOINT_PART_BYTES:
            if size:
                found.append(part)
            continue
        view = memoryview(part)
        found += [view[at : at + CHECKPOINT_PART_BYTES] for at in range(0, size, CHECKPOINT_PART_BYTES)]
    return found or [b""]


def put(conn: Any, table: Any, parts_table: Any, key: str, parts: Sequence[Part] | None) -> None:
    """Set `key` to `parts` one after another (None: remove it), in `conn`'s transaction: the
    first piece in its `table` row, the rest in `parts_table`. One statement a piece, each with
    its piece as a bound value: an insert of many rows at once would hold them all in one
    message, and a value written into the statement (``.values(value=...)``) stays referenced by
    SQLAlchemy's cache of the compiled statement."""
    import sqlalchemy as sa

    conn.execute(sa.delete(table).where(table.c.key == key))
    conn.execute(sa.delete(parts_table).where(parts_table.c.key == key))
    if parts is None:
        return
    first, *rest = pieces(parts)
    conn.execute(sa.insert(table), {"key": key, "value": first})
    insert = sa.insert(parts_table)
    for number, piece in enumerate(rest, 1):
        conn.execute(insert, {"key": key, "part": number, "value": piece})


def select(table: Any, parts_table: Any, *where: Callable[[Any], Any]) -> Any:
    """The rows (key, part, value) of the entries whose keys meet `where` (functions of a key
    column), each entry's row (part 0) first and its parts after, in one statement."""
    import sqlalchemy as sa

    first = sa.select(table.c.key, sa.literal(0).label("part"), table.c.value)
    rest = sa.select(parts_table.c.key, parts_table.c.part, parts_table.c.value)
    return sa.union_all(
        first.where(*(w(table.c.key) for w in where)), rest.where(*(w(parts_table.c.key) for w in where))
    ).order_by("key", "part")


def joined(rows: Iterable[Any]) -> dict[str, bytes]:
    """The values of `select`'s rows, each whole."""
    found: dict[str, list[bytes]] = {}
    for key, part, value in rows:
        if part == 0:
            found[str(key)] = [value]
        elif str(key) in found:  # a part is written with its row, never without
            found[str(key)].append(value)
    return {key: b"".join(values) for key, values in found.items()}
