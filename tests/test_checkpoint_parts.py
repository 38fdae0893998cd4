"""A projection checkpoint of a large state is written in parts (`Backend.write_checkpoint_parts`;
the SQL backends keep the rest of a value past a MiB in ``photon_checkpoint_parts``): it reads
back whole, a checkpoint stored before still loads, nothing keeps the written value, and a writer
killed with SIGKILL mid-write leaves the previous checkpoint whole."""

from __future__ import annotations

import random
import sqlite3
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from photon_backends.sql.key_values import pieces as checkpoint_pieces
from photon_backends.sql.schema import CHECKPOINT_PART_BYTES, CHECKPOINT_PARTS_TABLE

from photon.core.store import EventStore
from photon.projections.checkpoints import (
    Checkpoint,
    StateJSON,
    checkpoint_key,
    clear_checkpoint,
    read_checkpoint,
    write_checkpoint,
)

from .crash_checkpoint_writer import state_of
from .crash_support import kill_while_writing

DIGEST = "e" * 64


def big_state(entries: int = 25_000) -> dict[str, Any]:
    """About 3.5 MB of JSON, as the built-in `__streams__` projection's state: an entry per stream."""
    return {
        f"s-{i}": {"stream-name": f"s-{i}", "total-events": i, "schemas": {"__unversioned__": {"i": "number"}}}
        for i in range(entries)
    }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "sqlite":
        return {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "store.db")}
    return {"db.backend": "postgres", "postgres.url": request.getfixturevalue("postgres_database")}


def parts_rows(store: EventStore) -> list[tuple[str, int, int]]:
    """(key, part, bytes) of every row of the parts table."""
    import sqlalchemy as sa

    table = store.backend._metadata.tables[CHECKPOINT_PARTS_TABLE]
    with store.backend._engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.key, table.c.part, sa.func.length(table.c.value))).all()
    return sorted((str(key), int(part), int(size)) for key, part, size in rows)


def test_a_large_state_round_trips_in_parts_and_a_smaller_one_leaves_none(config: dict[str, Any]) -> None:
    state = big_state()
    state_json = orjson.dumps(state)
    checkpoint = Checkpoint(DIGEST, 900, 899, 800, StateJSON(state_json))
    with EventStore.open(config) as store:
        write_checkpoint(store, "streams", checkpoint)
        assert read_checkpoint(store, "streams", DIGEST) == Checkpoint(DIGEST, 900, 899, 800, state)
        # Stored as the server has always stored it: one JSON document, the state last.
        stored = orjson.dumps(checkpoint.to_value())
        assert store.backend.read_checkpoint(checkpoint_key("streams")) == stored
        assert store.backend.checkpoints("projection:") == {checkpoint_key("streams"): stored}
        rows = parts_rows(store)
        assert len(rows) == -(-len(state_json) // CHECKPOINT_PART_BYTES) + 1  # the state's parts and the "}"
        assert all(size <= CHECKPOINT_PART_BYTES for _key, _part, size in rows)
        assert [part for _key, part, _size in rows] == list(range(1, len(rows) + 1))

        # A smaller one in its place leaves none of the larger one's parts behind.
        write_checkpoint(store, "streams", Checkpoint(DIGEST, 901, 901, 801, StateJSON(b"[1,2]")))
        assert read_checkpoint(store, "streams") == Checkpoint(DIGEST, 901, 901, 801, [1, 2])
        assert parts_rows(store) == [(checkpoint_key("streams"), 1, 5), (checkpoint_key("streams"), 2, 1)]
        store.write_checkpoint(checkpoint_key("streams"), {"whole": True})  # one value, one row
        assert store.read_checkpoint(checkpoint_key("streams")) == {"whole": True} and parts_rows(store) == []

        write_checkpoint(store, "streams", checkpoint)
        clear_checkpoint(store, "streams")
        assert read_checkpoint(store, "streams") is None and parts_rows(store) == []

    with EventStore.open(config) as store:  # and from a store opened again
        write_checkpoint(store, "streams", checkpoint)
    with EventStore.open(config) as store:
        assert read_checkpoint(store, "streams", DIGEST) == Checkpoint(DIGEST, 900, 899, 800, state)


def test_the_written_value_is_not_kept(config: dict[str, Any]) -> None:
    state_json = orjson.dumps(big_state(2_000))
    with EventStore.open(config) as store:
        before = sys.getrefcount(state_json)
        for order_id in (1, 2):  # the first write compiles the statements, the second finds them
            store.backend.write_checkpoint("consumer:c", state_json)
            write_checkpoint(store, "p", Checkpoint(DIGEST, order_id, state=StateJSON(state_json)))
            assert sys.getrefcount(state_json) == before


def test_a_checkpoint_stored_before_the_parts_table_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    config = {"db.backend": "sqlite", "sqlite.path": str(path)}
    EventStore.open(config).close()
    # As a store written before the parts table holds it: the table missing, the value one row.
    old = {"digest": DIGEST, "order-id": 7, "last-event": 6, "processed": 5, "state": {"a": [1, 2]}}
    with sqlite3.connect(path) as connection:
        connection.execute(f"DROP TABLE {CHECKPOINT_PARTS_TABLE}")
        connection.execute("INSERT INTO photon_checkpoints VALUES (?, ?)", ("projection:old", orjson.dumps(old)))
    with EventStore.open(config) as store:
        assert read_checkpoint(store, "old", DIGEST) == Checkpoint(DIGEST, 7, 6, 5, {"a": [1, 2]})
        assert store.backend.checkpoints("projection:") == {"projection:old": orjson.dumps(old)}


@pytest.mark.postgres
def test_a_checkpoint_stored_before_the_parts_table_still_loads_on_postgres(postgres_database: str) -> None:
    import psycopg

    config = {"db.backend": "postgres", "postgres.url": postgres_database}
    EventStore.open(config).close()
    old = {"digest": DIGEST, "order-id": 7, "last-event": 6, "processed": 5, "state": {"a": [1, 2]}}
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute(f"DROP TABLE {CHECKPOINT_PARTS_TABLE}")
        connection.execute("INSERT INTO photon_checkpoints VALUES (%s, %s)", ("projection:old", orjson.dumps(old)))
    with EventStore.open(config) as store:
        assert read_checkpoint(store, "old", DIGEST) == Checkpoint(DIGEST, 7, 6, 5, {"a": [1, 2]})


def test_the_pieces_are_views_of_the_parts_at_most_a_part_each() -> None:
    state = bytes(range(256)) * (CHECKPOINT_PART_BYTES // 128 + 3)  # two parts and a bit
    pieces = checkpoint_pieces([b"head", state, b"", b"}"])
    assert b"".join(pieces) == b"head" + state + b"}"
    assert [len(p) for p in pieces] == [
        4,
        CHECKPOINT_PART_BYTES,
        CHECKPOINT_PART_BYTES,
        len(state) % CHECKPOINT_PART_BYTES,
        1,
    ]
    assert all(isinstance(p, memoryview) and p.obj is state for p in pieces[1:4])
    assert checkpoint_pieces([b""]) == [b""] and checkpoint_pieces([]) == [b""]


@pytest.mark.slow
def test_sigkill_while_writing_a_checkpoint_in_parts_leaves_a_whole_one(config: dict[str, Any]) -> None:
    where = config.get("sqlite.path") or config["postgres.url"]
    rng = random.Random(23)
    for _ in range(6):
        lines = kill_while_writing("tests.crash_checkpoint_writer", [config["db.backend"], where], rng, (0.05, 0.5))
        acknowledged = max(int(line.split()[1]) for line in lines if line.startswith("ack "))
        with EventStore.open(config) as store:
            saved = read_checkpoint(store, "big", "d" * 64)
            assert saved is not None and saved.order_id >= acknowledged
            # Whole, and one round's: never one round's head with another's parts.
            assert saved.state == state_of(saved.order_id)
