"""Contract: appends consistent across streams, tags, and conditional (DCB) appends.

Part of the backend contract suite (`BackendContract` inherits it): every backend passes it.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from photon.core.append_request import AppendCondition, QueryItem
from photon.core.errors import AppendConditionFailed, ValidationError, VersionConflict
from photon.core.store import EventStore
from photon.testing.base import ContractBase


def tagged(stream: str, event_type: str, *tags: str, **payload: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"stream-name": stream, "event-type": event_type, "payload": payload or {"n": 1}}
    if tags:
        event["tags"] = list(tags)
    return event


def order_ids(events: Any) -> list[int]:
    return [e.order_id for e in events]


class AppendContract(ContractBase):
    # -- several streams, each with its expected version -------------------------------------

    def test_append_spans_streams_with_an_expected_version_each(self, store: EventStore) -> None:
        store.append([tagged("acc-1", "Opened"), tagged("acc-2", "Opened")])
        stored = store.append(
            [tagged("acc-1", "Debited"), tagged("acc-2", "Credited"), tagged("log", "Transfer")],
            expected_versions={"acc-1": 1, "acc-2": 1, "log": "no-stream"},
        )
        assert [(e.stream_name, e.stream_version) for e in stored] == [("acc-1", 2), ("acc-2", 2), ("log", 1)]
        assert order_ids(stored) == [3, 4, 5]

    def test_one_stale_stream_stores_nothing_of_the_append(self, store: EventStore) -> None:
        store.append([tagged("acc-1", "Opened"), tagged("acc-2", "Opened"), tagged("acc-2", "Credited")])
        with pytest.raises(VersionConflict) as caught:
            store.append(
                [tagged("acc-1", "Debited"), tagged("acc-2", "Credited")],
                expected_versions={"acc-1": 1, "acc-2": 1},
            )
        assert (caught.value.stream, caught.value.expected, caught.value.current) == ("acc-2", 1, 2)
        assert store.last_order_id() == 3
        assert store.stream_version("acc-1") == 1

    def test_an_expected_version_may_guard_a_stream_not_written(self, store: EventStore) -> None:
        store.append(tagged("limits", "Set"))
        store.append(tagged("orders", "Placed"), expected_versions={"limits": 1})
        with pytest.raises(VersionConflict):
            store.append(tagged("orders", "Placed"), expected_versions={"limits": 0})
        assert store.stream_version("orders") == 1

    def test_expected_versions_bad_input_is_refused(self, store: EventStore) -> None:
        with pytest.raises(ValidationError, match="not both"):
            store.append(tagged("a", "X"), expected_version=0, expected_versions={"a": 0})
        with pytest.raises(ValidationError, match="client stream"):
            store.append(tagged("a", "X"), expected_versions={"__config__": 0})
        with pytest.raises(ValidationError, match="'b' must have a version"):
            store.append(tagged("a", "X"), expected_versions={"b": -1})
        with pytest.raises(ValidationError, match="one stream"):
            store.append([tagged("a", "X"), tagged("b", "X")], expected_version=0)
        assert store.last_order_id() == 0

    def test_concurrent_multi_stream_appends_never_both_win(self, store: EventStore) -> None:
        store.append([tagged("x", "Opened"), tagged("y", "Opened")])
        wins: list[int] = []
        conflicts: list[int] = []
        barrier = threading.Barrier(8)

        def attempt(number: int) -> None:
            barrier.wait()
            try:
                store.append([tagged("x", "Moved"), tagged("y", "Moved")], expected_versions={"x": 1, "y": 1})
                wins.append(number)
            except VersionConflict:
                conflicts.append(number)

        threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(wins) == 1 and len(conflicts) == 7
        assert store.stream_version("x") == store.stream_version("y") == 2

    # -- tags --------------------------------------------------------------------------------

    def test_tags_are_stored_and_read_back(self, store: EventStore) -> None:
        stored = store.append(tagged("course-1", "Registered", "course:1", "term:autumn"))[0]
        assert stored.tags == ("course:1", "term:autumn")
        read = next(iter(store.read("course-1")))
        assert read.to_dict()["tags"] == ["course:1", "term:autumn"]
        assert next(iter(store.read("course-1"))).tags == ("course:1", "term:autumn")

    @pytest.mark.parametrize(
        ("tags", "message"),
        [
            ("course:1", "must be a list of strings"),
            ([1], "only strings"),
            ([""], "1 to 256 printable"),
            (["a\nb"], "1 to 256 printable"),
            (["x" * 257], "1 to 256 printable"),
        ],
    )
    def test_bad_tags_are_refused_and_nothing_is_stored(self, store: EventStore, tags: Any, message: str) -> None:
        batch = [tagged("a", "X") for _ in range(20)]
        batch[7]["tags"] = tags
        with pytest.raises(ValidationError, match=message) as caught:
            store.append(batch)
        assert caught.value.field == "tags"
        assert "event 7" in str(caught.value)
        assert store.last_order_id() == 0

    def test_a_payload_key_named_tags_is_not_an_event_tag(self, store: EventStore) -> None:
        store.append({"stream-name": "a", "event-type": "X", "payload": {"tags": ["t"]}})
        assert list(store.read_matching([{"tags": ["t"]}])) == []
        assert next(iter(store.read("a"))).tags == ()

    # -- reads by query ----------------------------------------------------------------------

    @pytest.fixture
    def courses(self, store: EventStore) -> EventStore:
        store.append(tagged("s-1", "StudentRegistered", "student:1"))  # 1
        store.append(tagged("c-1", "CourseRegistered", "course:1"))  # 2
        store.append(tagged("c-1", "StudentJoined", "course:1", "student:1"))  # 3
        store.append(tagged("c-2", "CourseRegistered", "course:2"))  # 4
        store.append(tagged("c-2", "StudentJoined", "course:2", "student:1"))  # 5
        store.append_internal("__config__", "tagged-internal", {"tags": ["student:1"]})  # 6: never matches
        store.append(tagged("plain", "Noted"))  # 7
        return store

    def test_read_matching_follows_the_dcb_rules(self, courses: EventStore) -> None:
        def find(query: Any, after: int = 0, limit: int | None = None) -> list[int]:
            return order_ids(courses.read_matching(query, after=after, limit=limit))

        assert find([]) == [1, 2, 3, 4, 5, 7]  # no items: every client event
        assert find([{"tags": ["student:1"]}]) == [1, 3, 5]
        assert find([{"tags": ["student:1", "course:2"]}]) == [5]  # tags of an item: all of them
        assert find([{"event-types": ["CourseRegistered"]}]) == [2, 4]
        assert find([{"event-types": ["StudentJoined"], "tags": ["course:1"]}]) == [3]
        assert find([{"tags": ["course:2"]}, {"event-types": ["StudentRegistered"]}]) == [1, 4, 5]  # items: any
        assert find([{"tags": ["student:1"]}], after=3) == [5]
        assert find([{"tags": ["student:1"]}], limit=2) == [1, 3]
        assert find([{"tags": ["nobody"]}]) == []
        assert find([QueryItem(frozenset({"Noted"}))]) == [7]

    def test_read_matching_bad_query_is_refused(self, courses: EventStore) -> None:
        with pytest.raises(ValidationError, match="unknown field 'types'"):
            list(courses.read_matching([{"types": ["X"]}]))
        with pytest.raises(ValidationError, match="after"):
            list(courses.read_matching([], after=-1))

    # -- conditional appends -----------------------------------------------------------------

    def test_condition_fails_naming_the_first_matching_event(self, courses: EventStore) -> None:
        boundary = {"query": [{"tags": ["student:1"]}], "after": 1}
        with pytest.raises(AppendConditionFailed) as caught:
            courses.append(tagged("c-3", "StudentJoined", "student:1"), condition=boundary)
        failed = caught.value
        assert (failed.order_id, failed.stream, failed.event_type, failed.after) == (3, "c-1", "StudentJoined", 1)
        assert failed.event_id in str(failed)
        assert courses.last_order_id() == 7

    def test_condition_passes_when_nothing_matches_after_the_position(self, courses: EventStore) -> None:
        stored = courses.append(
            tagged("c-3", "StudentJoined", "student:1", "course:3"),
            condition=AppendCondition((QueryItem(tags=frozenset({"student:1"})),), after=5),
        )
        assert stored[0].order_id == 8
        # Types narrow the boundary: no CourseRegistered for course:1 after 2.
        courses.append(
            tagged("c-1", "CourseRenamed", "course:1"),
            condition={"query": [{"event-types": ["CourseRegistered"], "tags": ["course:1"]}], "after": 2},
        )
        # No position: nothing matching at all.
        courses.append(tagged("x", "Y", "fresh"), condition={"query": [{"tags": ["fresh"]}]})
        with pytest.raises(AppendConditionFailed):
            courses.append(tagged("x", "Y", "fresh"), condition={"query": [{"tags": ["fresh"]}]})
        # The store's own events never count: an empty query after the last client event passes
        # although __config__ was written after it.
        courses.append_internal("__config__", "noise", {})
        courses.append(tagged("x", "Y"), condition={"query": [], "after": courses.last_order_id() - 1})

    def test_bad_condition_is_refused(self, store: EventStore) -> None:
        condition: Any
        for condition, message in [
            ({"query": "x"}, "list of query items"),
            ({"query": [{"tags": "a"}]}, "list of strings"),
            ({"after": "soon"}, "'after' must be an order-id"),
            ({"query": [], "position": 1}, "unknown field 'position'"),
            ("x", "must be an object"),
        ]:
            with pytest.raises(ValidationError, match=message):
                store.append(tagged("a", "X"), condition=condition)
        assert store.last_order_id() == 0

    def test_concurrent_conditional_appends_on_one_boundary_never_both_win(self, store: EventStore) -> None:
        # Every attempt reads the boundary at 0 and appends into it: exactly one may win, even
        # when several land in one group commit.
        wins: list[int] = []
        failures: list[AppendConditionFailed] = []
        barrier = threading.Barrier(8)

        def attempt(number: int) -> None:
            barrier.wait()
            try:
                store.append(
                    tagged(f"seat-{number}", "SeatBooked", "seat:12A"),
                    condition={"query": [{"tags": ["seat:12A"]}], "after": 0},
                )
                wins.append(number)
            except AppendConditionFailed as exc:
                failures.append(exc)

        threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(wins) == 1 and len(failures) == 7
        assert {f.order_id for f in failures} == {1}
        assert order_ids(store.read_matching([{"tags": ["seat:12A"]}])) == [1]

    def test_conditions_and_expected_versions_together(self, store: EventStore) -> None:
        store.append(tagged("a", "X", "k"))
        with pytest.raises(VersionConflict):
            store.append(tagged("a", "X", "k"), expected_versions={"a": 0}, condition={"query": [{"tags": ["k"]}]})
        with pytest.raises(AppendConditionFailed):
            store.append(tagged("a", "X", "k"), expected_versions={"a": 1}, condition={"query": [{"tags": ["k"]}]})
        store.append(
            tagged("a", "X", "k"), expected_versions={"a": 1}, condition={"query": [{"tags": ["k"]}], "after": 1}
        )
        assert store.stream_version("a") == 2

    def test_tags_index_survives_reopening(self, store: EventStore, store_config: dict[str, Any]) -> None:
        self.requires(store, "scavenging")
        if not self.persistent:
            pytest.skip("the store lives only as long as its object")
        store.append([tagged("a", "X", "t1"), tagged("b", "Y", "t1", "t2"), tagged("c", "Z")])
        store.delete_stream("a")
        # Like __all__, reads by query see a deleted stream's events until a scavenge removes them.
        assert order_ids(store.read_matching([{"tags": ["t1"]}])) == [1, 2]
        store.scavenge()
        reopened = self.reopen(store, store_config)
        try:
            kept = [1] if self.scavenge_keeps_newest else []
            assert order_ids(reopened.read_matching([{"tags": ["t1"]}])) == [*kept, 2]
            with pytest.raises(AppendConditionFailed):
                reopened.append(tagged("d", "X"), condition={"query": [{"tags": ["t2"]}]})
        finally:
            reopened.close()
