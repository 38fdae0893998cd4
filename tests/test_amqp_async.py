"""The asyncio client's AMQP transport (`photon.client.amqp_async`, aio-pika) against a real RabbitMQ
broker and a real store with its AMQP service."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from photon.client.amqp import AmqpTransport
from photon.client.amqp_async import AsyncAmqpClient, AsyncAmqpTransport
from photon.client.asynchronous import AsyncPhotonClient
from photon.client.blocking import PhotonClient
from photon.client.groups import GroupDelivery
from photon.core.errors import (
    AppendConditionFailed,
    Conflict,
    InternalStreamError,
    NotFound,
    PhotonError,
    StreamDeleted,
    ValidationError,
    VersionConflict,
)
from photon.core.events import RecordedEvent
from photon.core.subscriptions import CaughtUp
from photon.wire.amqp import BrokerUnavailable

from .servers import RabbitServer, free_port
from .test_amqp import Photon, event, message_count, start_broker

pytestmark = pytest.mark.rabbitmq

T = TypeVar("T")


@pytest.fixture(scope="module")
def broker() -> Iterator[RabbitServer]:
    server = start_broker()
    yield server
    server.close()


@pytest.fixture(scope="module")
def photon(broker: RabbitServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Photon]:
    path = tmp_path_factory.mktemp("amqp-async") / "store.db"
    server = Photon(path, broker.url, f"a{uuid.uuid4().hex[:10]}").start()
    yield server
    server.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), 120))  # type: ignore[arg-type]


def client_of(photon: Photon, **options: Any) -> AsyncPhotonClient:
    return AsyncPhotonClient(transport=AsyncAmqpTransport(photon.url, service=photon.name, **options))


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# -- emit and replay --------------------------------------------------------------------------


def test_emit_and_replay_through_the_async_client(photon: Photon) -> None:
    stream = unique("orders")

    async def scenario() -> None:
        async with client_of(photon) as client:
            one = await client.emit(event(stream, n=1))
            assert isinstance(one, RecordedEvent) and one.stream_name == stream and one.stream_version == 1
            many = await client.emit([event(stream, n=2), event(stream, n=3)], expected_version=1)
            assert [e.stream_version for e in many] == [2, 3]
            with pytest.raises(VersionConflict) as conflict:
                await client.emit(event(stream), expected_version=1)
            assert conflict.value.current == 3
            other = unique("other")
            both = await client.emit(
                [event(stream, n=4), event(other, n=1)], expected_versions={stream: 3, other: "no-stream"}
            )
            assert [(e.stream_name, e.stream_version) for e in both] == [(stream, 4), (other, 1)]
            tagged = await client.emit({**event(other), "tags": [f"k:{other}"]})
            with pytest.raises(AppendConditionFailed) as failed:
                await client.emit(event(stream), condition={"query": [{"tags": [f"k:{other}"]}], "after": 0})
            assert failed.value.order_id == tagged.order_id

            cold = [e async for e in client.replay(stream, stream_type="cold")]
            assert [e.payload["n"] for e in cold] == [1, 2, 3, 4]  # type: ignore[union-attr]
            assert cold == list(photon.store.read(stream))
            tail = [e async for e in client.replay(stream, stream_type="cold", from_version=3, limit=1)]
            assert [e.stream_version for e in tail] == [3]  # type: ignore[union-attr]

            live = client.replay(stream, stream_type="hot-cold", from_version=4)
            assert (await anext(live)).stream_version == 4  # type: ignore[union-attr]
            caught_up = await anext(live)
            assert isinstance(caught_up, CaughtUp)
            await client.emit(event(stream, n=5))
            assert (await anext(live)).payload == {"n": 5}  # type: ignore[union-attr]
            await live.aclose()  # type: ignore[attr-defined]

    run(scenario)


def test_leaving_a_live_replay_cancels_it_on_the_server(photon: Photon) -> None:
    stream = unique("orders")

    def replays() -> int:
        return int(photon.service.stats()["replays"])

    async def running(count: int) -> bool:
        return replays() == count

    async def scenario() -> None:
        await wait_for(lambda: running(0), "no replay from earlier tests")
        async with client_of(photon) as client:
            await client.emit(event(stream))
            async for item in client.replay(stream, stream_type="hot-cold"):
                if isinstance(item, CaughtUp):
                    assert replays() == 1
                    break  # the end of the loop closes the replay
            await wait_for(lambda: running(0), "the replay ended on the server")
            live = client.replay(stream, stream_type="hot")
            assert isinstance(await anext(live), CaughtUp)
            await live.aclose()  # type: ignore[attr-defined]
            await wait_for(lambda: running(0), "the hot replay ended on the server")

    run(scenario)


def test_filtered_and_category_replays_over_amqp(photon: Photon) -> None:
    account, orders = f"acct{uuid.uuid4().hex[:8]}", f"ord{uuid.uuid4().hex[:8]}"

    async def scenario() -> list[int]:
        async with client_of(photon) as client:
            stored = await client.emit(
                [event(f"{account}-1", "Opened"), event(f"{orders}-1", "Placed"), event(f"{account}-2", "Deposited")]
            )
            ids = [e.order_id for e in stored]

            async def cold(stream: str, **options: Any) -> list[int]:
                return [e.order_id async for e in client.replay(stream, stream_type="cold", **options)]  # type: ignore[union-attr]

            assert await cold(f"__category__:{account}") == [ids[0], ids[2]]
            assert await cold("__all__", from_=ids[0], filter={"stream-prefix": orders}) == [ids[1]]
            assert await cold("__all__", from_=ids[0], filter={"category": account, "stream-regex": "-2$"}) == [ids[2]]
            with pytest.raises(ValidationError, match="stream-regex is not a valid regular expression"):
                await cold("__all__", filter={"stream-regex": "("})
            with pytest.raises(ValidationError, match="not one stream"):  # refused by the server
                await cold(f"{orders}-1", filter={"stream-prefix": "x"})
            return ids

    ids = run(scenario)
    # The blocking client's AMQP transport takes the same filter.
    with PhotonClient(transport=AmqpTransport(photon.url, service=photon.name)) as blocking:
        typed = blocking.replay("__all__", stream_type="cold", from_=ids[0], filter={"event-type-prefix": "Dep"})
        assert [e.order_id for e in typed] == [ids[2]]  # type: ignore[union-attr]


def test_a_channel_closed_under_a_publish_is_a_lost_connection_and_the_emit_is_sent_again(photon: Photon) -> None:
    # During a broker restart, aiormq refuses a publish on the channel the broker has just closed
    # with ChannelInvalidStateError (a RuntimeError): the emit must be re-sent, not fail.
    import aio_pika

    stream = unique("restarted")

    async def scenario() -> None:
        async with client_of(photon) as client:
            transport = client.transport
            assert isinstance(transport, AsyncAmqpTransport)
            channel = await transport.client._connect()
            exchange = channel.default_exchange
            publish, refused = exchange.publish, []

            async def closed_once(*args: Any, **kwargs: Any) -> Any:
                if not refused:
                    refused.append(True)
                    raise aio_pika.exceptions.ChannelInvalidStateError("the channel is closed")
                return await publish(*args, **kwargs)

            exchange.publish = closed_once  # type: ignore[method-assign]
            stored = await client.emit({**event(stream, n=1), "id": f"{stream}-1"})
            assert refused and stored.stream_name == stream and stored.stream_version == 1
            assert [e.event_id for e in photon.store.read(stream)] == [f"{stream}-1"]  # stored once

    run(scenario)


def test_concurrent_emits_on_one_client_each_get_their_own_events(photon: Photon) -> None:
    streams = [unique("s") for _ in range(4)]

    async def scenario() -> None:
        async with client_of(photon) as client:

            async def emitter(stream: str) -> list[int]:
                return [(await client.emit(event(stream, n=i))).stream_version for i in range(20)]

            versions = await asyncio.gather(*(emitter(s) for s in streams))
            assert all(v == list(range(1, 21)) for v in versions)
            many = await client.transport.group_calls.emit_many(  # type: ignore[attr-defined]
                [[event(streams[0], n=i)] for i in range(10)], window=4
            )
            assert sorted(e[0]["stream-version"] for e in many) == list(range(21, 31))

    run(scenario)


def test_bad_input_is_a_clear_error_and_nothing_is_stored(photon: Photon) -> None:
    stream = unique("strict")

    async def scenario() -> None:
        async with client_of(photon) as client:
            last = photon.store.last_order_id()
            with pytest.raises(ValidationError, match="missing required field 'payload'") as caught:
                await client.emit({"stream-name": stream, "event-type": "x"})
            assert caught.value.field == "payload"
            with pytest.raises(ValidationError, match="event-type"):
                await client.emit([event(stream), {"stream-name": stream, "payload": {}}])  # one bad: none stored
            with pytest.raises(InternalStreamError):
                await client.emit(event("__config__"))
            assert photon.store.last_order_id() == last
            # Checked before anything is sent, as the server checks it.
            with pytest.raises(ValidationError, match="stream-type"):
                await anext(client.replay(stream, stream_type="warm"))
            # Refused by the server, and the refusal reaches the replay.
            with pytest.raises(ValidationError, match="from-version applies to a stream"):
                [e async for e in client.replay("__all__", stream_type="cold", from_version=2)]
            with pytest.raises(ValidationError, match="max-count"):
                await client.set_stream_metadata(stream, {"max-count": 0})
            with pytest.raises(NotFound):
                await client.delete_stream(unique("missing"))
            # What only the HTTP API serves says so.
            with pytest.raises(PhotonError, match="served over HTTP"):
                await client.read(stream)
            with pytest.raises(PhotonError, match="served over HTTP"):
                await client.projections()
            with pytest.raises(NotImplementedError, match="served over HTTP"):
                await client.streams()
            with pytest.raises(NotImplementedError, match="served over HTTP"):
                client.subscribe("worker", stream)
        assert message_count(photon.url, photon.names.commands) == 0

    run(scenario)


def test_stream_metadata_and_deletes(photon: Photon) -> None:
    stream = unique("m")

    async def scenario() -> None:
        async with client_of(photon) as client:
            await client.emit([event(stream, n=i) for i in range(5)])
            assert await client.stream_metadata(stream) == {}
            stored = await client.set_stream_metadata(stream, {"max-count": 2, "owner": "ops"})
            assert stored == {"owner": "ops", "max-count": 2}
            assert [e.stream_version for e in photon.store.read(stream)] == [4, 5]
            assert await client.delete_stream(stream) == 5
            assert (await client.emit(event(stream))).stream_version == 6  # soft: the numbering goes on
            assert await client.delete_stream(stream, hard=True) == 6
            with pytest.raises(StreamDeleted):
                await client.emit(event(stream))
            assert (await client.stream_metadata(stream))["tombstone"] is True

    run(scenario)


def test_scavenge_redact_and_read_matching(photon: Photon) -> None:
    stream, seat = unique("m"), unique("seat")

    async def scenario() -> None:
        async with client_of(photon, timeout=60.0) as client:
            stored = await client.emit([event(stream, n=i) for i in range(4)])
            await client.set_stream_metadata(stream, {"max-count": 2})
            report = await client.scavenge()
            assert report["removed-events"] >= 2 and set(report) >= {"streams", "reclaim-steps", "seconds"}
            assert [e.stream_version for e in photon.store.read(stream)] == [3, 4]
            assert await client.redact(event_ids=[stored[2].event_id], reason="erasure") == 1
            assert photon.store.get_event(stored[2].event_id).payload["reason"] == "erasure"  # type: ignore[union-attr]
            with pytest.raises(NotFound, match="no event with id 'nope'"):
                await client.redact(event_ids=["nope"])
            with pytest.raises(ValidationError, match="one of the two"):
                await client.redact(stream=stream, event_ids=[stored[3].event_id])
            assert photon.store.get_event(stored[3].event_id).payload == {"n": 3}  # type: ignore[union-attr]

            booked = await client.emit({**event(seat, "Booked"), "tags": [f"seat:{seat}"]})
            query = [{"event-types": ["Booked"], "tags": [f"seat:{seat}"]}]
            assert [e.order_id async for e in client.read_matching(query)] == [booked.order_id]
            with pytest.raises(ValidationError, match="limit"):
                await client.transport.read_matching({"limit": 0})  # type: ignore[attr-defined]

    run(scenario)


def test_a_missing_service_and_an_unreachable_broker_are_clear_errors(broker: RabbitServer) -> None:
    async def scenario() -> None:
        nobody = AsyncAmqpClient(broker.url, service=f"nobody-{uuid.uuid4().hex[:6]}", timeout=5)
        async with nobody:
            with pytest.raises(PhotonError, match="no Photon service listens on queue"):
                await nobody.emit(event())
            # A replay (a live one would otherwise wait forever) and a group join say so at once
            # too, rather than after the client's time-out.
            for stream_type in ("cold", "hot"):
                async with asyncio.timeout(4):
                    with pytest.raises(PhotonError, match="no Photon service listens on queue"):
                        async for _ in nobody.replay("orders", stream_type):
                            pass
            async with asyncio.timeout(4):
                with pytest.raises(PhotonError, match="no Photon service listens on queue"):
                    async with nobody.join_group("billing"):
                        pass
        gone = AsyncAmqpClient(f"amqp://guest:secret@127.0.0.1:{free_port()}/%2F", retries=0)
        with pytest.raises(BrokerUnavailable, match="cannot connect to the AMQP broker") as caught:
            await gone.emit(event())
        assert "secret" not in str(caught.value)  # the password is not in the message

    run(scenario)


# -- consumer groups ----------------------------------------------------------------------------


def test_members_share_a_groups_events_and_ack_them(photon: Photon) -> None:
    stream, group = unique("orders"), unique("billing")

    async def scenario() -> None:
        async with client_of(photon, timeout=20.0) as admin:
            created = await admin.create_group(group, stream=stream, max_in_flight=4, ack_timeout_ms=60_000)
            assert created["group-name"] == group and created["stream"] == stream
            with pytest.raises(Conflict, match="already exists"):
                await admin.create_group(group, stream=stream)
            got: dict[str, list[GroupDelivery]] = {}

            async def consume(name: str) -> None:
                async with client_of(photon) as own, own.join_group(group, name) as member:
                    assert member.id == name
                    async for delivery in member:
                        got.setdefault(name, []).append(delivery)
                        await member.ack(delivery.event.order_id)
                    assert getattr(member, "ended", None) == "deleted" or member.ended  # type: ignore[union-attr]

            consumers = [asyncio.create_task(consume(f"m{i}")) for i in range(3)]

            async def three_members() -> bool:
                return len((await admin.group(group))["members"]) == 3

            await wait_for(three_members, "three members")
            written = [e.order_id for _ in range(3) for e in await admin.emit([event(stream, n=n) for n in range(10)])]

            async def all_acked() -> bool:
                return (await admin.group(group))["checkpoint"] == written[-1]

            await wait_for(all_acked, "the checkpoint past every event")
            described = await admin.group(group)
            assert described["acked"] == 30 and described["in-flight"] == 0
            assert group in [g["group-name"] for g in await admin.groups()]
            await admin.delete_group(group)  # ends the memberships: each member's iteration stops
            await asyncio.wait_for(asyncio.gather(*consumers), 20)
            delivered = sorted(d.event.order_id for ds in got.values() for d in ds)
            assert delivered == written  # each exactly once
            assert len(got) == 3 and all(got.values())
            assert group not in [g["group-name"] for g in await admin.groups()]

    run(scenario)


def test_nack_retry_park_skip_take_and_replay_parked(photon: Photon) -> None:
    stream, group = unique("orders"), unique("retry")

    async def scenario() -> None:
        async with client_of(photon, timeout=20.0) as client:
            await client.create_group(group, stream=stream, max_retries=1, max_in_flight=10)
            first, second, third = [e.order_id for e in await client.emit([event(stream, n=n) for n in range(3)])]
            async with client.join_group(group) as member:
                seen = [await anext(member) for _ in range(3)]  # type: ignore[arg-type]
                assert [(d.event.order_id, d.attempt) for d in seen] == [(first, 1), (second, 1), (third, 1)]
                assert await member.nack([first], "retry", "try again") == {"done": 1, "unknown": []}
                assert await member.nack([second], "park", "poison") == {"done": 1, "unknown": []}
                assert await member.nack(third, "skip") == {"done": 1, "unknown": []}
                again = await member.take(timeout=10)  # type: ignore[union-attr]
                assert [(d.event.order_id, d.attempt) for d in again] == [(first, 2)]
                await member.nack(first, "retry", "still failing")  # past max-retries (1): parked

                async def two_parked() -> bool:
                    return int((await client.group(group))["parked"]) == 2

                await wait_for(two_parked, "two events parked")
                described = await client.group(group)
                assert described["checkpoint"] == third and described["skipped"] == 1
                assert await client.replay_parked(group) == 2
                back = await member.take(timeout=10)  # type: ignore[union-attr]
                assert sorted(d.event.order_id for d in back) == [first, second]
                assert (await member.ack([d.event.order_id for d in back]))["done"] == 2
            updated = await client.update_group(group, max_in_flight=3)
            assert updated["max-in-flight"] == 3
            reset = await client.reset_group(group, first)
            assert reset["group-name"] == group

    run(scenario)


def test_bad_group_requests_are_clear_errors_and_change_nothing(photon: Photon) -> None:
    stream, group = unique("orders"), unique("strict")

    async def scenario() -> None:
        async with client_of(photon, timeout=20.0) as client:
            with pytest.raises(ValidationError):
                await client.create_group(group, stream=stream, strategy="random")
            assert group not in [g["group-name"] for g in await client.groups()]
            await client.create_group(group, stream=stream)
            with pytest.raises(NotFound, match="no consumer group named"):
                async with client.join_group(unique("missing")):
                    pass
            with pytest.raises(ValidationError):
                await client.transport.group_calls.nack_group(group, [1], "explode")  # type: ignore[attr-defined]
            with pytest.raises(NotFound):
                await client.group(unique("missing"))
            described = await client.group(group)
            assert described["acked"] == 0 and described["members"] == []

    run(scenario)


def test_a_closed_members_events_go_to_another(photon: Photon) -> None:
    stream, group = unique("orders"), unique("handover")

    async def scenario() -> None:
        async with client_of(photon, timeout=20.0) as client:
            # A long ack timeout: only the member's leaving can bring its events back in time.
            await client.create_group(group, stream=stream, max_in_flight=3, ack_timeout_ms=300_000)
            ids = [e.order_id for e in await client.emit([event(stream, n=n) for n in range(5)])]
            first = client.join_group(group, "first")
            async with first:
                held = [(await anext(first)).event.order_id for _ in range(3)]  # type: ignore[arg-type]
            assert held == ids[:3]
            started = time.monotonic()
            got: dict[int, int] = {}
            async with client.join_group(group, "second") as second:
                async for delivery in second:
                    got[delivery.event.order_id] = delivery.attempt
                    await second.ack(delivery.event.order_id)
                    if len(got) == len(ids):
                        break
            assert sorted(got) == ids
            assert all(got[i] == 2 for i in held) and all(got[i] == 1 for i in ids[3:])
            assert time.monotonic() - started < 15

    run(scenario)


MEMBER = """
import asyncio, sys
from photon.client.asynchronous import AsyncPhotonClient
from photon.client.amqp_async import AsyncAmqpTransport

async def main():
    client = AsyncPhotonClient(transport=AsyncAmqpTransport(sys.argv[1], service=sys.argv[2]))
    async with client.join_group(sys.argv[3], "doomed") as member:
        print("joined", flush=True)
        async for delivery in member:
            print(delivery.event.order_id, flush=True)

asyncio.run(main())
"""


@pytest.mark.timeout(90)
def test_a_killed_members_events_go_to_another(photon: Photon, tmp_path: Path) -> None:
    stream, group = unique("orders"), unique("crash")

    async def setup() -> list[int]:
        async with client_of(photon) as client:
            await client.create_group(group, stream=stream, max_in_flight=5, ack_timeout_ms=300_000)
            return []

    run(setup)
    process = subprocess.Popen(
        [sys.executable, "-c", MEMBER, photon.url, photon.name, group], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "joined"

        async def write() -> list[int]:
            async with client_of(photon) as client:
                return [e.order_id for e in await client.emit([event(stream, n=n) for n in range(8)])]

        ids = run(write)
        held = [int(process.stdout.readline()) for _ in range(5)]
        assert held == ids[:5]
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    async def survive() -> dict[int, int]:
        got: dict[int, int] = {}
        async with client_of(photon, timeout=20.0) as client, client.join_group(group, "survivor") as member:
            async for delivery in member:
                got[delivery.event.order_id] = delivery.attempt
                await member.ack(delivery.event.order_id)
                if len(got) == len(ids):
                    break
            members = [m["member"] for m in (await client.group(group))["members"]]
        assert "doomed" not in members
        return got

    started = time.monotonic()
    got = run(survive)
    assert sorted(got) == ids
    assert all(got[i] == 2 for i in held) and all(got[i] == 1 for i in ids[5:])
    assert time.monotonic() - started < 15  # noticed when its queue went, not after the ack timeout


@pytest.fixture
def private_broker() -> Iterator[RabbitServer]:
    server = RabbitServer()
    if not server.restartable:
        pytest.skip(f"{server.env_var} points at an external broker; not restarting it")
    server = start_broker()
    yield server
    server.close()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_broker_restart_loses_no_acknowledged_emit(
    private_broker: RabbitServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "photon.amqp_client")
    photon = Photon(tmp_path / "store.db", private_broker.url, f"r{uuid.uuid4().hex[:10]}").start()
    acknowledged: list[RecordedEvent] = []

    async def scenario() -> None:
        async with client_of(photon, retries=40, timeout=30) as client:
            stop = asyncio.Event()

            async def emitter(number: int) -> None:
                sequence = 0
                while not stop.is_set():
                    stored = await client.emit({**event(f"s{number}", n=sequence), "id": f"{number}-{sequence}"})
                    acknowledged.append(stored)
                    sequence += 1

            async def count(at_least: int) -> bool:
                return len(acknowledged) >= at_least

            emitters = [asyncio.create_task(emitter(n)) for n in range(3)]
            await wait_for(lambda: count(60), "emits before the restart")
            await asyncio.to_thread(private_broker.stop)
            before = len(acknowledged)
            await asyncio.to_thread(private_broker.start)
            await wait_for(lambda: count(before + 60), "emits after the restart", timeout=90)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*emitters), 60)  # none failed

    try:
        asyncio.run(asyncio.wait_for(scenario(), 200))
        # The client lost its connection and re-sent what was in flight.
        assert any("re-sending" in r.getMessage() for r in caplog.records if r.name == "photon.amqp_client")
        # Every acknowledged emit is stored, exactly once, where its reply said.
        stored = {e.event_id: e for e in photon.store.read()}
        assert len(stored) == photon.store.last_order_id()
        for reply in acknowledged:
            assert stored[reply.event_id].order_id == reply.order_id
        for number in range(3):
            ids = [e.event_id for e in photon.store.read(f"s{number}")]
            assert ids == [f"{number}-{i}" for i in range(len(ids))]
    finally:
        photon.close()
