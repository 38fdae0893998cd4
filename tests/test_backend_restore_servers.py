"""A backup (with deleted streams, so gaps in its order-ids) restores into every server backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from photon.core.store import EventStore
from photon.ops.restore import restore

from .backup_support import backup_bytes, build_source, everything


@pytest.fixture(scope="module")
def backup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EventStore, bytes]]:
    path: Path = tmp_path_factory.mktemp("source") / "source.db"
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)}) as source:
        build_source(source)
        yield source, backup_bytes(source)


def _postgres(request: pytest.FixtureRequest) -> dict[str, Any]:
    import psycopg

    server = request.getfixturevalue("postgres_server")
    name = f"photon_r_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return {"db.backend": "postgres", "postgres.url": server.dsn.rsplit("/", 1)[0] + "/" + name}


def _redis(request: pytest.FixtureRequest) -> dict[str, Any]:
    server = request.getfixturevalue("redis_server")
    return {"db.backend": "redis", "redis.url": server.url, "redis.prefix": f"r-{uuid.uuid4().hex[:12]}"}


def _mongo(request: pytest.FixtureRequest) -> dict[str, Any]:
    server = request.getfixturevalue("mongo_server")
    return {"db.backend": "mongo", "mongodb.host": server.url, "mongodb.database": f"r_{uuid.uuid4().hex[:12]}"}


def _cassandra(request: pytest.FixtureRequest) -> dict[str, Any]:
    server = request.getfixturevalue("cassandra_server")
    return {
        "db.backend": "cassandra",
        "cassandra.ip": server.host,
        "cassandra.port": str(server.port),
        "cassandra.keyspace": f"r_{uuid.uuid4().hex[:12]}",
    }


@pytest.mark.parametrize(
    "make_config",
    [
        pytest.param(_postgres, marks=pytest.mark.postgres, id="postgres"),
        pytest.param(_redis, marks=pytest.mark.redis, id="redis"),
        pytest.param(_mongo, marks=pytest.mark.mongo, id="mongo"),
        pytest.param(_cassandra, marks=pytest.mark.cassandra, id="cassandra"),
    ],
)
def test_backup_restores_into_server_backend(
    make_config: Any, request: pytest.FixtureRequest, backup: tuple[EventStore, bytes]
) -> None:
    source, data = backup
    config = make_config(request)
    with EventStore.open(config) as target:
        summary = restore(target, lambda: iter(data.splitlines(keepends=True)), batch_size=500)
        assert summary.events == len(everything(source))
        assert everything(target) == everything(source)  # ids, order-ids, versions, times, bytes
        assert target.streams() == source.streams()
        assert target.last_order_id() == source.last_order_id()
        (next_one,) = target.append({"stream-name": "orders-003", "event-type": "Back", "payload": {}})
        assert next_one.order_id == source.last_order_id() + 1 and next_one.stream_version == 1
    with EventStore.open(config, read_only=True) as reopened:
        assert everything(reopened)[: len(everything(source))] == everything(source)


@pytest.fixture(scope="module")
def scavenged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EventStore, bytes]]:
    """A store after metadata, soft and hard deletes, a redaction and a scavenge: its backup has
    streams that start past version 1 and order-ids with holes."""
    path: Path = tmp_path_factory.mktemp("scavenged") / "source.db"
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)}) as source:
        for index in range(6):
            source.append(
                [
                    {"stream-name": f"s-{index}", "event-type": "E", "payload": {"i": i}, "tags": [f"t{index}"]}
                    for i in range(150)
                ]
            )
        source.set_stream_metadata("s-0", {"max-count": 20, "owner": "ops"})
        source.set_stream_metadata("s-1", {"truncate-before": 140})
        source.delete_stream("s-2")
        source.delete_stream("s-3", hard=True)
        source.append({"stream-name": "s-2", "event-type": "E", "payload": {"again": True}})
        source.redact(stream="s-4", reason="erasure")
        source.scavenge()
        yield source, backup_bytes(source)


@pytest.mark.parametrize(
    "make_config",
    [
        pytest.param(_postgres, marks=pytest.mark.postgres, id="postgres"),
        pytest.param(_redis, marks=pytest.mark.redis, id="redis"),
        pytest.param(_mongo, marks=pytest.mark.mongo, id="mongo"),
        pytest.param(_cassandra, marks=pytest.mark.cassandra, id="cassandra"),
    ],
)
def test_a_scavenged_backup_restores_with_its_gaps(
    make_config: Any, request: pytest.FixtureRequest, scavenged: tuple[EventStore, bytes]
) -> None:
    from photon.core.errors import StreamDeleted

    source, data = scavenged
    with EventStore.open(make_config(request)) as target:
        restore(target, lambda: iter(data.splitlines(keepends=True)), batch_size=100)
        assert everything(target) == everything(source)
        for stream in ("s-0", "s-1", "s-2", "s-4", "s-5"):
            assert list(target.read(stream)) == list(source.read(stream)), stream
        assert [e.stream_version for e in target.read("s-0", from_version=145)] == [145, 146, 147, 148, 149, 150]
        assert target.stream_metadata("s-0") == source.stream_metadata("s-0")
        assert next(iter(target.read("s-4"))).payload["redacted"] is True
        assert [e.order_id for e in target.read_matching([{"tags": ["t0"]}])] == [
            e.order_id for e in source.read_matching([{"tags": ["t0"]}])
        ]
        # The read indexes came with the restore: category and event-type reads agree with the source's.
        assert list(target.read("__category__:s")) == list(source.read("__category__:s"))
        assert list(target.read(event_types=["E"])) == list(source.read(event_types=["E"]))
        with pytest.raises(StreamDeleted):
            target.append({"stream-name": "s-3", "event-type": "E", "payload": {}})
        assert target.append({"stream-name": "s-0", "event-type": "E", "payload": {}})[0].stream_version == 151
        assert target.append({"stream-name": "s-2", "event-type": "E", "payload": {}})[0].stream_version == 152
