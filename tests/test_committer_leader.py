"""An append made while the writer is idle is committed in the caller's own thread, under the
writer lock (`Committer.commit_here`); under contention appends queue and the writer thread
commits them in groups. Either way one writer at a time, and nothing is answered before it is
durable."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from photon.core.committer import SOLO_GROUPS_BEFORE_LEADING, Committer
from photon.core.errors import StoreClosed
from photon.core.events import RecordedEvent
from photon.core.store import EventStore


def event(n: int, stream: str = "s") -> dict[str, object]:
    return {"stream-name": stream, "event-type": "E", "payload": {"n": n}}


def lead(store: EventStore) -> None:
    """Make the next append of `store` commit in its caller's thread: the writer was idle (it
    committed single requests in a row), events of stream `warm-up`."""
    for n in range(SOLO_GROUPS_BEFORE_LEADING):
        store.append(event(n, "warm-up"))


def writing_threads(store: EventStore) -> list[str]:
    """Record the thread of every backend append of `store`."""
    names: list[str] = []
    backend = store.backend
    original = backend.append

    def append(events: Sequence[RecordedEvent]) -> None:
        names.append(threading.current_thread().name)
        original(events)

    backend.append = append  # type: ignore[method-assign]
    return names


def test_an_uncontended_append_commits_in_the_callers_thread(tmp_path: Path) -> None:
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db")) as store:
        names = writing_threads(store)
        for n in range(SOLO_GROUPS_BEFORE_LEADING):  # the writer thread, until it is seen to be idle
            store.append(event(n))
        store.append(event(3))

        def other() -> None:
            store.append([event(4), event(5)])

        thread = threading.Thread(target=other, name="another-caller")
        thread.start()
        thread.join()
        assert names == ["photon-committer"] * 3 + [threading.current_thread().name, "another-caller"]
        assert [(e.order_id, e.stream_version) for e in store.read("s")] == [(n, n) for n in range(1, 7)]
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db")) as reopened:
        assert reopened.last_order_id() == 6


def test_appends_queue_behind_a_busy_writer_and_are_committed_in_groups(tmp_path: Path) -> None:
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db")) as store:
        lead(store)
        names = writing_threads(store)
        release = threading.Event()
        busy = threading.Event()

        def hold(committer: Committer) -> None:
            busy.set()
            release.wait(10)

        holder = threading.Thread(target=store.in_writer, args=(hold,))
        holder.start()
        busy.wait(10)
        answers: list[int] = []
        callers = [
            threading.Thread(target=lambda n=n: answers.extend(e.order_id for e in store.append(event(n, f"t{n}"))))
            for n in range(8)
        ]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(0.05)
        assert answers == []  # nothing written (nor answered) while the writer is busy
        release.set()
        holder.join(10)
        for caller in callers:
            caller.join(10)
        assert sorted(answers) == list(range(SOLO_GROUPS_BEFORE_LEADING + 1, SOLO_GROUPS_BEFORE_LEADING + 9))
        assert set(names) == {"photon-committer"}
        assert len(names) < 8  # queued appends shared commits
        # A group of several requests means contention: the next append queues too.
        store.append(event(9))
        assert names[-1] == "photon-committer"


class Interrupted(BaseException):
    """What a signal's handler raises in the main thread (as Ctrl-C's KeyboardInterrupt)."""


def test_an_interrupt_in_the_write_reaches_the_caller_and_the_writer_goes_on(tmp_path: Path) -> None:
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db")) as store:
        lead(store)
        backend = store.backend
        original = backend.append

        def append(events: Sequence[RecordedEvent]) -> None:
            original(events)
            raise Interrupted  # after the write, before the writer learns it succeeded

        backend.append = append  # type: ignore[method-assign]
        with pytest.raises(Interrupted):
            store.append(event(1))
        backend.append = original  # type: ignore[method-assign]
        (second,) = store.append(event(2))
        assert (second.order_id, second.stream_version) == (SOLO_GROUPS_BEFORE_LEADING + 2, 2)
        assert [e.stream_version for e in store.read("s")] == [1, 2]


def test_an_interrupt_after_the_write_leaves_the_writer_to_learn_the_store_again(tmp_path: Path) -> None:
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db")) as store:
        lead(store)
        live = store.subscribe("__all__", "hot")
        publish = store._broadcaster.publish
        interrupt = [True]

        def interrupted_publish(events: Sequence[RecordedEvent]) -> None:
            if interrupt.pop() if interrupt else False:
                raise Interrupted  # stored, not yet counted nor published
            publish(events)

        store._broadcaster.publish = interrupted_publish  # type: ignore[method-assign]
        with pytest.raises(Interrupted):
            store.append(event(1))
        (second,) = store.append(event(2))
        assert (second.order_id, second.stream_version) == (SOLO_GROUPS_BEFORE_LEADING + 2, 2)
        # The event the interrupt kept from subscribers reaches them before the next one.
        got: list[int] = []
        for _ in range(10):  # events, and the markers a subscription sends between them
            item = live.get(5)
            if isinstance(item, RecordedEvent):
                got.append(item.order_id)
            if len(got) == 2 or item is None:
                break
        assert got == [SOLO_GROUPS_BEFORE_LEADING + 1, SOLO_GROUPS_BEFORE_LEADING + 2]
        live.close()


def test_a_signal_in_the_middle_of_a_commit_in_the_main_thread(tmp_path: Path) -> None:
    """A real signal whose handler raises, delivered while the main thread commits."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")

    def handler(signum: int, frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db")) as store:
            lead(store)
            backend = store.backend
            original = backend.append

            def append(events: Sequence[RecordedEvent]) -> None:
                os.kill(os.getpid(), signal.SIGUSR1)
                original(events)

            backend.append = append  # type: ignore[method-assign]
            with pytest.raises(Interrupted):
                store.append(event(1))
            backend.append = original  # type: ignore[method-assign]
            stored = list(store.read("s"))
            (after,) = store.append(event(2))
            assert after.order_id == SOLO_GROUPS_BEFORE_LEADING + len(stored) + 1
            assert after.stream_version == len(stored) + 1
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_an_append_after_close_is_refused_and_close_waits_for_a_commit_in_a_caller(tmp_path: Path) -> None:
    store = EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db"))
    lead(store)
    backend = store.backend
    original = backend.append
    writing = threading.Event()
    finish = threading.Event()

    def slow(events: Sequence[RecordedEvent]) -> None:
        writing.set()
        finish.wait(10)
        original(events)

    backend.append = slow  # type: ignore[method-assign]
    answers: list[int] = []
    caller = threading.Thread(target=lambda: answers.extend(e.order_id for e in store.append(event(1))))
    caller.start()
    writing.wait(10)
    committer = store._committer
    assert committer is not None
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(0.1)
    assert closer.is_alive()  # waits for the commit in the caller's thread
    finish.set()
    caller.join(10)
    closer.join(10)
    assert answers == [SOLO_GROUPS_BEFORE_LEADING + 1]
    assert committer.stopped
    with pytest.raises(StoreClosed):
        store.append(event(2))
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db")) as reopened:
        assert [e.stream_version for e in reopened.read("s")] == [1]
