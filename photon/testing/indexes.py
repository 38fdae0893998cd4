"""Contract: reads a backend answers from an index (category, event type, tags) return exactly
what a scan of `__all__` returns, in order, through hard deletes, scavenges and redactions.

Part of the backend contract suite (`BackendContract` inherits it): every backend passes it. A
backend without an index for a read is compared through the core, which answers it by scanning.
"""

from __future__ import annotations

from collections.abc import Callable

from photon.core.append_request import QueryItem, query_matches
from photon.core.backend import Backend, Query
from photon.core.events import RecordedEvent, category_of
from photon.core.store import EventStore
from photon.testing.base import ContractBase

STREAMS = ("cart-1", "cart-2", "cart", "carts-1", "shop-1", "shop-2", "shop")
TYPES = ("Added", "Removed", "Paid")


def _page_through(backend: Backend, query: Query, page: int) -> list[RecordedEvent]:
    """Every event a query matches, read `page` events at a time (the way the core pages)."""
    found: list[RecordedEvent] = []
    position = query.from_order_id
    while True:
        events = backend.read(
            Query(
                from_order_id=position,
                to_order_id=query.to_order_id,
                event_types=query.event_types,
                categories=query.categories,
                limit=page,
            )
        )
        found.extend(events)
        if len(events) < page:
            return found
        position = events[-1].order_id + 1


def _tagged(i: int) -> list[str]:
    tags = [f"item:{i % 5}"]
    if i % 3 == 0:
        tags.append("big")
    return tags


class IndexContract(ContractBase):
    def _fill(self, store: EventStore, start: int, count: int, streams: tuple[str, ...] = STREAMS) -> None:
        batch = []
        for i in range(start, start + count):
            event = {
                "stream-name": streams[(i * 5) % len(streams)],
                "event-type": TYPES[i % len(TYPES)],
                "payload": {"n": i},
            }
            if i % 2 == 0:
                event["tags"] = _tagged(i)
            batch.append(event)
        for offset in range(0, len(batch), 17):  # several commits, streams interleaved in each
            store.append(batch[offset : offset + 17])

    def _assert_indexes_agree_with_a_scan(self, store: EventStore) -> None:
        backend = store.backend
        everything = _page_through(backend, Query(), 1000)
        middle = everything[len(everything) // 3].order_id
        end = everything[2 * len(everything) // 3].order_id

        def scan(keep: Callable[[RecordedEvent], bool], low: int = 1, high: int | None = None) -> list[RecordedEvent]:
            return [e for e in everything if keep(e) and e.order_id >= low and (high is None or e.order_id <= high)]

        for names in ({"cart"}, {"cart", "shop"}, {"carts"}, {"nothing"}):
            categories = frozenset(names)

            def in_categories(e: RecordedEvent, categories: frozenset[str] = categories) -> bool:
                return category_of(e.stream_name) in categories

            if "category" in backend.indexed_reads:
                for page in (4, 1000):
                    query = Query(categories=categories)
                    assert _page_through(backend, query, page) == scan(in_categories), names
                ranged = Query(from_order_id=middle, to_order_id=end, categories=categories)
                assert _page_through(backend, ranged, 5) == scan(in_categories, middle, end), names
                typed = Query(categories=categories, event_types=frozenset({"Paid"}))
                assert _page_through(backend, typed, 3) == scan(lambda e: in_categories(e) and e.event_type == "Paid")
            # Through the core, whichever way the backend answers: the category stream is `__all__` filtered.
            for name in sorted(names):
                via_core = list(store.read(f"__category__:{name}"))
                assert via_core == [e for e in store.read() if category_of(e.stream_name) == name], name

        for types in ({"Paid"}, {"Added", "Removed"}, {"Nothing"}):
            wanted = frozenset(types)

            def of_type(e: RecordedEvent, wanted: frozenset[str] = wanted) -> bool:
                return e.event_type in wanted

            expected = scan(of_type)
            assert _page_through(backend, Query(event_types=wanted), 4) == expected, types
            ranged = Query(from_order_id=middle, to_order_id=end, event_types=wanted)
            assert _page_through(backend, ranged, 1000) == scan(of_type, middle, end)
            assert list(store.read(event_types=sorted(types))) == expected

        queries: list[tuple[QueryItem, ...]] = [
            (QueryItem(tags=frozenset({"item:1"})),),
            (QueryItem(tags=frozenset({"item:3", "big"})),),
            (QueryItem(types=frozenset({"Paid"}), tags=frozenset({"item:2"})),),
            (QueryItem(tags=frozenset({"item:0"})), QueryItem(types=frozenset({"Removed"}))),
            (QueryItem(types=frozenset({"Added"})),),
            (QueryItem(tags=frozenset({"no-such-tag"})),),
            (),
        ]
        for items in queries:
            for after, limit in ((0, 10_000), (middle, 10_000), (0, 3), (middle, 2)):
                scanned = [e for e in everything if e.order_id > after and query_matches(items, e)][:limit]
                assert backend.read_matching(items, after, limit) == scanned, (items, after, limit)

    def test_indexed_reads_return_what_a_scan_returns(self, store: EventStore) -> None:
        self._fill(store, 0, 150)
        self._assert_indexes_agree_with_a_scan(store)

    def test_indexed_reads_after_deletes_scavenges_and_redactions(self, store: EventStore) -> None:
        self._fill(store, 0, 150)
        store.delete_stream("cart-2")  # soft: the events stay in __all__ until scavenged
        self._assert_indexes_agree_with_a_scan(store)
        if store.backend.redaction:
            store.redact(stream="shop-1", reason="erasure")
        if store.backend.scavenging:
            store.delete_stream("carts-1", hard=True)
            store.set_stream_metadata("shop-2", {"max-count": 3})
            store.set_stream_metadata("cart", {"truncate-before": 5})
            removed = store.scavenge().removed
            assert removed > 0
            self._assert_indexes_agree_with_a_scan(store)
            gone = {"cart-2", "carts-1"}
            kept_newest = self.scavenge_keeps_newest
            left = [
                e for e in store.backend.read(Query(categories=frozenset({"cart", "carts"}))) if e.stream_name in gone
            ]
            if "category" in store.backend.indexed_reads:
                assert len(left) <= (2 if kept_newest else 0)  # a scavenged event is not read back through the index
        open_streams = tuple(s for s in STREAMS if s != "carts-1")  # hard deleted: never written again
        self._fill(store, 150, 40, open_streams)  # the indexes go on after all of it
        self._assert_indexes_agree_with_a_scan(store)
