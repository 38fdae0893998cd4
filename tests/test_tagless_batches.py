"""Batches the validation knows carry no tags (`Tagless`) are written without a search for tags,
and tags sent in any other append, alone or committed in one group with tagless batches, are
still indexed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from backends.sql.statements import tag_rows
from photon.core.append_prepare import BATCH_VALIDATION, prepare_append
from photon.core.append_request import AppendOptions
from photon.core.events import RecordedEvent, Tagless
from photon.core.store import EventStore


def plain(i: int, **extra: Any) -> dict[str, Any]:
    return {"stream-name": f"order-{i % 3}", "event-type": "Placed", "payload": {"n": i}, **extra}


def options() -> AppendOptions:
    return AppendOptions("any", None, None)


def test_the_batch_validations_mark_their_events_tagless_and_no_other_path_does() -> None:
    size = BATCH_VALIDATION + 4
    pending, *_ = prepare_append([plain(i) for i in range(size)], options(), 1 << 20, internal=False)
    assert type(pending) is Tagless
    assert (
        type(prepare_append([plain(i, tags=None) for i in range(size)], options(), 1 << 20, internal=False)[0])
        is Tagless
    )
    with_tags = [plain(i, tags=["vip"] if i == 3 else None) for i in range(size)]
    assert type(prepare_append(with_tags, options(), 1 << 20, internal=False)[0]) is list
    assert type(prepare_append([plain(1)], options(), 1 << 20, internal=False)[0]) is list
    assert type(prepare_append([plain(1), plain(2)], options(), 1 << 20, internal=False)[0]) is Tagless
    assert type(prepare_append([plain(1), plain(2, tags=["x"])], options(), 1 << 20, internal=False)[0]) is list


def test_tag_rows_searches_every_list_but_a_tagless_one() -> None:
    tagged = RecordedEvent(7, "order-1", 1, "id-7", "Placed", 0, b'{"order-id":7,"tags":["vip","vip"]}')
    assert tag_rows([tagged]) == [("vip", 7)]
    assert tag_rows(Tagless([tagged])) == []  # the marker is trusted: only the validation makes it


def test_tags_are_indexed_beside_tagless_batches_in_the_same_commits(tmp_path: Path) -> None:
    config = {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "s.db"), "sqlite.synchronous": "OFF"}
    size = BATCH_VALIDATION + 4
    with EventStore.open(config) as store:
        # Threads appending at once: the writer commits tagless and tagged batches in one group.
        def work(thread: int) -> None:
            for round_ in range(15):
                if (thread + round_) % 2:
                    store.append([plain(i) for i in range(size)])
                else:
                    store.append([plain(i, tags=[f"t{thread}"] if i % 5 == 0 else None) for i in range(size)])

        threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        store.append(plain(0, tags=["alone"]))
        everything = list(store.read())
        assert len(everything) == 6 * 15 * size + 1
        for tag in [*(f"t{t}" for t in range(6)), "alone"]:
            expected = [e for e in everything if tag in e.tags]
            assert expected
            assert list(store.read_matching([{"tags": [tag]}])) == expected
