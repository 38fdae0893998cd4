"""Consumer groups over Photon's AMQP protocol, against a real RabbitMQ broker and a real store."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pika
import pytest

from photon.client.amqp import AmqpClient, AmqpTransport
from photon.client.amqp_async import AsyncAmqpClient
from photon.client.amqp_calls import Call
from photon.client.amqp_groups import AmqpGroupMember
from photon.client.blocking import PhotonClient
from photon.client.groups import GroupDelivery
from photon.core.errors import Conflict, NotFound, ValidationError

from .servers import RabbitServer
from .test_amqp import Photon, start_broker, wait_until

pytestmark = pytest.mark.rabbitmq


@pytest.fixture(scope="module")
def broker() -> Iterator[RabbitServer]:
    server = start_broker()
    yield server
    server.close()


@pytest.fixture(scope="module")
def photon(broker: RabbitServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Photon]:
    path = tmp_path_factory.mktemp("amqp-groups") / "store.db"
    server = Photon(path, broker.url, f"g{uuid.uuid4().hex[:10]}").start()
    yield server
    server.close()


@pytest.fixture
def client(photon: Photon) -> Iterator[AmqpClient]:
    with photon.client(timeout=20.0) as amqp:
        yield amqp


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def emit(client: AmqpClient, stream: str, count: int) -> list[int]:
    stored = client.emit([{"stream-name": stream, "event-type": "placed", "payload": {"n": n}} for n in range(count)])
    return [event["order-id"] for event in stored]


def test_members_share_the_events_once_each_when_all_ack(photon: Photon, client: AmqpClient) -> None:
    stream, group = unique("orders"), unique("billing")
    # Through PhotonClient with the AMQP transport, as over HTTP.
    admin = PhotonClient(transport=AmqpTransport(photon.url, service=photon.name))
    created = admin.create_group(group, stream=stream, max_in_flight=4, ack_timeout_ms=60_000)
    assert created["group-name"] == group and created["stream"] == stream
    with pytest.raises(Conflict, match="already exists"):
        admin.create_group(group, stream=stream)

    got: dict[str, list[GroupDelivery]] = {}
    errors: list[BaseException] = []

    def consume(name: str) -> None:
        try:
            transport = AmqpTransport(photon.url, service=photon.name)
            with PhotonClient(transport=transport) as member_client, member_client.join_group(group, name) as member:
                assert member.id == name
                for delivery in member:
                    got.setdefault(name, []).append(delivery)
                    member.ack(delivery.event.order_id)
                assert getattr(member, "ended", None) is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=consume, args=(f"m{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(admin.group(group)["members"]) == 3 or bool(errors), what="three members")
    # Written while the members consume, by two writers at once.
    written: list[int] = []

    def write(writer: AmqpClient) -> None:
        for _ in range(3):
            written.extend(emit(writer, stream, 10))

    second = photon.client(timeout=20.0)
    writers = [threading.Thread(target=write, args=(c,)) for c in (client, second)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(30)
    second.close()
    ids = sorted(written)
    assert len(ids) == 60
    wait_until(lambda: sum(len(v) for v in got.values()) >= 60 or bool(errors), what="every event delivered")
    wait_until(lambda: admin.group(group)["checkpoint"] == ids[-1], what="the checkpoint past every event")
    described = admin.group(group)
    assert described["acked"] == 60 and described["in-flight"] == 0 and len(described["members"]) == 3
    admin.delete_group(group)  # ends the memberships: each member's iteration stops
    for thread in threads:
        thread.join(20)
    assert not errors, errors
    delivered = [d.event.order_id for deliveries in got.values() for d in deliveries]
    assert sorted(delivered) == ids  # each exactly once
    assert all(d.attempt == 1 for deliveries in got.values() for d in deliveries)
    assert len(got) == 3 and all(got.values())  # shared among the three
    assert group not in [g["group-name"] for g in admin.groups()]
    admin.close()


def test_nack_retry_redelivers_and_max_retries_parks(client: AmqpClient) -> None:
    stream, group = unique("orders"), unique("retry")
    client.create_group(group, stream=stream, max_retries=1, max_in_flight=10)
    first, second, third = emit(client, stream, 3)
    with client.join_group(group) as member:
        seen = [next(member) for _ in range(3)]
        assert [(d.event.order_id, d.attempt) for d in seen] == [(first, 1), (second, 1), (third, 1)]
        assert seen[0].event.payload == {"n": 0} and seen[0].event.stream_name == stream
        assert member.nack([first], "retry", "try again") == {"done": 1, "unknown": []}
        assert member.nack([second], "park", "poison") == {"done": 1, "unknown": []}
        assert member.nack(third, "skip") == {"done": 1, "unknown": []}
        again = next(member)
        assert (again.event.order_id, again.attempt) == (first, 2)
        member.nack(first, "retry", "still failing")  # past max-retries (1): parked
        wait_until(lambda: client.group(group)["parked"] == 2, what="two events parked")
        described = client.group(group)
        assert described["checkpoint"] == third and described["skipped"] == 1 and described["retried"] == 1
    parked = list(client.replay(described["parked-stream"], "cold"))
    by_id = {p["payload"]["order-id"]: p["payload"] for p in parked}
    assert set(by_id) == {first, second}
    assert by_id[second]["reason"] == "poison"
    assert "still failing" in by_id[first]["reason"] and by_id[first]["attempts"] == 2
    assert by_id[first]["event"]["payload"] == {"n": 0}

    # Parked events go back to the group on request, delivered again until acked.
    assert client.replay_parked(group) == 2
    with client.join_group(group) as member:
        back = sorted([next(member), next(member)], key=lambda d: d.event.order_id)
        assert [d.event.order_id for d in back] == [first, second]
        assert member.ack([first, second]) == {"done": 2, "unknown": []}
        assert member.ack([first]) == {"done": 0, "unknown": [first]}


def test_deliveries_carry_order_id_and_attempt_headers(photon: Photon, client: AmqpClient) -> None:
    stream, group = unique("orders"), unique("raw")
    client.create_group(group, stream=stream)
    (order_id,) = emit(client, stream, 1)
    connection = pika.BlockingConnection(pika.URLParameters(photon.url))
    try:
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        join = pika.BasicProperties(type="group-join", reply_to=queue, correlation_id="c-1")
        channel.basic_publish("", photon.names.commands, orjson.dumps({"group-name": group, "member": "w1"}), join)
        messages = drain(connection, channel, queue, 2)
        assert [p.type for _, p, _ in messages] == ["group-joined", "event"]
        assert orjson.loads(messages[0][2]) == {"group-name": group, "member": "w1"}
        _, properties, body = messages[1]
        assert properties.correlation_id == "c-1" and properties.headers["attempt"] == 1
        assert properties.headers["order-id"] == order_id == orjson.loads(body)["order-id"]
        assert properties.message_id == orjson.loads(body)["id"]
        # Leaving hands the event back and says so, last.
        leave = pika.BasicProperties(type="group-leave", reply_to=queue, correlation_id="c-1")
        channel.basic_publish("", photon.names.commands, b"", leave)
        (ended,) = drain(connection, channel, queue, 1)
        assert ended[1].type == "group-ended" and orjson.loads(ended[2])["reason"] == "left"
        wait_until(lambda: client.group(group)["members"] == [], what="the member gone")
        assert client.group(group)["waiting"] == 1
    finally:
        connection.close()


def test_take_gives_every_delivery_received_for_one_ack(client: AmqpClient) -> None:
    stream, group = unique("orders"), unique("batch")
    client.create_group(group, stream=stream, max_in_flight=50)
    ids = emit(client, stream, 30)
    with client.join_group(group) as member:
        taken: list[GroupDelivery] = []
        while len(taken) < 30:
            batch = member.take(5.0)
            assert batch, "nothing delivered"
            taken.extend(batch)
        assert [d.event.order_id for d in taken] == ids
        assert member.ack([d.event.order_id for d in taken]) == {"done": 30, "unknown": []}
        assert member.take(0.3) == []
    assert client.group(group)["checkpoint"] == ids[-1]


def test_a_member_joined_with_a_limit_stops_after_that_many_deliveries(photon: Photon, client: AmqpClient) -> None:
    # As a fetch of n: the member's iteration (and `take`) ends once the `limit` deliveries came, as
    # the server gives it no more; it waited for ever. The member stays joined until it leaves.
    stream, group = unique("orders"), unique("fetch")
    client.create_group(group, stream=stream)
    ids = emit(client, stream, 5)
    got: list[int] = []

    def iterate(member: AmqpGroupMember) -> None:
        for delivery in member:
            got.append(delivery.event.order_id)
            member.ack(delivery.event.order_id)

    with client.join_group(group, limit=2) as member:
        reader = threading.Thread(target=iterate, args=(member,), daemon=True)
        reader.start()
        reader.join(10)
        assert not reader.is_alive(), f"the iteration did not end after the limit (got {got})"
        assert got == ids[:2] and member.ended is None
        began = time.monotonic()
        assert member.take(5.0) == []
        assert time.monotonic() - began < 1
        assert [m["in-flight"] for m in client.group(group)["members"]] == [0]
    with client.join_group(group, limit=2) as member:
        taken = member.take(5.0)
        while len(taken) < 2:
            more = member.take(5.0)
            assert more, "nothing delivered"
            taken.extend(more)
        assert [d.event.order_id for d in taken] == ids[2:4]
        assert member.take(5.0) == [] and list(member) == []
        member.ack([d.event.order_id for d in taken])

    async def fetch() -> list[int]:
        async with (
            AsyncAmqpClient(photon.url, service=photon.name, timeout=20.0) as amqp,
            amqp.join_group(group, limit=1) as joined,
        ):
            async with asyncio.timeout(10):
                order_ids = [delivery.event.order_id async for delivery in joined]
                assert await joined.take(5.0) == []
            await joined.ack(order_ids)
            return order_ids

    assert asyncio.run(fetch()) == ids[4:]


def test_photons_checks_that_a_members_queue_is_there_log_nothing(
    client: AmqpClient, caplog: pytest.LogCaptureFixture
) -> None:
    # While a member holds unacknowledged events Photon checks every second that its queue is still
    # there; the broker answers on a channel it closes (the queue is another connection's exclusive
    # one), which pika logged as a warning, each time.
    stream, group = unique("orders"), unique("probed")
    client.create_group(group, stream=stream)
    emit(client, stream, 1)
    caplog.set_level(logging.WARNING, "pika")
    with client.join_group(group) as member:
        (held,) = member.take(5.0)
        time.sleep(3.5)
        assert not [r.getMessage() for r in caplog.records if r.name.startswith("pika")]
        member.ack(held.event.order_id)


def test_cancel_ends_a_membership_like_group_leave(photon: Photon, client: AmqpClient) -> None:
    group = unique("cancel")
    client.create_group(group, stream=unique("orders"))
    connection = pika.BlockingConnection(pika.URLParameters(photon.url))
    try:
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        join = pika.BasicProperties(type="group-join", reply_to=queue, correlation_id="c-2")
        channel.basic_publish("", photon.names.commands, orjson.dumps({"group-name": group}), join)
        assert drain(connection, channel, queue, 1)[0][1].type == "group-joined"
        cancel = pika.BasicProperties(type="cancel", reply_to=queue, correlation_id="c-2")
        channel.basic_publish("", photon.names.commands, b"", cancel)
        (ended,) = drain(connection, channel, queue, 1)
        assert ended[1].type == "group-ended" and orjson.loads(ended[2])["reason"] == "left"
        assert client.group(group)["members"] == []
    finally:
        connection.close()


def drain(connection: Any, channel: Any, queue: str, count: int) -> list[tuple[Any, Any, bytes]]:
    got: list[tuple[Any, Any, bytes]] = []
    deadline = time.monotonic() + 60
    while len(got) < count and time.monotonic() < deadline:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            connection.process_data_events(0.05)
            continue
        got.append((method, properties, body))
    assert len(got) == count, got
    return got


MEMBER = """
import sys
from photon.client.amqp import AmqpClient

client = AmqpClient(sys.argv[1], service=sys.argv[2])
member = client.join_group(sys.argv[3], "doomed")
print("joined", flush=True)
for delivery in member:
    print(delivery.event.order_id, flush=True)
"""


@pytest.mark.timeout(90)
def test_a_killed_members_events_go_to_another(photon: Photon, client: AmqpClient, tmp_path: Path) -> None:
    stream, group = unique("orders"), unique("crash")
    # A long ack timeout: only the member's going away can bring its events back in time.
    client.create_group(group, stream=stream, max_in_flight=5, ack_timeout_ms=300_000)
    process = subprocess.Popen(
        [sys.executable, "-c", MEMBER, photon.url, photon.name, group], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "joined"
        ids = emit(client, stream, 8)
        held = [int(process.stdout.readline()) for _ in range(5)]
        assert held == ids[:5]
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    started = time.monotonic()
    with photon.client(timeout=20.0) as other, other.join_group(group, "survivor") as member:
        got: dict[int, int] = {}
        for delivery in member:
            got[delivery.event.order_id] = delivery.attempt
            member.ack(delivery.event.order_id)
            if len(got) == len(ids):
                break
    assert sorted(got) == ids
    assert all(got[i] == 2 for i in held) and all(got[i] == 1 for i in ids[5:])
    assert time.monotonic() - started < 15  # noticed when its queue went, not after the ack timeout
    assert "doomed" not in [m["member"] for m in client.group(group)["members"]]


def test_bad_requests_are_answered_and_change_nothing(photon: Photon, client: AmqpClient) -> None:
    stream, group = unique("orders"), unique("strict")
    client.create_group(group, stream=stream)
    (order_id,) = emit(client, stream, 1)
    with pytest.raises(NotFound, match="no consumer group named"):
        client.join_group(unique("missing"))
    with pytest.raises(NotFound, match="no consumer group named"):
        client.ack_group(unique("missing"), [order_id])
    with client.join_group(group) as member:
        assert next(member).event.order_id == order_id
        before = client.group(group)
        for bad in (["x"], [0], [], [order_id, -1], [True]):
            with pytest.raises(ValidationError, match="order-ids") as caught:
                member.ack(bad)
            assert caught.value.field == "order-ids"
        with pytest.raises(ValidationError, match="action must be one of retry, park, skip") as caught:
            member.nack([order_id], "explode")
        assert caught.value.field == "action"
        with pytest.raises(ValidationError, match="unknown field 'order'"):
            client.call(Call("group-ack", {"group-name": group, "order": [order_id]}))
        with pytest.raises(ValidationError, match="group-name"):
            client.call(Call("group-ack", {"order-ids": [order_id]}))
        with pytest.raises(ValidationError, match="unknown group key 'colour'"):
            client.create_group(unique("bad"), stream=stream, colour="red")
        after = client.group(group)
        assert {k: after[k] for k in ("acked", "in-flight", "checkpoint", "parked", "retried")} == {
            k: before[k] for k in ("acked", "in-flight", "checkpoint", "parked", "retried")
        }
        assert member.ack(order_id) == {"done": 1, "unknown": []}
    # A mistyped request type is refused with the list of the known ones.
    connection = pika.BlockingConnection(pika.URLParameters(photon.url))
    try:
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        request = pika.BasicProperties(type="group-jion", reply_to=queue, correlation_id="x")
        channel.basic_publish("", photon.names.commands, orjson.dumps({"group-name": group}), request)
        ((_, properties, body),) = drain(connection, channel, queue, 1)
        assert properties.type == "error" and "group-join" in orjson.loads(body)["error"]
    finally:
        connection.close()


def test_a_members_own_max_in_flight_and_the_end_of_a_membership(photon: Photon, client: AmqpClient) -> None:
    stream, group = unique("orders"), unique("prefetch")
    client.create_group(group, stream=stream, max_in_flight=10)
    ids = emit(client, stream, 4)
    with pytest.raises(ValidationError, match="max-in-flight") as caught:
        client.join_group(group, max_in_flight=0)
    assert caught.value.field == "max-in-flight"
    member = client.join_group(group, "one-at-a-time", max_in_flight=1)
    first = next(member)
    wait_until(lambda: client.group(group)["waiting"] == 3, what="three events waiting")
    assert client.group(group)["members"][0]["max-in-flight"] == 1
    with pytest.raises(ValidationError, match="at most 2000 characters"):
        member.nack(first.event.order_id, "park", "x" * 2001)
    member.ack(first.event.order_id)
    assert next(member).event.order_id == ids[1]
    # A reset stops the group: the membership ends, saying why; the member joins again.
    client.reset_group(group, ids[2])
    assert list(member) == []
    assert member.ended is not None and "join again" in member.ended
    member.close()
    with client.join_group(group, "same", max_in_flight=1) as again:
        assert next(again).event.order_id == ids[2]
        # Joining under a present member's id replaces it: the first one is told, its event goes on.
        with photon.client(timeout=20.0) as other, other.join_group(group, "same") as replacement:
            assert list(again) == [] and again.ended == "replaced: another member joined under the same id"
            assert next(replacement).event.order_id == ids[2]


def test_members_are_told_when_photon_stops(broker: RabbitServer, tmp_path: Path) -> None:
    photon = Photon(tmp_path / "stopping.db", broker.url, f"s{uuid.uuid4().hex[:10]}").start()
    try:
        with photon.client(timeout=20.0) as client:
            client.create_group("g", stream="orders")
            emit(client, "orders", 1)
            member = client.join_group("g")
            next(member)
            photon.stop()
            assert list(member) == []
            assert member.ended == "service stopping"
            member.close()
    finally:
        photon.loop.close()
        photon.store.close()


def test_photons_lost_broker_connection_ends_members_and_hands_their_events_back(
    photon: Photon, client: AmqpClient
) -> None:
    stream, group = unique("orders"), unique("lost")
    client.create_group(group, stream=stream, ack_timeout_ms=300_000)
    (order_id,) = emit(client, stream, 1)
    member = client.join_group(group)
    assert next(member).attempt == 1
    link = photon.service._link  # drop Photon's side of the connection, as a network failure would
    assert link is not None
    generation = link.generation
    link.call(link._close)
    assert list(member) == []  # told once Photon is connected again
    assert member.ended == "connection lost" and link.generation > generation
    member.close()
    with client.join_group(group) as again:
        delivery = next(again)
        assert (delivery.event.order_id, delivery.attempt) == (order_id, 2)
        again.ack(order_id)
