"""A whole stream's read plan, worked out at once, is the plan the general rules give; and
`EventStore.read` stays lazy now that it joins its pages in C."""

from __future__ import annotations

import pytest

from photon.core.errors import ValidationError
from photon.core.filtered_reads import plan_read
from photon.core.filters import EventFilter
from photon.core.store import EventStore


@pytest.mark.parametrize("stream", ["s", "account-7", "__metadata__", "a-b-c"])
def test_a_whole_streams_plan_is_the_general_one(stream: str) -> None:
    with EventStore.open(db_backend="memory") as store:
        backend = store.backend
        # An empty filter takes the general way through the rules; no filter the short one.
        assert plan_read(backend, stream, None, None) == plan_read(backend, stream, None, EventFilter())


def test_reads_that_are_not_a_whole_stream_keep_their_plans() -> None:
    with EventStore.open(db_backend="memory") as store:
        backend = store.backend
        assert plan_read(backend, "__all__", None, None).stream is None
        assert plan_read(backend, "__category__:c", None, None).check is not None
        assert plan_read(backend, "c-**", None, None).check is not None
        assert plan_read(backend, "s", frozenset({"T"}), None).event_types == frozenset({"T"})


def test_read_is_lazy_and_reads_every_page() -> None:
    with EventStore.open(db_backend="memory") as store:
        store.append([{"stream-name": "s", "event-type": "T", "payload": {"n": n}} for n in range(2500)])
        bad = store.read("__all__", from_version=3)  # checked when the first event is asked for
        with pytest.raises(ValidationError, match="from-version"):
            next(bad)
        events = store.read("s")
        assert iter(events) is events
        assert [e.stream_version for e in events] == list(range(1, 2501))  # pages of 1,000 joined
