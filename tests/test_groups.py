"""Consumer groups in the core: sharing, acks, retries, parking, time-outs, restarts (embedded store)."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from photon.core.errors import Conflict, NotFound, StoreClosed, ValidationError
from photon.core.events import CONFIG_STREAM, parked_stream
from photon.core.store import EventStore
from photon.groups import Delivery, Member
from photon.groups.engine import Group
from photon.groups.state import state_key


def event(stream: str = "orders", event_type: str = "placed", **payload: Any) -> dict[str, Any]:
    return {"stream-name": stream, "event-type": event_type, "payload": payload or {"n": 1}}


@pytest.fixture
def store_path(tmp_path: Path) -> dict[str, Any]:
    return {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "groups.db")}


@pytest.fixture
def store(store_path: dict[str, Any]) -> Any:
    with EventStore.open(store_path) as store:
        yield store


def take_all(member: Member, timeout: float = 0.5) -> list[Delivery]:
    """Everything delivered to `member` until nothing comes for `timeout` seconds."""
    got: list[Delivery] = []
    while batch := member.take(timeout):
        got.extend(batch)
    return got


def consume(member: Member, seen: list[tuple[str, int]], idle: float, *, ack: bool = True) -> None:
    while True:
        batch = member.take(idle)
        if not batch:
            return
        seen.extend((member.id, d.event.order_id) for d in batch)
        if ack:
            member.ack([d.event.order_id for d in batch])


def test_members_share_every_event_exactly_once_under_concurrent_writers(store: EventStore) -> None:
    store.groups.create({"group-name": "workers", "max-in-flight": 20})
    members = [store.groups.join("workers", f"m{i}") for i in range(3)]
    seen: list[tuple[str, int]] = []

    def write(writer: int) -> None:
        for batch in range(20):
            store.append([event(f"w{writer}-{batch % 4}", n=i) for i in range(25)])

    writers = [threading.Thread(target=write, args=(w,)) for w in range(3)]
    consumers = [threading.Thread(target=consume, args=(m, seen, 1.5)) for m in members]
    for thread in writers + consumers:
        thread.start()
    for thread in writers + consumers:
        thread.join()
    client_ids = [e.order_id for e in store.read() if not e.stream_name.startswith("__")]
    assert len(client_ids) == 1500
    counts = Counter(order_id for _, order_id in seen)
    assert sorted(counts) == client_ids and set(counts.values()) == {1}
    per_member = Counter(member for member, _ in seen)
    assert len(per_member) == 3 and min(per_member.values()) > 100, per_member
    described = store.groups.describe("workers")
    assert described["checkpoint"] >= client_ids[-1] and described["acked"] == 1500


def test_pinned_keeps_each_streams_events_on_one_member_in_order(store: EventStore) -> None:
    store.groups.create({"group-name": "pinned", "strategy": "pinned", "max-in-flight": 5})
    members = [store.groups.join("pinned", f"m{i}") for i in range(3)]
    seen: list[tuple[str, int]] = []
    consumers = [threading.Thread(target=consume, args=(m, seen, 1.5)) for m in members]
    for thread in consumers:
        thread.start()

    def write(writer: int) -> None:
        for i in range(100):
            store.append(event(f"account-{(writer * 7 + i) % 12}", n=i))

    writers = [threading.Thread(target=write, args=(w,)) for w in range(3)]
    for thread in writers:
        thread.start()
    for thread in writers + consumers:
        thread.join()
    stream_of = {e.order_id: e.stream_name for e in store.read()}
    by_stream: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for member, order_id in seen:
        by_stream[stream_of[order_id]].append((member, order_id))
    assert len(seen) == 300 and len(by_stream) == 12
    for stream, items in by_stream.items():
        assert len({member for member, _ in items}) == 1, stream
        order_ids = [order_id for _, order_id in items]
        assert order_ids == sorted(order_ids), stream
    assert len({items[0][0] for items in by_stream.values()}) > 1  # streams spread over members


def test_pinned_gives_each_member_its_events_in_order_id_order_across_streams(store: EventStore) -> None:
    # Pinned promises one stream's events in order; a member holding several buckets is also
    # given its events oldest first, so one member alone gets the source's order (as KurrentDB's
    # Pinned does with one consumer), not bucket after bucket.
    store.groups.create({"group-name": "pinned", "strategy": "pinned", "max-in-flight": 1000})
    store.append([event(f"order-{i}", n=i) for i in range(40)])
    with store.groups.join("pinned", "alone") as member:
        got = [d.event.order_id for d in take_all(member)]
        member.ack(got)
    assert len(got) == 40 and got == sorted(got)
    with store.groups.join("pinned", "a") as a, store.groups.join("pinned", "b") as b:
        store.append([event(f"order-{i}", n=i) for i in range(40)])
        shares = [[d.event.order_id for d in take_all(m)] for m in (a, b)]
    assert sum(len(share) for share in shares) == 40 and all(shares)
    assert all(share == sorted(share) for share in shares)


def test_a_member_with_a_limit_is_given_that_many_deliveries_and_no_more(store: EventStore) -> None:
    store.groups.create({"group-name": "g", "max-retries": 0})
    store.append([event(n=i) for i in range(5)])
    with store.groups.join("g", "fetch", max_in_flight=1, limit=2) as member:
        got = []
        while batch := member.take(0.5):
            got.extend(batch)
            member.ack([d.event.order_id for d in batch])
        assert len(got) == 2 and store.groups.describe("g")["in-flight"] == 0
    described = store.groups.describe("g")
    assert described["delivered"] == 2 and described["parked"] == 0 and described["waiting"] == 3
    with pytest.raises(ValidationError, match="limit"):
        store.groups.join("g", "bad", limit=0)


def test_nack_retry_is_counted_and_parks_after_max_retries(store: EventStore) -> None:
    store.groups.create({"group-name": "g", "max-retries": 2})
    store.append([event(n=1), event(n=2)])
    member = store.groups.join("g", "only")
    attempts = []
    poison_id = 0
    while True:
        batch = member.take(1.0)
        assert batch
        poison = [d for d in batch if d.event.payload["n"] == 1]
        member.ack([d.event.order_id for d in batch if d.event.payload["n"] == 2])
        if not poison:
            break
        attempts.append(poison[0].attempt)
        poison_id = poison[0].event.order_id
        member.nack([poison[0].event.order_id], "retry", "cannot handle it")
        if len(attempts) == 3:
            break
    assert attempts == [1, 2, 3]
    assert member.take(0.3) == []
    parked = list(store.read(parked_stream("g")))
    assert len(parked) == 1
    payload = parked[0].to_dict()["payload"]
    assert payload["order-id"] == poison_id and payload["attempts"] == 3 and "cannot handle it" in payload["reason"]
    assert payload["event"]["payload"] == {"n": 1}
    described = store.groups.describe("g")
    assert described["parked"] == 1 and described["checkpoint"] >= 2

    # Parked events go back to the group on request, and are done once acked.
    assert store.groups.replay_parked("g") == 1
    (again,) = member.take(1.0)
    assert again.event.order_id == poison_id and again.event.payload == {"n": 1}
    assert member.ack([poison_id]).done == 1
    assert store.groups.replay_parked("g") == 0


def test_park_and_skip_nacks_finish_events_at_once(store: EventStore) -> None:
    store.groups.create({"group-name": "g"})
    store.append([event(n=i) for i in range(3)])
    member = store.groups.join("g")
    first, second, third = take_all(member)
    assert member.nack([first.event.order_id], "park", "bad payload").done == 1
    assert member.nack([second.event.order_id], "skip").done == 1
    assert member.ack([third.event.order_id, 999]).unknown == [999]
    assert take_all(member, 0.3) == []
    assert [e.to_dict()["payload"]["reason"] for e in store.read(parked_stream("g"))] == ["bad payload"]
    assert store.groups.describe("g")["checkpoint"] >= third.event.order_id
    with pytest.raises(ValidationError, match="action must be one of retry, park, skip"):
        member.nack([1], "drop")  # type: ignore[arg-type]


def test_a_group_made_again_under_a_deleted_ones_name_replays_only_what_it_parked(store: EventStore) -> None:
    store.groups.create({"group-name": "g"})
    store.append([event(n=i) for i in range(2)])
    member = store.groups.join("g")
    old, _ = take_all(member)
    member.nack([old.event.order_id], "park", "the old group's")
    member.close()
    store.groups.delete("g")
    assert len(list(store.read(parked_stream("g")))) == 1  # deleting a group leaves its parked stream

    store.groups.create({"group-name": "g", "start": "end"})
    store.append(event(n=2))
    member = store.groups.join("g")
    (new,) = take_all(member)
    member.nack([new.event.order_id], "park", "the new group's")
    assert store.groups.replay_parked("g") == 1
    (replayed,) = take_all(member)
    assert replayed.event.order_id == new.event.order_id
    assert [e.to_dict()["payload"]["reason"] for e in store.read(parked_stream("g"))] == [
        "the old group's",
        "the new group's",
    ]


def test_unacked_event_is_redelivered_to_another_member_after_the_ack_timeout(store: EventStore) -> None:
    store.groups.create({"group-name": "g", "ack-timeout-ms": 300, "max-in-flight": 1})
    slow = store.groups.join("g", "slow")
    store.append(event(n=1))
    (first,) = slow.take(5.0)
    delivered = time.monotonic()
    fast = store.groups.join("g", "fast")
    (again,) = fast.take(10.0)
    assert again.event.order_id == first.event.order_id and again.attempt == 2
    assert time.monotonic() - delivered > 0.25  # not before the time-out
    # A late ack from the first member still counts: the event is done, the second ack is unknown.
    assert slow.ack([first.event.order_id]).done == 1
    assert fast.ack([first.event.order_id]).unknown == [first.event.order_id]


def test_a_member_that_leaves_gives_its_events_to_the_others(store: EventStore) -> None:
    store.groups.create({"group-name": "g", "max-in-flight": 10})
    leaving = store.groups.join("g", "leaving")
    store.append([event(n=i) for i in range(5)])
    assert len(take_all(leaving)) == 5
    staying = store.groups.join("g", "staying")
    assert staying.take(0.3) == []  # still in flight at the first member
    leaving.close()
    redelivered = take_all(staying)
    assert sorted(d.event.order_id for d in redelivered) == [2, 3, 4, 5, 6]
    assert {d.attempt for d in redelivered} == {2}


@pytest.mark.parametrize("strategy", ["round-robin", "pinned"])
def test_events_given_back_together_are_delivered_again_in_their_order(store: EventStore, strategy: str) -> None:
    # A member that leaves, or whose deliveries all time out, gives its events back at once: they
    # come again in the order of the stream (pinned promises one stream's events in order).
    store.groups.create({"group-name": "g", "strategy": strategy, "ack-timeout-ms": 1000, "max-in-flight": 10})

    def take(member: Member, count: int) -> list[tuple[int, int]]:
        got: list[Delivery] = []
        while len(got) < count and (batch := member.take(5.0)):
            got.extend(batch)
        return [(d.event.order_id, d.attempt) for d in got]

    leaving = store.groups.join("g", "leaving")
    store.append([event("orders-1", n=i) for i in range(5)])
    first = [order_id for order_id, _ in take(leaving, 5)]
    assert first == sorted(first) and len(first) == 5
    staying = store.groups.join("g", "staying")
    leaving.close()
    assert take(staying, 5) == [(i, 2) for i in first]
    # Not acked in time: every one of them comes again, still in order.
    assert take(staying, 5) == [(i, 3) for i in first]


def test_serial_group_has_one_event_in_flight(store: EventStore) -> None:
    store.groups.create({"group-name": "g", "serial": True, "max-in-flight": 10})
    store.append([event(n=i) for i in range(4)])
    members = [store.groups.join("g", f"m{i}") for i in range(2)]
    order = []
    for _ in range(4):
        batches = [m.take(0.3) for m in members]
        delivered = [d for batch in batches for d in batch]
        assert len(delivered) == 1
        order.append(delivered[0].event.order_id)
        store.groups.ack("g", [delivered[0].event.order_id])
    assert order == [2, 3, 4, 5]


def test_a_member_can_take_fewer_in_flight_than_the_group_allows(store: EventStore) -> None:
    store.groups.create({"group-name": "g", "max-in-flight": 5})
    store.append([event(n=i) for i in range(12)])
    small = store.groups.join("g", "small", 2)
    assert len(take_all(small, 0.3)) == 2  # its own limit, not the group's 5
    big = store.groups.join("g", "big", 50)
    assert len(take_all(big, 0.3)) == 5  # the group's limit bounds a larger one
    limits = {m["member"]: m["max-in-flight"] for m in store.groups.describe("g")["members"]}
    assert limits == {"small": 2, "big": 5}
    for bad in (0, -1, "3", 1.5, True, 100_001):
        with pytest.raises(ValidationError, match="max-in-flight") as caught:
            store.groups.join("g", "bad", bad)  # type: ignore[arg-type]
        assert caught.value.field == "max-in-flight"
    assert [m["member"] for m in store.groups.describe("g")["members"]] == ["small", "big"]


def test_a_nack_reason_is_bounded(store: EventStore) -> None:
    store.groups.create({"group-name": "g"})
    store.append([event()])
    member = store.groups.join("g", "m")
    (delivery,) = take_all(member, 0.3)
    with pytest.raises(ValidationError, match="at most 2000 characters") as caught:
        member.nack([delivery.event.order_id], "park", "x" * 2001)
    assert caught.value.field == "reason"
    assert store.groups.describe("g")["in-flight"] == 1 and store.groups.describe("g")["parked"] == 0


def test_restart_resumes_with_nothing_lost_or_acknowledged_twice(store_path: dict[str, Any]) -> None:
    store = EventStore.open(store_path)
    store.groups.create({"group-name": "g", "max-in-flight": 100})
    store.append([event(f"s-{i % 3}", n=i) for i in range(50)])
    member = store.groups.join("g")
    delivered = take_all(member)
    acked = [d.event.order_id for d in delivered if d.event.order_id % 2 == 0]  # out of order
    member.ack(acked)
    store.close()

    store = EventStore.open(store_path)
    store.append([event(n=i) for i in range(50, 60)])
    member = store.groups.join("g")
    again = take_all(member)
    again_ids = sorted(d.event.order_id for d in again)
    all_ids = [e.order_id for e in store.read() if not e.stream_name.startswith("__")]
    assert sorted(set(again_ids) | set(acked)) == all_ids
    assert not set(again_ids) & set(acked)
    member.ack(again_ids)
    store.close()

    store = EventStore.open(store_path)
    member = store.groups.join("g")
    assert member.take(0.5) == []
    assert store.groups.describe("g")["checkpoint"] == all_ids[-1]
    store.close()


def test_definitions_live_in_config_and_bad_ones_store_nothing(store: EventStore) -> None:
    groups = store.groups
    before = store.last_order_id()
    for bad, message in [
        ({"group-name": ""}, "group-name must be"),
        ({"group-name": ".."}, "group-name must not be '..': URLs resolve it"),
        ({"group-name": "g", "strategy": "random"}, "strategy must be one of round-robin, pinned"),
        ({"group-name": "g", "max-in-flight": 0}, "max-in-flight must be"),
        ({"group-name": "g", "ack-timeout-ms": "soon"}, "ack-timeout-ms must be"),
        ({"group-name": "g", "max-retries": -1}, "max-retries must be"),
        ({"group-name": "g", "colour": "red"}, "unknown group key 'colour'"),
        ({"group-name": "g", "stream": "__config__"}, "a group reads a client stream"),
        ({"group-name": "g", "filter": {"stream-regex": "("}}, "stream-regex is not a valid regular expression"),
        ({"group-name": "g", "filter": {"category": "a-b"}}, "has no '-'"),
        ({"group-name": "g", "stream": "orders", "filter": {"stream-prefix": "x"}}, "by event type only"),
        ({"group-name": "g", "start": "middle"}, "start must be begin, end or an order-id"),
        ({"group-name": "g", "serial": "yes"}, "serial must be true or false"),
    ]:
        with pytest.raises(ValidationError, match=message):
            groups.create(bad)
    assert store.last_order_id() == before and groups.list() == []
    groups.create({"group-name": "g", "stream": "orders"})
    with pytest.raises(Conflict, match="already exists"):
        groups.create({"group-name": "g"})
    with pytest.raises(NotFound, match="no consumer group named 'nope'"):
        groups.join("nope")
    with pytest.raises(ValidationError, match="cannot be changed"):
        groups.update("g", {"start": 5})
    groups.update("g", {"max-retries": 3})
    groups.delete("g")
    types = [e.event_type for e in store.read(CONFIG_STREAM)]
    assert types == ["group-created", "group-updated", "group-deleted"]


def test_groups_are_rebuilt_from_config_and_start_end_skips_history(store_path: dict[str, Any]) -> None:
    store = EventStore.open(store_path)
    store.append([event(n=i) for i in range(5)])
    store.groups.create({"group-name": "late", "start": "end", "stream": "orders", "max-retries": 4})
    store.append(event(n=5))
    store.close()
    store = EventStore.open(store_path)
    (described,) = store.groups.list()
    assert described["group-name"] == "late" and described["max-retries"] == 4 and described["start"] == 6
    member = store.groups.join("late")
    assert [d.event.payload["n"] for d in take_all(member)] == [5]
    store.close()


def test_reset_starts_over_and_update_keeps_the_position(store: EventStore) -> None:
    store.groups.create({"group-name": "g"})
    store.append([event(n=i) for i in range(4)])
    member = store.groups.join("g")
    member.ack([d.event.order_id for d in take_all(member)])
    store.groups.update("g", {"max-in-flight": 2})
    assert store.groups.describe("g")["max-in-flight"] == 2
    store.groups.reset("g", 4)
    member = store.groups.join("g")
    assert [d.event.order_id for d in take_all(member)] == [4, 5]
    with pytest.raises(ValidationError, match="from must be an order-id"):
        store.groups.reset("g", 0)


def test_reset_answers_the_state_it_starts_from_and_the_stopped_group_writes_nothing(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Order-id 1 is the group-created event and 2 a shop event: the category group skips both.
    store.groups.create({"group-name": "g", "stream": "__category__:order"})
    store.append([event("shop-1"), event("order-1")])
    member = store.groups.join("g")
    (delivery,) = take_all(member)
    member.ack([delivery.event.order_id])
    old = store.groups._groups["g"]
    original_start = Group.start

    def start_then_catch_up(group: Group) -> Any:
        # The slowest caller: the fresh group's thread reads everything before the answer is made.
        described = original_start(group)
        deadline = time.monotonic() + 10
        while group.describe()["checkpoint"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        return described

    monkeypatch.setattr(Group, "start", start_then_catch_up)
    assert store.groups.reset("g", 1)["checkpoint"] == 0
    # The stopped run-time writes no state over the reset and takes no more acks.
    old.flush()
    with pytest.raises(StoreClosed, match="was stopped"):
        old.ack([delivery.event.order_id])
    stored = store.read_checkpoint(state_key("g"))
    assert stored["checkpoint"] < delivery.event.order_id and stored["done"] == []
    again = take_all(store.groups.join("g"))
    assert [d.event.order_id for d in again] == [delivery.event.order_id]


def test_filtered_group_on_all_and_category_group(store: EventStore) -> None:
    store.groups.create({"group-name": "accounts", "stream": "__category__:account"})
    store.groups.create({"group-name": "typed", "filter": {"event-type-prefix": "Deposit"}})
    store.append(
        [
            event("account-1", "Deposited"),
            event("account", "Opened"),
            event("accounting-1", "Deposited"),
            event("orders-1", "Placed"),
        ]
    )
    accounts = take_all(store.groups.join("accounts"))
    assert [d.event.stream_name for d in accounts] == ["account-1", "account"]
    typed = take_all(store.groups.join("typed"))
    assert [d.event.stream_name for d in typed] == ["account-1", "accounting-1"]
