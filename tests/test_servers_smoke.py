"""Smoke tests of tests/servers.py: each real server starts, serves its Python
driver, and keeps acknowledged data across a graceful stop and a SIGKILL."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from .servers import (
    CassandraServer,
    MongoServer,
    PostgresServer,
    RabbitServer,
    RedisServer,
    Server,
)


def restart_cycles(server: Server) -> Iterator[Callable[[], None]]:
    """The ways a test takes a server down before starting it again:
    a graceful stop, then a crash. Skips when the server is external."""
    if not server.restartable:
        pytest.skip(f"{server.env_var} points at an external server; not restarting it")
    yield server.stop
    yield server.kill


@pytest.mark.redis
def test_redis_appendonly_survives_stop_and_kill() -> None:
    import redis

    with RedisServer(appendonly=True) as server:
        key = f"smoke:{uuid.uuid4()}"
        client = redis.Redis.from_url(server.url)
        client.rpush(key, "a")
        assert client.lrange(key, 0, -1) == [b"a"]
        client.close()

        expected = [b"a"]
        for n, take_down in enumerate(restart_cycles(server)):
            take_down()
            server.start()
            client = redis.Redis.from_url(server.url)
            assert client.lrange(key, 0, -1) == expected
            client.rpush(key, str(n))
            expected.append(str(n).encode())
            client.close()


@pytest.mark.postgres
def test_postgres_survives_stop_and_kill() -> None:
    import psycopg

    with PostgresServer() as server:
        assert server.url.startswith("postgresql+psycopg://")
        table = f"smoke_{uuid.uuid4().hex}"
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("photon",)
            conn.execute(f"CREATE TABLE {table} (n int PRIMARY KEY)")
            conn.execute(f"INSERT INTO {table} VALUES (0)")

        expected = [0]
        for n, take_down in enumerate(restart_cycles(server), start=1):
            take_down()
            server.start()
            with psycopg.connect(server.dsn, autocommit=True) as conn:
                rows = conn.execute(f"SELECT n FROM {table} ORDER BY n").fetchall()
                assert [r[0] for r in rows] == expected
                conn.execute(f"INSERT INTO {table} VALUES (%s)", (n,))
                expected.append(n)


@pytest.mark.mongo
def test_mongo_on_disk_survives_stop_and_kill() -> None:
    import pymongo

    # sync_on_commit: without it a write can still sit in the server's own
    # buffers when kill() hits.
    with MongoServer(on_disk=True, sync_on_commit=True) as server:
        name = f"smoke_{uuid.uuid4().hex}"

        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            server.url, serverSelectionTimeoutMS=10_000
        )
        coll = client["photon_smoke"][name]
        coll.insert_one({"_id": 0})
        assert coll.find_one({"_id": 0}) == {"_id": 0}
        client.close()

        expected = [0]
        for n, take_down in enumerate(restart_cycles(server), start=1):
            take_down()
            server.start()
            client = pymongo.MongoClient(server.url, serverSelectionTimeoutMS=10_000)
            coll = client["photon_smoke"][name]
            assert [d["_id"] for d in coll.find().sort("_id")] == expected
            coll.insert_one({"_id": n})
            expected.append(n)
            client.close()


@pytest.mark.cassandra
def test_cassandra_survives_stop_and_kill() -> None:
    from cassandra.cluster import (  # type: ignore[import-untyped]
        EXEC_PROFILE_DEFAULT,
        Cluster,
        ExecutionProfile,
    )
    from cassandra.policies import DCAwareRoundRobinPolicy  # type: ignore[import-untyped]

    def connect(server: CassandraServer) -> Cluster:
        profile = ExecutionProfile(load_balancing_policy=DCAwareRoundRobinPolicy())
        return Cluster(
            [server.host],
            port=server.port,
            protocol_version=3,  # Cassandra 2.1 speaks v3 at most
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        )

    # "batch": the default "periodic" commit log is replayed only up to its
    # last sync, so kill() would lose the writes of the last 10 s.
    with CassandraServer(commitlog_sync="batch") as server:
        keyspace = f"smoke_{uuid.uuid4().hex[:16]}"
        cluster = connect(server)
        session = cluster.connect()
        session.execute(
            f"CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        )
        session.execute(f"CREATE TABLE {keyspace}.events (s text, n int, PRIMARY KEY (s, n))")
        insert = session.prepare(f"INSERT INTO {keyspace}.events (s, n) VALUES (?, ?)")
        session.execute(insert, ("a", 0))
        cluster.shutdown()

        expected = [0]
        for n, take_down in enumerate(restart_cycles(server), start=1):
            take_down()
            server.start()
            cluster = connect(server)
            session = cluster.connect(keyspace)
            rows = session.execute("SELECT n FROM events WHERE s = 'a'")
            assert [r.n for r in rows] == expected
            session.execute("INSERT INTO events (s, n) VALUES ('a', %s)", (n,))
            expected.append(n)
            cluster.shutdown()


@pytest.mark.rabbitmq
def test_rabbitmq_durable_queue_survives_stop_and_kill() -> None:
    import pika  # type: ignore[import-untyped]

    def publish(server: RabbitServer, queue: str, body: bytes) -> None:
        conn = pika.BlockingConnection(pika.URLParameters(server.url))
        channel = conn.channel()
        channel.confirm_delivery()  # the broker acknowledges only once it is on disk
        channel.queue_declare(queue, durable=True)
        channel.basic_publish(
            "",
            queue,
            body,
            pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
            mandatory=True,
        )
        conn.close()

    def peek_all(server: RabbitServer, queue: str) -> list[bytes]:
        """Every message in the queue, left in place (fetched, then requeued)."""
        conn = pika.BlockingConnection(pika.URLParameters(server.url))
        channel = conn.channel()
        bodies = []
        while True:
            method, _props, body = channel.basic_get(queue)
            if method is None:
                break
            bodies.append(body)
        conn.close()  # unacknowledged messages go back to the queue
        return bodies

    with RabbitServer() as server:
        queue = f"smoke-{uuid.uuid4()}"
        publish(server, queue, b"0")
        assert peek_all(server, queue) == [b"0"]

        expected = [b"0"]
        for n, take_down in enumerate(restart_cycles(server), start=1):
            take_down()
            server.start()
            assert sorted(peek_all(server, queue)) == expected
            publish(server, queue, str(n).encode())
            expected.append(str(n).encode())


def test_external_server_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the env var set nothing is started and restart tests must skip."""
    monkeypatch.setenv("PHOTON_TEST_REDIS_URL", "redis://db.example:6380/2")
    monkeypatch.setenv("PHOTON_TEST_POSTGRES_URL", "postgresql://u@db.example:5433/photon")
    monkeypatch.setenv("PHOTON_TEST_CASSANDRA", "db.example:9043")
    monkeypatch.setenv("PHOTON_TEST_AMQP_URL", "amqp://u:p@db.example:5673/%2F")
    monkeypatch.setenv("PHOTON_TEST_MONGO_URL", "mongodb://db.example:27018/")

    redis_server = RedisServer(appendonly=True)
    assert (redis_server.host, redis_server.port) == ("db.example", 6380)
    assert redis_server.url == "redis://db.example:6380/2"

    postgres = PostgresServer()
    assert postgres.url == "postgresql+psycopg://u@db.example:5433/photon"
    assert postgres.dsn == "postgresql://u@db.example:5433/photon"

    cassandra = CassandraServer()
    assert (cassandra.host, cassandra.port) == ("db.example", 9043)

    for server in (redis_server, postgres, cassandra, RabbitServer(), MongoServer()):
        assert server.external and not server.restartable
        with server:  # start/stop are no-ops
            server.stop()
            server.kill()
        assert not server.running
    assert os.environ["PHOTON_TEST_AMQP_URL"] == RabbitServer().url


def test_a_start_that_stalls_is_launched_once_more() -> None:
    from .servers import Server

    class Stalling(Server):
        """Its first launch never answers; its second does."""

        name = "stalling"
        env_var = "PHOTON_TEST_STALLING_UNUSED"
        start_timeout = 20.0
        relaunch_after = 0.5
        launches = 0

        def _launch(self) -> None:
            self.launches += 1
            self._spawn(["sleep", "60"])

        def _ready(self) -> bool:
            return self.launches >= 2

    server = Stalling()
    try:
        with pytest.warns(UserWarning, match="stalling not ready after 0s; launched once more"):
            server.start()
        assert server.launches == 2 and server.running
        assert len([p for p in server._procs if p.poll() is None]) == 1  # the stalled one is gone
    finally:
        server.close()
