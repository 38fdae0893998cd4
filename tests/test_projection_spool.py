"""The memory files a shared start-up read hands its pages to the workers through."""

from __future__ import annotations

import multiprocessing

import pytest

from photon.projections import spool

pytestmark = pytest.mark.skipif(not spool.available(), reason="no memory files here (not Linux)")


def _read_in_child(path: str, queue: multiprocessing.Queue[bytes]) -> None:
    queue.put(spool.read(path))


def test_a_page_reads_back_whole_in_another_process_and_slots_are_reused() -> None:
    shared = spool.Spool(3)
    try:
        pages = [b"[" + b",".join([b'{"n":%d}' % i] * (4000 - 500 * k)) + b"]" for k, i in enumerate(range(7))]
        paths = [shared.put(page) for page in pages[:3]]
        assert len(set(paths)) == 3
        ctx = multiprocessing.get_context("spawn")
        queue: multiprocessing.Queue[bytes] = ctx.Queue()
        child = ctx.Process(target=_read_in_child, args=(paths[1], queue))
        child.start()
        assert queue.get(timeout=30) == pages[1]  # another process reads it by the manager's fd
        child.join(30)
        # The fourth page goes into the first slot, over a longer page: it reads back exactly.
        assert shared.put(pages[3]) == paths[0]
        assert spool.read(paths[0]) == pages[3]
        assert [shared.put(page) for page in pages[4:]] == [paths[1], paths[2], paths[0]]
        assert spool.read(paths[0]) == pages[6] and spool.read(paths[2]) == pages[5]
    finally:
        shared.close()
    assert shared.closed
