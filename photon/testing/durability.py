"""Contract: volume, concurrent appenders, durability across close and reopen, the single writer.

Part of the backend contract suite (`BackendContract` inherits it): every backend passes it.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from photon.core.errors import StoreLocked
from photon.core.events import RecordedEvent
from photon.core.store import EventStore
from photon.testing.base import ContractBase, event, gapless


class DurabilityContract(ContractBase):
    # -- volume and concurrency -------------------------------------------------------------

    @pytest.mark.slow
    def test_many_streams(self, store: EventStore) -> None:
        names = [f"stream-{i:05d}" for i in range(self.many_streams)]
        for start in range(0, len(names), 2000):
            store.append([event(name) for name in names[start : start + 2000]])
        listed = store.streams()
        assert len(listed) == self.many_streams
        assert all(s.total_events == 1 for s in listed)
        assert store.stream_version(names[-1]) == 1
        (more,) = store.append(event(names[1234]))
        assert more.stream_version == 2

    @pytest.mark.slow
    def test_many_events(self, store: EventStore) -> None:
        rng = random.Random(7)
        total = self.many_events
        for start in range(0, total, 5000):
            store.append([event(f"s{rng.randrange(100)}", n=start + i) for i in range(5000)])
        seen = 0
        for seen, stored in enumerate(store.read(), start=1):
            assert stored.order_id == seen
        assert seen == total
        assert sum(s.total_events for s in store.streams()) == total
        assert [e.order_id for e in store.read(from_order_id=total - 2)] == [total - 2, total - 1, total]

    def test_concurrent_appenders_get_distinct_gapless_positions(self, store: EventStore) -> None:
        results: dict[int, list[RecordedEvent]] = {}

        def appender(index: int) -> None:
            mine = []
            for n in range(50):
                mine.extend(store.append(event(f"t{index}", n=n)))
            results[index] = mine

        threads = [threading.Thread(target=appender, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        everything = list(store.read())
        assert gapless(everything) and len(everything) == 400
        for index, mine in results.items():
            assert [e.stream_version for e in mine] == list(range(1, 51))
            assert [e.payload["n"] for e in store.read(f"t{index}")] == list(range(50))

    # -- durability and the single writer ------------------------------------------------------

    def test_close_and_reopen_keeps_everything(self, store: EventStore, store_config: dict[str, Any]) -> None:
        if not self.persistent:
            pytest.skip("this backend keeps nothing after close")
        before = store.append([event("a", n=i) for i in range(10)] + [dict(event("b"), id="known")])
        store.write_checkpoint("k", {"v": 1})
        store = self.reopen(store, store_config)
        try:
            assert list(store.read()) == before
            assert store.read_checkpoint("k") == {"v": 1}
            (next_one,) = store.append(event("a"))
            assert next_one.order_id == 12 and next_one.stream_version == 11
            (known,) = store.append(dict(event("b"), id="known"))
            assert known == before[-1]
        finally:
            store.close()

    def test_second_writer_is_refused(self, store: EventStore, store_config: dict[str, Any]) -> None:
        if not self.persistent:
            pytest.skip("each in-process store is its own")
        with pytest.raises(StoreLocked, match="one process writes a store"):
            EventStore.open(store_config)
        with EventStore.open(store_config, read_only=True) as reader:
            assert reader.last_order_id() == store.last_order_id()

    def test_writer_lock_is_released_on_close(self, store: EventStore, store_config: dict[str, Any]) -> None:
        if not self.persistent:
            pytest.skip("each in-process store is its own")
        store.close()
        with EventStore.open(store_config) as again:
            again.append(event())
