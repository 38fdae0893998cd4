"""Batches the validation knows carry no tags (`Tagless`) are written without a search for tags,
and tags sent in any other append, alone or committed in one group with tagless batches, are
still indexed."""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import Any

import pytest

from backends.sql.statements import tag_rows
from photon.core.append_prepare import BATCH_VALIDATION, prepare_append
from photon.core.append_request import AppendOptions
from photon.core.errors import EventIdConflict, ValidationError, VersionConflict
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


def test_a_validated_batch_is_left_untracked_by_the_garbage_collector() -> None:
    """Plain tuples of strings and numbers, which the collector stops tracking at its first look
    (named tuples it tracks for ever, and a batch of them brought on full collections)."""
    pending, *_ = prepare_append([plain(i) for i in range(BATCH_VALIDATION + 4)], options(), 1 << 20, internal=False)
    gc.collect()
    assert not any(map(gc.is_tracked, pending))


def test_batches_read_by_position_keep_ids_versions_and_retries(tmp_path: Path) -> None:
    """What the writer and the preparation read of the batch path's events: the stream of an
    expected version, client ids (a retry, an id of another stream's event, an id twice)."""
    size = BATCH_VALIDATION + 4
    config = {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "s.db"), "sqlite.synchronous": "OFF"}
    with EventStore.open(config) as store:
        batch = [{**plain(0), "stream-name": "cart-1", "id": f"c-{i}"} for i in range(size)]
        first = store.append(batch, expected_version="no-stream")
        assert [e.stream_version for e in first] == list(range(1, size + 1))
        assert store.append(batch, expected_version="no-stream") == first  # a retry: what is stored
        with pytest.raises(VersionConflict):
            store.append([{**plain(0), "stream-name": "cart-1"} for _ in range(size)], expected_version=3)
        other = [{**plain(0), "stream-name": "cart-2", "id": f"c-{i}"} for i in range(size)]
        with pytest.raises(EventIdConflict):
            store.append(other)
        twice = [{**plain(0), "id": "same" if i in (2, 7) else f"d-{i}"} for i in range(size)]
        with pytest.raises(ValidationError, match="event 7: id 'same' appears twice"):
            store.append(twice)
        assert len(list(store.read())) == size


def test_client_ids_are_found_wherever_they_are_in_the_batch() -> None:
    # The usual batch has none (one pass over the flags answers); one client id, even last, is found.
    from photon.core.append_waits import client_ids

    batch = [{"stream-name": "s", "event-type": "t", "payload": {}} for _ in range(BATCH_VALIDATION)]
    pending, *_ = prepare_append(batch, AppendOptions(), 1 << 20, internal=False)
    assert client_ids(pending) == []
    mixed = [*batch[:-1], {**batch[-1], "id": "the-client-s-own"}]
    pending, *_ = prepare_append(mixed, AppendOptions(), 1 << 20, internal=False)
    assert client_ids(pending) == ["the-client-s-own"]
