"""Contract: history is read in pages that stay near their byte bound (on a backend that
`reads_by_bytes`) and lose nothing, and a stream's read carries on past blocks of versions with
nothing to return.

Part of the backend contract suite (`BackendContract` inherits it): every backend passes it.
"""

from __future__ import annotations

import pytest

from photon.core.backend import Query
from photon.core.events import RecordedEvent
from photon.core.store import EventStore
from photon.testing.base import ContractBase, event


class PagingContract(ContractBase):
    def test_history_pages_stay_near_their_byte_bound_and_lose_nothing(
        self, store: EventStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store.append([event("big", "Big", pad="x" * 10_000) for _ in range(60)])
        store.append([event("small-1", "Small") for _ in range(300)])
        store.append([event("big", "Big", pad="y" * 10_000) for _ in range(20)])
        store.page_bytes = 64 * 1024
        backend = store.backend
        queries: list[Query] = []
        read = backend.read

        def observed(query: Query) -> list[RecordedEvent]:
            queries.append(query)
            return read(query)

        monkeypatch.setattr(backend, "read", observed)
        # A backend that reads by bytes ends every page itself (after the event that passes the
        # bound); the core sizes the others' pages from the events before (`test_stream_pages`).
        bound = 64 * 1024 + 11_000
        for stream, types, expected in (
            ("big", None, 80),
            ("__all__", None, 380),
            ("__category__:big", None, 80),
            ("__all__", ["Big"], 80),
            ("small-1", None, 300),
        ):
            queries.clear()
            pages = list(store.read_pages(stream, event_types=types))
            found = [e.order_id for page in pages for e in page]
            assert len(found) == expected and found == sorted(set(found)), stream
            if backend.reads_by_bytes:
                assert all(sum(len(e.data) for e in page) <= bound for page in pages), stream
            if stream == "big":
                # Each page of a stream goes on from the version after the last one read.
                assert [q.from_version for q in queries[1:]] == [p[-1].stream_version + 1 for p in pages[:-1]]
            if stream == "small-1" and backend.reads_by_bytes:
                assert len(queries) == 1  # 300 small events: one page, one read

    def test_stream_reads_past_long_runs_without_a_match(self, store: EventStore) -> None:
        # The SQL backends read a stream a few blocks of versions per statement: blocks with
        # nothing to return (a type filter, an order-id bound) must not end the read.
        store.append([event("long", "Early", n=i) for i in range(1300)])
        store.append([event("other", "Late")])
        store.append([event("long", "Late", n=i) for i in range(5)])
        late = [e.stream_version for e in store.read("long", event_types=["Late"])]
        assert late == list(range(1301, 1306))
        backend = store.backend
        after = backend.read(Query(stream="long", from_order_id=1302, limit=3))
        assert [e.stream_version for e in after] == [1301, 1302, 1303]
        assert backend.read(Query(stream="nothing-here", limit=10)) == []
        assert backend.read(Query(stream="long", from_version=1306, limit=10)) == []
