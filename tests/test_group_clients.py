"""Consumer groups through the Python clients (blocking and async) and the `photon groups` command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from pathlib import Path

import orjson
import pytest

from photon.client.amqp_groups import AmqpGroupMember
from photon.client.asynchronous import AsyncPhotonClient
from photon.client.blocking import GroupMember, PhotonClient
from photon.core.errors import Conflict, NotFound, ValidationError

from .live import PHOTON, LiveServer, ServerProcess, event


def test_blocking_client_groups(live: LiveServer) -> None:
    with PhotonClient(live.url, "admin", str(live.config["admin.pass"])) as client:
        described = client.create_group("billing", stream="__category__:order", max_in_flight=5, max_retries=0)
        assert described["stream"] == "__category__:order" and described["max-in-flight"] == 5
        with pytest.raises(ValidationError, match="strategy must be one of"):
            client.create_group("bad", strategy="random")
        with pytest.raises(Conflict, match="consumer group 'billing' already exists"):
            client.create_group("billing")
        client.emit([event("order-1", n=1), event("shop-1", n=2), event("order-2", n=3)])
        with client.join_group("billing", "w1") as member:
            first = next(member)
            second = next(member)
            assert member.id == "w1"
            assert [first.event.stream_name, second.event.stream_name] == ["order-1", "order-2"]
            assert first.attempt == 1 and first.event.payload == {"n": 1}
            assert member.ack(first.event.order_id) == {"done": 1, "unknown": []}
            assert member.nack([second.event.order_id], "park", "out of stock")["done"] == 1
        assert [g["group-name"] for g in client.groups()] == ["billing"]
        assert client.group("billing")["parked"] == 1
        assert client.replay_parked("billing") == 1
        with client.join_group("billing") as member:
            again = next(member)
            assert again.event.order_id == second.event.order_id
            member.ack([again.event.order_id])
        client.emit([event("order-3", n=4), event("order-4", n=5)])
        with client.join_group("billing", "slow", max_in_flight=1) as member:
            assert next(member).event.payload == {"n": 4}
            (slow,) = client.group("billing")["members"]
            assert slow["max-in-flight"] == 1 and slow["in-flight"] == 1
        assert client.update_group("billing", filter={"event-types": ["placed"]})["filter"] == {
            "event-types": ["placed"]
        }
        assert client.update_group("billing", ack_timeout_ms=1000)["filter"] == {"event-types": ["placed"]}
        assert "filter" not in client.update_group("billing", filter=None)  # None removes the filter
        assert client.update_group("billing", ack_timeout_ms=1000)["ack-timeout-ms"] == 1000
        assert client.reset_group("billing", 1)["checkpoint"] == 0
        client.delete_group("billing")
        with pytest.raises(NotFound):
            client.group("billing")


def test_async_client_groups(live: LiveServer) -> None:
    async def scenario() -> None:
        async with AsyncPhotonClient(live.url, "admin", str(live.config["admin.pass"])) as client:
            await client.create_group("async", strategy="pinned")
            await client.emit([event("a-1", n=i) for i in range(3)])
            member = client.join_group("async", "m")
            got = []
            async for delivery in member:
                got.append(delivery)
                if len(got) == 3:
                    break
            assert [d.event.payload["n"] for d in got] == [0, 1, 2]
            assert (await member.ack([d.event.order_id for d in got]))["done"] == 3
            await member.close()
            assert (await client.group("async"))["acked"] == 3
            assert [g["group-name"] for g in await client.groups()] == ["async"]
            await client.delete_group("async")

    asyncio.run(scenario())


def test_http_members_joined_with_a_limit_stop_after_that_many_deliveries(live: LiveServer) -> None:
    # As a fetch of n: the iteration ends once the `limit` deliveries came, as the server gives the
    # member no more (it waited for ever); the member stays joined until it is closed.
    password = str(live.config["admin.pass"])
    with PhotonClient(live.url, "admin", password) as client:
        client.create_group("fetch", stream="orders")
        ids = [e.order_id for e in client.emit([event("orders", n=i) for i in range(3)])]
        got: list[int] = []

        def iterate(member: GroupMember | AmqpGroupMember) -> None:
            for delivery in member:
                got.append(delivery.event.order_id)
                member.ack(delivery.event.order_id)

        with client.join_group("fetch", limit=2) as member:
            reader = threading.Thread(target=iterate, args=(member,), daemon=True)
            reader.start()
            reader.join(10)
            assert not reader.is_alive(), f"the iteration did not end after the limit (got {got})"
            assert got == ids[:2]

    async def fetch() -> list[int]:
        async with (
            AsyncPhotonClient(live.url, "admin", password) as client,
            client.join_group("fetch", limit=1) as joined,
        ):
            async with asyncio.timeout(10):
                order_ids = [delivery.event.order_id async for delivery in joined]
            await joined.ack(order_ids)
            return order_ids

    assert asyncio.run(fetch()) == ids[2:]


def photon(args: list[str], cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTON_")}
    return subprocess.run([PHOTON, *args], cwd=cwd, capture_output=True, env=env, timeout=60, input=stdin)


def test_photon_groups_command(server_process: ServerProcess, tmp_path: Path) -> None:
    url = ["-url", server_process.url]
    created = photon(["groups", "create", "g", "-stream", "orders", "-max-retries", "2", "-serial", *url], tmp_path)
    assert created.returncode == 0, created.stderr
    assert orjson.loads(created.stdout)["serial"] is True
    bad = photon(["groups", "create", "h", "-filter", "{nope", *url], tmp_path)
    assert bad.returncode != 0 and b"-filter" in bad.stderr
    emitted = photon(["emit", orjson.dumps(event("orders", n=7)).decode(), *url], tmp_path)
    assert emitted.returncode == 0, emitted.stderr
    consumed = photon(["groups", "consume", "g", "-limit", "1", *url], tmp_path)
    assert consumed.returncode == 0, consumed.stderr
    (line,) = consumed.stdout.splitlines()
    delivery = orjson.loads(line)
    assert delivery["attempt"] == 1 and delivery["event"]["payload"] == {"n": 7}
    listed = photon(["groups", "list", *url], tmp_path)
    name, stream, strategy, checkpoint, members, in_flight = listed.stdout.decode().strip().split("\t")
    assert (members, in_flight) == ("0", "0")
    assert (name, stream, strategy) == ("g", "orders", "round-robin") and int(checkpoint) >= delivery["event"][
        "order-id"
    ]
    shown = photon(["groups", "show", "g", *url], tmp_path)
    assert orjson.loads(shown.stdout)["acked"] == 1
    assert photon(["groups", "update", "g", "-max-retries", "4", *url], tmp_path).returncode == 0
    filtered = photon(["groups", "update", "g", "-filter", '{"event-types": ["placed"]}', *url], tmp_path)
    assert orjson.loads(filtered.stdout)["filter"] == {"event-types": ["placed"]}, filtered.stderr
    kept = photon(["groups", "update", "g", "-max-retries", "5", *url], tmp_path)
    assert orjson.loads(kept.stdout)["filter"] == {"event-types": ["placed"]}
    assert "filter" not in orjson.loads(photon(["groups", "update", "g", "-filter", "null", *url], tmp_path).stdout)
    assert b"starts over" in photon(["groups", "reset", "g", "1", *url], tmp_path).stdout
    assert b"0 parked events" in photon(["groups", "replay-parked", "g", *url], tmp_path).stdout
    assert photon(["groups", "delete", "g", *url], tmp_path).returncode == 0
    missing = photon(["groups", "show", "g", *url], tmp_path)
    assert missing.returncode != 0 and b"no consumer group named 'g'" in missing.stderr


def test_photon_groups_consume_with_a_limit_takes_no_more_than_it_prints(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    # What a member takes and does not print goes back to the group counted as a delivery: taking
    # the group's max-in-flight would bring 20 events nearer to max-retries for each 2 printed, and
    # even one event taken after the last ack is parked by a group with max-retries 0. The member
    # joins with -limit as its limit of deliveries, so the server gives it none it will not print.
    url = ["-url", server_process.url]
    created = photon(
        ["groups", "create", "g", "-stream", "orders", "-max-in-flight", "20", "-max-retries", "0", *url], tmp_path
    )
    assert created.returncode == 0, created.stderr
    emitted = photon(["emit", *url], tmp_path, b"".join(orjson.dumps(event("orders", n=i)) + b"\n" for i in range(30)))
    assert emitted.returncode == 0, emitted.stderr
    for ack in ("-ack", "-no-ack"):
        consumed = photon(["groups", "consume", "g", "-limit", "2", ack, *url], tmp_path)
        assert consumed.returncode == 0, consumed.stderr
        assert len(consumed.stdout.splitlines()) == 2
    shown = orjson.loads(photon(["groups", "show", "g", *url], tmp_path).stdout)
    # -ack: two printed and acked, none taken after them; -no-ack: two printed and given back, parked
    # (max-retries 0) as a consumer that leaves without acking would have them.
    assert shown["acked"] == 2 and shown["delivered"] == 4 and shown["parked"] == 2, shown
    consumed = photon(["groups", "consume", "g", "-limit", "3", *url], tmp_path)
    assert [orjson.loads(line)["attempt"] for line in consumed.stdout.splitlines()] == [1, 1, 1], consumed.stderr
    shown = orjson.loads(photon(["groups", "show", "g", *url], tmp_path).stdout)
    assert shown["acked"] == 5 and shown["delivered"] == 7 and shown["parked"] == 2 and shown["waiting"] == 23, shown


def test_photon_groups_consume_says_so_when_the_server_ends_its_membership(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    url = ["-url", server_process.url]
    assert photon(["groups", "create", "g", "-stream", "orders", *url], tmp_path).returncode == 0
    assert photon(["emit", orjson.dumps(event("orders", n=1)).decode(), *url], tmp_path).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTON_")}
    consumer = subprocess.Popen(
        [PHOTON, "groups", "consume", "g", *url], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert consumer.stdout is not None
        first = orjson.loads(consumer.stdout.readline())
        assert first["event"]["payload"] == {"n": 1}
        deadline = time.monotonic() + 30
        while orjson.loads(photon(["groups", "show", "g", *url], tmp_path).stdout)["acked"] < 1:
            assert time.monotonic() < deadline, "the delivery was not acknowledged"
            time.sleep(0.1)
        assert photon(["groups", "reset", "g", "1", *url], tmp_path).returncode == 0
        _, stderr = consumer.communicate(timeout=30)
    finally:
        consumer.kill()
    assert consumer.returncode != 0, stderr
    assert b"the server ended this member of group 'g' after 1 delivery: the group was reset" in stderr, stderr
