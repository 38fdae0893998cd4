"""The contract suite, the writer lease and the server-fault test on a real Redis server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from photon.core.backend import Query
from photon.core.errors import StoreLocked
from photon.core.store import EventStore
from photon.testing import BackendContract, event

from .conftest import restartable
from .faults import (
    KILLED_WRITER_LEASE_SECONDS,
    open_once_the_lease_is_over,
    run_server_fault,
    writer_killed_while_holding_the_lock,
)
from .kill_trials import run_kill_trials

pytestmark = pytest.mark.redis

KILLS = 6
"""Server kills mid-commit in CI; ``python -m benchmarks.reliability`` runs many more."""


def fresh_config(redis_server: Any, **extra: str) -> dict[str, Any]:
    """A store of its own on the shared server: a fresh key prefix."""
    return {
        "db.backend": "redis",
        "redis.url": redis_server.url,
        "redis.prefix": f"t-{uuid.uuid4().hex[:12]}",
        **extra,
    }


class TestRedis(BackendContract):
    @pytest.fixture
    def store_config(self, redis_server: Any) -> dict[str, Any]:
        return fresh_config(redis_server)


def test_keys_live_under_one_hash_tag(redis_server: Any) -> None:
    import redis

    config = fresh_config(redis_server)
    with EventStore.open(config) as store:
        store.append([event("a"), event("b")])
        store.write_checkpoint("k", 1)
    client = redis.Redis.from_url(redis_server.url)
    keys = sorted(k.decode() for k in client.scan_iter(match="{" + config["redis.prefix"] + "}:*"))
    tag = "{" + config["redis.prefix"] + "}"
    assert keys == sorted(
        f"{tag}:{name}"
        for name in ("all", "events", "ids", "versions", "meta", "checkpoints", "s:a", "s:b", "c:a", "c:b", "t:Created")
    )
    client.close()


def test_a_store_from_before_the_read_indexes_reads_by_scanning_then_gets_them(
    redis_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import redis

    from photon.core.backend import Query

    config = fresh_config(redis_server)
    with EventStore.open(config) as store:
        store.append(
            [
                dict(
                    event(f"cart-{i % 3}" if i % 2 else f"shop-{i}", "Rare" if i % 5 == 0 else "Common"),
                    tags=[f"t{i % 4}"],
                )
                for i in range(40)
            ]
        )
        everything = list(store.read())
    client = redis.Redis.from_url(redis_server.url)
    tag = "{" + config["redis.prefix"] + "}"
    for pattern in ("c:*", "t:*", "g:*"):  # as a store written before the read indexes
        for key in list(client.scan_iter(match=f"{tag}:{pattern}")):
            client.delete(key)
    client.hdel(f"{tag}:meta", "indexes")
    carts = [e for e in everything if e.stream_name.startswith("cart-")]
    rare = [e for e in everything if e.event_type == "Rare"]
    tagged = [e for e in everything if e.order_id % 4 == 2]
    try:
        with EventStore.open(config, read_only=True) as reader:  # cannot build them: scans, and says so
            assert not reader.backend._indexed  # type: ignore[attr-defined]
            assert reader.backend.read(Query(categories=frozenset({"cart"}))) == carts
            assert reader.backend.read(Query(event_types=frozenset({"Rare"}))) == rare
            assert list(reader.read_matching([{"tags": ["t1"]}])) == tagged
        with caplog.at_level(logging.INFO, logger="photon.backends.redis"), EventStore.open(config) as store:
            assert store.backend._indexed  # type: ignore[attr-defined]
            assert client.zcard(f"{tag}:c:cart") == len(carts)
            assert store.backend.read(Query(categories=frozenset({"cart"}))) == carts
            assert store.backend.read(Query(event_types=frozenset({"Rare"}))) == rare
            assert list(store.read_matching([{"tags": ["t1"]}])) == tagged
        assert "read indexes complete (40 events)" in caplog.text
    finally:
        client.close()


def test_writer_lease_of_a_killed_writer_expires(redis_server: Any) -> None:
    config = fresh_config(redis_server, **{"redis.lease.ms": str(int(KILLED_WRITER_LEASE_SECONDS * 1000))})
    writer_killed_while_holding_the_lock(config)
    with pytest.raises(StoreLocked, match=r"one process writes a store") as refused:
        EventStore.open(config)
    assert "pid" in str(refused.value)
    with open_once_the_lease_is_over(config, KILLED_WRITER_LEASE_SECONDS) as store:
        (stored,) = store.append(event("killed"))
        assert stored.order_id == 2 and stored.stream_version == 2


def test_a_writer_whose_lease_was_taken_over_cannot_append(redis_server: Any) -> None:
    import redis

    config = fresh_config(redis_server)
    with EventStore.open(config) as store:
        store.append(event())
        client = redis.Redis.from_url(redis_server.url)
        client.set("{" + config["redis.prefix"] + "}:writer", "pid 1 on elsewhere")
        with pytest.raises(StoreLocked, match="pid 1 on elsewhere"):
            store.append(event())
        assert [e.order_id for e in store.backend.read(Query())] == [1]
        client.delete("{" + config["redis.prefix"] + "}:writer")
        client.close()


def test_bad_prefix_is_refused() -> None:
    from photon.core.errors import BackendError

    with pytest.raises(BackendError, match=r"redis\.prefix must not contain braces"):
        EventStore.open({"db.backend": "redis", "redis.prefix": "a{b}"})


def test_unreachable_server_is_a_clear_error() -> None:
    from photon.core.errors import BackendUnavailable

    from .servers import free_port

    with pytest.raises(BackendUnavailable, match="redis: cannot reach the server"):
        EventStore.open({"db.backend": "redis", "redis.url": f"redis://127.0.0.1:{free_port()}/0"})


@pytest.mark.slow
def test_server_killed_during_appends(redis_server: Any) -> None:
    restartable(redis_server)
    report = run_server_fault(fresh_config(redis_server), redis_server.kill, redis_server.start)
    assert report.errors


@pytest.mark.slow
def test_server_killed_mid_commit_readers_end_equal_to_a_cold_read(redis_server: Any, tmp_path: Any) -> None:
    restartable(redis_server)
    report = run_kill_trials(redis_server, _server_settings(redis_server), kills=KILLS, work_dir=tmp_path)
    assert report.kills == KILLS
    assert report.statuses[200] > 0


def _server_settings(redis_server: Any) -> dict[str, str]:
    config = fresh_config(redis_server)
    return {key: str(value) for key, value in config.items()}


def test_a_server_that_came_back_empty_stops_the_writer(tmp_path: Any) -> None:
    """Without an append-only file a restarted Redis is empty: the writer refuses to number on."""
    from photon.core.errors import StoreLost

    from .servers import RedisServer

    with RedisServer(appendonly=False) as server:
        config = fresh_config(server)
        with EventStore.open(config) as store:
            store.append([event("a"), event("a"), event("b")])
            server.kill()
            server.start()
            with pytest.raises(StoreLost, match=r"the store's keys are gone .*append-only file"):
                store.append(event("a"))
            # The writer stays stopped, for every kind of write.
            with pytest.raises(StoreLost):
                store.append(event("c"))
            with pytest.raises(StoreLost):
                store.delete_stream("a")
            assert store.backend.last_order_id() == 0
