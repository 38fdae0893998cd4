"""The backend contract suite: every backend must pass all of it, unchanged.

A backend's test module subclasses `BackendContract` and provides one fixture, `store_config`:
the configuration (a dict of Photon keys) of a fresh, empty store for one test. Opening it
twice must reach the same store (that is how close-and-reopen is tested). Set
`persistent = False` for a backend whose data lives only as long as its object (memory).
Tests of an optional capability (scavenging, redaction, listing checkpoints, bulk load) skip on
a backend that does not declare it (see `photon.core.backend.Backend`). Long because it is one
suite: every behaviour a backend must have, a test each, in the one class a backend subclasses.

A third-party backend runs the same suite (pytest is needed to run it):

    import pytest
    from photon.testing import BackendContract

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def store_config(self, my_server):
            return {"db.backend": "mine", "mine.url": my_server.url}
"""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest

from photon.core.backend import Backend, Query, backend_class
from photon.core.errors import IntegrityError, NotFound, ValidationError, VersionConflict
from photon.core.events import RecordedEvent
from photon.core.store import EventStore
from photon.core.subscriptions import CaughtUp
from photon.testing.appends import AppendContract
from photon.testing.base import event, gapless
from photon.testing.durability import DurabilityContract
from photon.testing.indexes import IndexContract
from photon.testing.lifetime import LifetimeContract
from photon.testing.paging import PagingContract

#: The methods a backend overrides when it declares each optional capability.
CAPABILITY_METHODS = {
    "bulk_load": ("begin_bulk_load", "end_bulk_load"),
    "scavenging": ("truncate_stream",),
    "redaction": ("replace_events",),
    "listing_checkpoints": ("checkpoints",),
}


class BackendContract(AppendContract, LifetimeContract, DurabilityContract, IndexContract, PagingContract):
    """The whole suite. Subclass it as ``Test...`` and provide the `store_config` fixture."""

    # -- ordering ----------------------------------------------------------------------------

    def test_order_ids_and_versions_start_at_one_and_have_no_gaps(self, store: EventStore) -> None:
        for index in range(30):
            store.append(event(f"s{index % 3}", n=index))
        everything = list(store.read())
        assert gapless(everything)
        for name in ("s0", "s1", "s2"):
            versions = [e.stream_version for e in store.read(name)]
            assert versions == list(range(1, 11))
        assert [e.payload["n"] for e in everything] == list(range(30))

    def test_stored_event_carries_every_field(self, store: EventStore) -> None:
        sent: dict[str, Any] = {
            "stream-name": "users",
            "event-type": "Registered",
            "payload": {"name": "Ada", "tags": ["a", "b"], "nested": {"x": 1.5}},
            "service-id": "signup",
            "schema": "2",
            "caused-by": "abc",
            "caused-by-relation": "triggered",
            "event-time": 1_700_000_000_000,
            "id": "7d1a4c1e-0000-4000-8000-000000000001",
        }
        (stored,) = store.append(sent)
        fetched = store.get_event(sent["id"])
        assert fetched == stored
        as_dict = fetched.to_dict()
        for key, value in sent.items():
            assert as_dict[key] == value
        assert as_dict["order-id"] == 1 and as_dict["stream-version"] == 1
        assert store.get_by_order_id(1) == stored

    def test_event_time_defaults_to_now(self, store: EventStore) -> None:
        import time

        before = int(time.time() * 1000)
        (stored,) = store.append(event())
        assert before - 5 <= stored.event_time <= int(time.time() * 1000) + 5

    # -- atomic batches -------------------------------------------------------------------

    def test_batch_is_stored_whole_and_in_order(self, store: EventStore) -> None:
        stored = store.append([event("a", n=i) for i in range(50)] + [event("b", n=99)])
        assert [e.order_id for e in stored] == list(range(1, 52))
        assert [e.stream_version for e in stored[:50]] == list(range(1, 51))
        assert stored[50].stream_version == 1

    def test_invalid_event_in_batch_stores_nothing(self, store: EventStore) -> None:
        store.append(event("a"))
        bad = [event("a"), event("a"), {"stream-name": "a", "event-type": "X"}]
        with pytest.raises(ValidationError, match="event 2: missing required field 'payload'"):
            store.append(bad)
        assert [e.order_id for e in store.read()] == [1]
        assert store.stream_version("a") == 1

    def test_backend_refuses_duplicates_atomically(self, store: EventStore) -> None:
        (first,) = store.append(event("a"))
        backend = store.backend
        # A row repeating an order-id, an id or a (stream, version) must fail the whole write.
        fresh = first._replace(order_id=2, stream_version=2, event_id="fresh")
        for bad in (
            first._replace(event_id="other", stream_version=2),
            first._replace(order_id=3, stream_version=3),
            first._replace(order_id=3, event_id="other-2"),
        ):
            with pytest.raises(IntegrityError):
                backend.append([fresh, bad])
        assert [e.event_id for e in backend.read(Query(limit=100))] == [first.event_id]

    # -- idempotency --------------------------------------------------------------------------

    def test_resent_id_is_not_stored_twice(self, store: EventStore) -> None:
        sent = dict(event("a"), id="same-id")
        (first,) = store.append(sent)
        (again,) = store.append(sent)
        assert again == first
        assert [e.order_id for e in store.read()] == [1]

    def test_retried_batch_returns_what_is_stored(self, store: EventStore) -> None:
        batch = [dict(event("a", n=i), id=f"id-{i}") for i in range(5)]
        first = store.append(batch, expected_version="no-stream")
        assert store.append(batch, expected_version="no-stream") == first
        assert store.stream_version("a") == 5

    def test_partly_stored_batch_stores_only_the_new_events(self, store: EventStore) -> None:
        store.append(dict(event("a", n=0), id="id-0"))
        stored = store.append([dict(event("a", n=0), id="id-0"), dict(event("a", n=1), id="id-1")])
        assert [e.order_id for e in stored] == [1, 2]
        assert [e.event_id for e in store.read()] == ["id-0", "id-1"]

    def test_duplicate_id_inside_one_batch_is_refused(self, store: EventStore) -> None:
        with pytest.raises(ValidationError, match="appears twice"):
            store.append([dict(event(), id="x"), dict(event(), id="x")])
        assert store.last_order_id() == 0

    # -- versions ---------------------------------------------------------------------------

    def test_expected_version_is_checked(self, store: EventStore) -> None:
        store.append(event("a"), expected_version="no-stream")
        store.append(event("a"), expected_version=1)
        with pytest.raises(VersionConflict) as conflict:
            store.append([event("a"), event("a")], expected_version=1)
        assert conflict.value.current == 2
        with pytest.raises(VersionConflict):
            store.append(event("a"), expected_version="no-stream")
        store.append(event("a"), expected_version="any")
        assert store.stream_version("a") == 3
        assert gapless(list(store.read()))

    def test_expected_version_with_several_streams_is_refused(self, store: EventStore) -> None:
        with pytest.raises(ValidationError, match="one stream"):
            store.append([event("a"), event("b")], expected_version=0)

    def test_concurrent_writers_with_expected_version_never_both_win(self, store: EventStore) -> None:
        wins: list[int] = []
        conflicts: list[int] = []

        def writer(index: int) -> None:
            try:
                store.append(event("contested", n=index), expected_version=0)
                wins.append(index)
            except VersionConflict:
                conflicts.append(index)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(wins) == 1 and len(conflicts) == 15
        assert store.stream_version("contested") == 1

    # -- reads ------------------------------------------------------------------------------

    @pytest.fixture
    def sample(self, store: EventStore) -> EventStore:
        for index in range(40):
            store.append(
                dict(
                    event(f"s{index % 4}", "Even" if index % 2 == 0 else "Odd", n=index),
                    **{"event-time": 1_000_000 + index * 10},
                )
            )
        return store

    def test_read_backward_newest_first(self, sample: EventStore) -> None:
        # s1 holds the events n = 1, 5, 9, ... (versions 1..10), all of type Odd.
        assert [e.order_id for e in sample.read_backward(limit=3)] == [40, 39, 38]
        assert [e.order_id for e in sample.read_backward(from_order_id=3)] == [3, 2, 1]
        assert [e.stream_version for e in sample.read_backward("s1", limit=3)] == [10, 9, 8]
        assert [e.stream_version for e in sample.read_backward("s1", from_version=2)] == [2, 1]
        assert [e.order_id for e in sample.read_backward("s0", from_order_id=9, limit=2)] == [9, 5]
        assert [e.order_id for e in sample.read_backward(event_types=["Even"], limit=2)] == [39, 37]
        assert list(sample.read_backward("s1", event_types=["Even"])) == []

    def test_stream_page_by_prefix_after_a_name(self, store: EventStore) -> None:
        store.append([event(name) for name in ("b-2", "a-1", "b-1", "b_1", "B-1", "c")])
        assert [s.stream_name for s in store.stream_page(prefix="b-", limit=1)] == ["b-1"]
        assert [s.stream_name for s in store.stream_page(prefix="b-", after="b-1")] == ["b-2"]
        assert [(s.stream_name, s.total_events) for s in store.stream_page(prefix="b_")] == [("b_1", 1)]
        assert [s.stream_name for s in store.stream_page(after="b_1")] == ["c"]
        assert store.categories(limit=10) == (["B", "a", "b", "b_1", "c"], None)

    def test_read_all_from_order_id_to_bound_with_limit(self, sample: EventStore) -> None:
        assert [e.order_id for e in sample.read(from_order_id=35)] == [35, 36, 37, 38, 39, 40]
        assert [e.order_id for e in sample.read(from_order_id=5, to_order_id=8)] == [5, 6, 7, 8]
        assert [e.order_id for e in sample.read(from_order_id=5, limit=3)] == [5, 6, 7]
        assert list(sample.read(from_order_id=41)) == []

    def test_read_stream_from_version_and_order_id(self, sample: EventStore) -> None:
        assert [e.stream_version for e in sample.read("s1", from_version=8)] == [8, 9, 10]
        assert [e.order_id for e in sample.read("s1", from_order_id=30)] == [30, 34, 38]
        assert [e.order_id for e in sample.read("s1", to_order_id=10)] == [2, 6, 10]
        assert list(sample.read("nothing-here")) == []

    def test_read_by_event_time_and_type(self, sample: EventStore) -> None:
        assert [e.order_id for e in sample.read(from_time=1_000_000 + 35 * 10)] == [36, 37, 38, 39, 40]
        odd = list(sample.read(event_types=["Odd"], limit=3))
        assert [e.order_id for e in odd] == [2, 4, 6]
        assert [e.order_id for e in sample.read("s0", event_types=["Even"], from_version=9)] == [33, 37]
        assert list(sample.read(event_types=["Nope"])) == []
        assert list(sample.read(event_types=[])) == []

    def test_reads_page_through_large_results(self, store: EventStore) -> None:
        store.append([event("big", n=i) for i in range(12_000)])
        assert [e.order_id for e in store.read(from_order_id=2)] == list(range(2, 12_001))
        assert len(list(store.read("big", from_version=100, limit=11_000))) == 11_000

    def test_read_data_pages_hold_the_json_of_what_read_gives(self, sample: EventStore) -> None:
        """The projections' catch-up read (`photon.core.data_reads`): the same events as `read`,
        the stored JSON alone, in pages of at most `max_events`."""
        from photon.core.data_reads import read_data_arrays, read_data_pages

        sample.append([event(f"account-{i % 2}", "Opened" if i % 3 else "Closed", n=i) for i in range(30)])
        sample.set_stream_metadata("s2", {"max-count": 4})
        reads: list[tuple[str, dict[str, Any]]] = [
            ("__all__", {}),
            ("__all__", {"from_order_id": 5, "to_order_id": 61}),
            ("__all__", {"from_order_id": 3, "event_types": ["Odd", "Closed"]}),
            ("s1", {"from_order_id": 7}),
            ("s0", {"from_order_id": 2, "to_order_id": 30, "event_types": ["Even"]}),
            ("s2", {}),  # its metadata keeps the last 4
            ("__category__:account", {"from_order_id": 45}),
            ("__category__:account", {"event_types": ["Closed"]}),
            ("nothing-here", {}),
        ]
        for stream, bounds in reads:
            expected = [e.data for e in sample.read(stream, **bounds)]
            pages = list(
                read_data_pages(
                    sample,
                    stream,
                    from_order_id=bounds.get("from_order_id", 1),
                    to_order_id=bounds.get("to_order_id"),
                    event_types=bounds.get("event_types"),
                    max_events=3,
                )
            )
            assert [data for page in pages for data in page] == expected, (stream, bounds)
            assert all(0 < len(page) <= 3 for page in pages)
            arrays = list(
                read_data_arrays(
                    sample,
                    stream,
                    from_order_id=bounds.get("from_order_id", 1),
                    to_order_id=bounds.get("to_order_id"),
                    event_types=bounds.get("event_types"),
                    max_events=3,
                )
            )
            decoded = [(count, last, orjson.loads(array)) for count, last, array in arrays]
            assert [event for *_, page in decoded for event in page] == [orjson.loads(data) for data in expected]
            assert all(0 < count == len(page) <= 3 and last == page[-1]["order-id"] for count, last, page in decoded)
        query = Query(from_order_id=3, to_order_id=20, event_types=frozenset({"Odd"}), limit=5)
        assert sample.backend.read_data(query) == [(e.order_id, e.data) for e in sample.backend.read(query)]
        for page_query in (query, Query(from_order_id=2, limit=7), Query(from_order_id=10_000, limit=5)):
            expected_events = sample.backend.read(page_query)
            array = sample.backend.read_data_array(page_query)
            if expected_events:
                assert array is not None and array[:2] == (len(expected_events), expected_events[-1].order_id)
                assert orjson.loads(array[2]) == [orjson.loads(e.data) for e in expected_events], page_query
            else:
                assert array is None, page_query
        for query in (
            Query(stream="s1", from_order_id=3, from_version=2, limit=5),
            Query(stream="s0", to_order_id=20, event_types=frozenset({"Even"}), limit=100),
            Query(stream="big-and-long", limit=10),
            Query(stream="s2", from_version=9),
        ):
            expected_rows = [(e.order_id, e.stream_version, e.data) for e in sample.backend.read(query)]
            assert sample.backend.read_stream_data(query) == expected_rows, query
        sample.append([event("big-and-long", n=i) for i in range(700)])  # more versions than one statement's blocks
        query = Query(stream="big-and-long", from_version=30, limit=650)
        got = sample.backend.read_stream_data(query)
        assert got == [(e.order_id, e.stream_version, e.data) for e in sample.backend.read(query)]
        assert [version for _, version, _ in got] == list(range(30, 680))

    def test_streams_and_counts(self, sample: EventStore) -> None:
        assert [(s.stream_name, s.total_events) for s in sample.streams()] == [
            ("s0", 10),
            ("s1", 10),
            ("s2", 10),
            ("s3", 10),
        ]
        assert sample.last_order_id() == 40
        assert sample.get_event("no-such-id") is None
        assert sample.get_by_order_id(41) is None

    # -- internal streams, deletion, checkpoints -------------------------------------------

    def test_internal_streams_are_written_only_by_the_core(self, store: EventStore) -> None:
        for name in ("__config__", "__all__", "__mine__"):
            with pytest.raises(ValidationError, match="internal"):
                store.append(event(name))
        config = store.append_internal("__config__", "projection-registered", {"projection-name": "p"})
        assert config.stream_name == "__config__" and config.order_id == 1
        assert [e.event_type for e in store.read("__config__")] == ["projection-registered"]

    def test_deleting_a_stream_never_frees_its_order_ids(self, store: EventStore, store_config: dict[str, Any]) -> None:
        self.requires(store, "scavenging")
        store.append([event("keep", n=1), event("gone", n=2), event("gone", n=3)])
        assert store.delete_stream("gone") == 2
        with pytest.raises(NotFound):
            store.delete_stream("gone")
        store.scavenge()
        kept = ["gone"] if self.scavenge_keeps_newest else []
        assert [e.stream_name for e in store.read()] == ["keep", *kept, "__metadata__", "__config__", "__config__"]
        (again,) = store.append(event("gone", n=4))
        # A soft delete: the numbering goes on (as KurrentDB's), and no order-id comes back.
        assert again.stream_version == 3 and again.order_id == 7
        if self.persistent:
            store = self.reopen(store, store_config)
            try:
                (after,) = store.append(event("gone", n=5))
                assert after.order_id == 8 and after.stream_version == 4
            finally:
                store.close()

    def test_checkpoints(self, store: EventStore) -> None:
        assert store.read_checkpoint("projection:x") is None
        store.write_checkpoint("projection:x", {"state": [1, 2], "last": 7})
        store.write_checkpoint("projection:x", {"state": [1, 2, 3], "last": 9})
        assert store.read_checkpoint("projection:x") == {"state": [1, 2, 3], "last": 9}
        store.write_checkpoint("projection:x", None)
        assert store.read_checkpoint("projection:x") is None

    def test_checkpoint_written_in_parts_reads_back_whole(self, store: EventStore) -> None:
        # A value of a few MiB given in parts (as a projection's state is written): read whole;
        # then a one-part value in its place, and a plain one, leave nothing of it behind.
        state = orjson.dumps({f"s-{i}": {"n": i, "pad": "x" * 40} for i in range(60_000)})
        store.write_checkpoint_parts("projection:big", [b'{"state":', state, b"}"])
        assert store.read_checkpoint("projection:big") == {"state": orjson.loads(state)}
        store.write_checkpoint_parts("projection:big", [b'{"state":', b"[1]", b"}"])
        assert store.read_checkpoint("projection:big") == {"state": [1]}
        store.write_checkpoint_parts("projection:big", [b'{"state":', state, b"}"])
        store.write_checkpoint("projection:big", {"state": 2})
        assert store.read_checkpoint("projection:big") == {"state": 2}
        store.write_checkpoint_parts("projection:big", [b'{"state":', state, b"}"])
        store.write_checkpoint("projection:big", None)
        assert store.read_checkpoint("projection:big") is None

    def test_checkpoints_listed_by_prefix(self, store: EventStore) -> None:
        self.requires(store, "listing_checkpoints")
        backend = store.backend
        backend.write_checkpoint("group:a", b"1")
        backend.write_checkpoint("group:b_%", b"2")
        backend.write_checkpoint("groupie", b"3")
        backend.write_checkpoint("consumer:a", b"4")
        assert backend.checkpoints("group:") == {"group:a": b"1", "group:b_%": b"2"}
        assert backend.checkpoints("group:b_") == {"group:b_%": b"2"}
        backend.write_checkpoint("group:a", None)
        assert backend.checkpoints("group:") == {"group:b_%": b"2"}
        assert backend.checkpoints("nothing:") == {}
        backend.write_checkpoint_parts("group:c", [b"[", b"7" * (3 << 20), b"]"])  # listed whole
        assert backend.checkpoints("group:") == {"group:b_%": b"2", "group:c": b"[" + b"7" * (3 << 20) + b"]"}

    # -- filters and categories ----------------------------------------------------------------

    def test_category_reads_and_filters_on_all(self, store: EventStore) -> None:
        from photon.core.filters import EventFilter

        store.append(
            [
                event("account-1", "Opened"),
                event("account", "Opened"),
                event("accounting-1", "Booked"),
                event("account-2", "Deposited"),
                event("orders-1", "Placed"),
                event("account-1", "Deposited"),
            ]
        )
        names = [e.stream_name for e in store.read("__category__:account")]
        assert names == ["account-1", "account", "account-2", "account-1"]
        assert [e.order_id for e in store.read("__category__:account", from_order_id=3, limit=2)] == [4, 6]
        deposits = store.read("__category__:account", event_types=["Deposited"])
        assert [e.order_id for e in deposits] == [4, 6]
        assert list(store.read("__category__:nothing")) == []
        by_type = store.read(event_types=["Deposited"])
        assert [e.order_id for e in by_type] == [4, 6]

        def read(**conditions: Any) -> list[int]:
            return [e.order_id for e in store.read(event_filter=EventFilter.from_mapping(conditions))]

        assert read(**{"stream-prefix": ["account"]}) == [1, 2, 3, 4, 6]
        assert read(**{"event-type-prefix": "Dep"}) == [4, 6]
        assert read(**{"stream-regex": "^account-\\d$"}) == [1, 4, 6]
        assert read(**{"event-type-regex": "ed$", "category": ["orders", "accounting"]}) == [3, 5]
        with pytest.raises(ValidationError, match="names no category"):
            list(store.read("__category__:a-b"))

    def test_category_subscription_hands_over_from_history_to_live(self, store: EventStore) -> None:
        store.append([event("cart-1"), event("shop-1"), event("cart-2")])
        with store.subscribe("__category__:cart", "hot-cold") as subscription:
            history = [subscription.get(5) for _ in range(3)]
            store.append([event("shop-2"), event("cart-1", "Paid")])
            live = subscription.get(5)
        assert [getattr(item, "order_id", None) for item in history] == [1, 3, 3]
        assert isinstance(history[2], CaughtUp)
        assert isinstance(live, RecordedEvent) and live.stream_name == "cart-1" and live.event_type == "Paid"

    # -- consumer groups ----------------------------------------------------------------------

    def test_group_state_round_trips_at_its_largest(self, store: EventStore) -> None:
        # The most a group writes at once: a window's worth of acks above its checkpoint.
        from photon.groups.engine import WINDOW

        state = {"checkpoint": 10**12, "done": list(range(10**12, 10**12 + 2 * WINDOW, 2)), "attempts": {"5": 3}}
        store.write_checkpoint("group:big", state)
        assert store.read_checkpoint("group:big") == state

    def test_consumer_group_resumes_where_it_was_after_reopen(
        self, store: EventStore, store_config: dict[str, Any]
    ) -> None:
        store.groups.create({"group-name": "g", "max-in-flight": 50, "stream": "__category__:acct"})
        store.append([event(f"acct-{i % 3}", n=i) for i in range(30)] + [event("other")])
        member = store.groups.join("g", "m")
        delivered: list[int] = []
        while batch := member.take(1.0):
            delivered.extend(d.event.order_id for d in batch)
        assert len(delivered) == 30
        acked = delivered[::2]
        member.ack(acked)
        if not self.persistent:
            return
        store = self.reopen(store, store_config)
        try:
            member = store.groups.join("g", "m")
            again: list[int] = []
            while batch := member.take(1.0):
                again.extend(d.event.order_id for d in batch)
            assert sorted(again) == sorted(set(delivered) - set(acked))
            member.ack(again)
            assert store.groups.describe("g")["checkpoint"] >= max(delivered)
        finally:
            store.close()

    # -- replay ----------------------------------------------------------------------------------

    def test_cold_replay_ends_and_hot_cold_hands_over_exactly(self, store: EventStore) -> None:
        store.append([event("r", n=i) for i in range(10)])
        cold = list(store.subscribe("r", "cold"))
        assert [e.payload["n"] for e in cold if isinstance(e, RecordedEvent)] == list(range(10))
        assert not any(isinstance(e, CaughtUp) for e in cold)

        stop = threading.Event()

        def writer() -> None:
            n = 10
            while not stop.is_set() and n < 400:
                store.append(event("r", n=n))
                n += 1

        thread = threading.Thread(target=writer)
        subscription = store.subscribe("r", "hot-cold", from_version=3)
        thread.start()
        seen: list[int] = []
        caught_up = 0
        try:
            while len(seen) < 390:
                item = subscription.get(timeout=60)  # a server-backed store on a loaded machine: seconds
                assert item is not None, "no event arrived in 60 s"
                if isinstance(item, CaughtUp):
                    caught_up += 1
                else:
                    assert isinstance(item, RecordedEvent), item
                    seen.append(item.payload["n"])
        finally:
            stop.set()
            thread.join()
            subscription.close()
        assert seen == list(range(2, 392))
        assert caught_up == 1

    def test_backend_class_is_registered(self, store_config: dict[str, Any]) -> None:
        cls = backend_class(store_config["db.backend"])
        assert store_config["db.backend"] in (cls.name, *cls.aliases)

    def test_declared_capabilities_agree_with_the_backend(self, store: EventStore) -> None:
        backend = type(store.backend)
        assert backend.persistent == self.persistent, "the test class's `persistent` differs from the backend's"
        for capability, methods in CAPABILITY_METHODS.items():
            if getattr(backend, capability):
                missing = [m for m in methods if getattr(backend, m) is getattr(Backend, m)]
                assert not missing, f"{backend.__name__} declares {capability} but does not override {missing}"
