"""The writer gathers a group: what is queued, and the next appends of the callers it has just
answered, for at most one commit's time (`photon.core.committer.Committer.gather`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import photon.core.committer as committer_module
from backends.memory import MemoryBackend
from photon.core.append_waits import AppendRequest
from photon.core.broadcaster import Broadcaster
from photon.core.committer import Action, Committer
from photon.core.events import PendingEvent
from photon.core.store import EventStore


def request(n: int) -> AppendRequest:
    return AppendRequest([PendingEvent("s", f"id-{n}", "t", 0, b"{}", False)], "any")


@pytest.fixture
def writer() -> Iterator[Committer]:
    """A writer whose thread is not started: the test calls `gather` itself."""
    backend = MemoryBackend({})
    backend.open(writer=True)
    yield Committer(backend, Broadcaster(0), 0, max_batch=100)
    backend.close()


def hand_in_later(writer: Committer, delay: float) -> tuple[threading.Thread, list[AppendRequest]]:
    """A caller thread that hands in an append after `delay` seconds."""
    made: list[AppendRequest] = []
    ready = threading.Event()

    def caller() -> None:
        made.append(request(99))  # made in this thread: it carries this thread's identity
        ready.set()
        time.sleep(delay)
        writer.requests.put(made[0])

    thread = threading.Thread(target=caller, daemon=True)
    thread.start()
    assert ready.wait(60), "the caller thread never ran"
    return thread, made


def test_a_group_takes_everything_queued(writer: Committer) -> None:
    queued = [request(n) for n in range(5)]
    for item in queued[1:]:
        writer.requests.put(item)
    group, held = writer.gather(queued[0])
    assert group == queued and held is None


def test_the_writer_waits_for_a_caller_it_has_just_answered(writer: Committer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(committer_module, "GATHER_MAX_SECONDS", 5.0)
    monkeypatch.setattr(committer_module, "GATHER_QUIET_SECONDS", 5.0)
    thread, made = hand_in_later(writer, 0.05)
    writer.returning = {thread.ident or 0}
    writer.commit_seconds = 5.0
    first = request(0)
    started = time.monotonic()
    group, _ = writer.gather(first)
    assert group == [first, made[0]]
    assert time.monotonic() - started < 4  # it stopped waiting when the caller was back


def test_the_wait_lasts_at_most_one_commit(writer: Committer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert committer_module.GATHER_MAX_SECONDS <= 0.005  # and never more than this, whatever a commit took
    monkeypatch.setattr(committer_module, "GATHER_MAX_SECONDS", 5.0)
    monkeypatch.setattr(committer_module, "GATHER_QUIET_SECONDS", 5.0)
    thread, _late = hand_in_later(writer, 30.0)  # a caller who does not come back in time
    writer.returning = {thread.ident or 0}
    writer.commit_seconds = 0.1
    first = request(0)
    started = time.monotonic()
    group, _ = writer.gather(first)
    assert group == [first]
    assert 0.1 <= time.monotonic() - started < 4


def test_the_wait_ends_when_none_came_for_a_while(writer: Committer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(committer_module, "GATHER_MAX_SECONDS", 5.0)
    monkeypatch.setattr(committer_module, "GATHER_QUIET_SECONDS", 0.2)
    late, _late = hand_in_later(writer, 30.0)  # busy elsewhere
    first = request(0)
    writer.returning = {late.ident or 0}
    writer.commit_seconds = 5.0
    started = time.monotonic()
    group, _ = writer.gather(first)
    assert group == [first]
    assert 0.2 <= time.monotonic() - started < 4


def test_callers_coming_back_one_by_one_all_join(writer: Committer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(committer_module, "GATHER_MAX_SECONDS", 10.0)
    monkeypatch.setattr(committer_module, "GATHER_QUIET_SECONDS", 1.0)
    callers = [hand_in_later(writer, 0.1 * n) for n in range(1, 6)]  # each 0.1 s after the one before
    writer.returning = {thread.ident or 0 for thread, _ in callers}
    writer.commit_seconds = 10.0
    first = request(0)
    group, _ = writer.gather(first)
    assert group[0] is first
    assert {id(r) for r in group[1:]} == {id(made[0]) for _, made in callers}  # in whatever order they came


def test_no_wait_when_the_first_append_is_the_one_awaited(writer: Committer) -> None:
    writer.commit_seconds = 5.0
    first = request(0)  # made in this thread
    writer.returning = {threading.get_ident()}
    started = time.monotonic()
    group, _ = writer.gather(first)
    assert group == [first] and time.monotonic() - started < 0.5


def test_work_between_groups_ends_the_group(writer: Committer) -> None:
    first, second, third = request(0), request(1), request(2)
    action = Action(lambda committer: None)
    for item in (second, action, third):
        writer.requests.put(item)
    group, held = writer.gather(first)
    assert group == [first, second] and held is action
    assert writer.requests.get_nowait() is third


def test_threads_appending_one_after_another_share_commits(tmp_path: Path) -> None:
    """Eight threads, each appending its next event as soon as the last is answered: every event
    is stored once, in a gapless order, and in fewer commits than taking turns in two halves
    would make (the writer waits for the callers it answered)."""
    threads, each = 8, 25
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db")) as store:
        barrier = threading.Barrier(threads)

        def append(index: int) -> None:
            barrier.wait()
            for n in range(each):
                store.append({"stream-name": f"t{index}", "event-type": "E", "payload": {"n": n}})

        workers = [threading.Thread(target=append, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        stats = store.stats()
        assert stats["committed-events"] == threads * each == store.last_order_id()
        assert [e.order_id for e in store.read("__all__")] == list(range(1, threads * each + 1))
        for index in range(threads):
            assert [e.stream_version for e in store.read(f"t{index}")] == list(range(1, each + 1))
        assert stats["commits"] < threads * each / 2


def test_the_writer_asks_whether_its_queue_is_empty_rather_than_catching_empty(tmp_path: Path) -> None:
    """The writer thread takes from its queue only when it knows something is there: no
    `queue.Empty` is raised and caught at every commit. Appends of many threads are still each
    stored once, in a gapless order."""
    emptied: list[str] = []

    class Watched(committer_module.Requests):
        def get_nowait(self) -> Any:
            if threading.current_thread().name == "photon-committer":
                emptied.append("get_nowait in the writer")
            return super().get_nowait()

        def get(self, block: bool = True, timeout: float | None = None) -> Any:
            if threading.current_thread().name == "photon-committer" and self.empty() and not block:
                emptied.append("get without blocking on an empty queue")
            return super().get(block, timeout)

    backend = MemoryBackend({})
    backend.open(writer=True)
    writer = Committer(backend, Broadcaster(0), 0, max_batch=100)
    writer.requests = Watched()
    writer.start()
    threads, each = 6, 40
    answers: list[list[int]] = [[] for _ in range(threads)]

    def append(index: int) -> None:
        for n in range(each):
            event = PendingEvent(f"t{index}", f"id-{index}-{n}", "E", 0, b'"payload":{}}', False)
            made = AppendRequest([event], "any")
            made.hand_in(writer.requests)
            answers[index] += [r.order_id for r in made.result]

    workers = [threading.Thread(target=append, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    writer.stop()
    backend.close()
    assert emptied == []
    assert sorted(o for mine in answers for o in mine) == list(range(1, threads * each + 1))
    assert writer.commits < threads * each


def test_callers_who_do_not_come_back_are_waited_for_less_and_less(
    writer: Committer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Callers that write at their own pace (a service emitting as its requests come, round robin
    # over its connections) are never straight back: each wait would only delay their events.
    monkeypatch.setattr(committer_module, "GATHER_MAX_SECONDS", 5.0)
    monkeypatch.setattr(committer_module, "GATHER_QUIET_SECONDS", 0.02)
    writer.commit_seconds = 1.0
    waited = []
    for n in range(8):
        writer.returning = {("127.0.0.1", 40000 + n)}  # the last group's connection, not coming back
        started = time.monotonic()
        group, _ = writer.gather(request(n))
        assert len(group) == 1
        waited.append(time.monotonic() - started >= 0.015)
    # A wait, then one group without, a wait, two without, a wait, four without...
    assert waited == [True, False, True, False, False, True, False, False]
    assert committer_module.GATHER_BACKOFF_MAX >= 64


def test_a_wait_that_brings_a_caller_back_ends_the_back_off(writer: Committer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(committer_module, "GATHER_MAX_SECONDS", 5.0)
    monkeypatch.setattr(committer_module, "GATHER_QUIET_SECONDS", 5.0)
    writer.gather_backoff, writer.gather_skips = 16, 0
    thread, made = hand_in_later(writer, 0.05)
    writer.returning = {thread.ident or 0}
    writer.commit_seconds = 5.0
    first = request(0)
    group, _ = writer.gather(first)
    assert group == [first, made[0]]
    assert (writer.gather_backoff, writer.gather_skips) == (0, 0)


def test_the_writer_is_woken_by_the_last_caller_it_waits_for_rather_than_looking_again_and_again(
    writer: Committer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While it waits for the callers of its last group, the writer sleeps until the append that
    brings back the last of them: it does not take the interpreter lock from them to look at its
    queue meanwhile, and that append is in the group at once."""
    monkeypatch.setattr(committer_module, "GATHER_MAX_SECONDS", 5.0)
    monkeypatch.setattr(committer_module, "GATHER_QUIET_SECONDS", 5.0)
    looks: list[float] = []
    real_empty = committer_module.Requests.empty

    def counted_empty(self: Any) -> bool:
        looks.append(time.monotonic())
        return real_empty(self)

    monkeypatch.setattr(committer_module.Requests, "empty", counted_empty)
    callers = [hand_in_later(writer, 0.1 * n) for n in (1, 2, 3)]
    writer.returning = {thread.ident or 0 for thread, _ in callers}
    writer.commit_seconds = 5.0
    first = request(0)
    started = time.monotonic()
    group, _ = writer.gather(first)
    took = time.monotonic() - started
    assert {id(r) for r in group[1:]} == {id(made[0]) for _, made in callers}
    assert 0.25 <= took < 4  # back when the last came (0.3 s), not at the end of a quiet window (5 s)
    assert len(looks) < 20  # (looking every 0.1 ms for 0.3 s would be thousands of looks)


def test_the_queue_wakes_its_reader_when_it_reaches_the_length_waited_for() -> None:
    requests = committer_module.Requests()
    requests.put(request(0))
    started = time.monotonic()
    requests.wait_for(1, 5.0)  # already there: no wait
    assert time.monotonic() - started < 4
    requests.wait_for(2, 0.05)  # none comes: the timeout
    assert 0.05 <= time.monotonic() - started < 4

    def put_later() -> None:
        time.sleep(0.05)
        requests.put(request(1))
        time.sleep(0.1)
        requests.put(request(2))

    thread = threading.Thread(target=put_later, daemon=True)
    started = time.monotonic()
    thread.start()
    requests.wait_for(3, 5.0)
    assert 0.14 <= time.monotonic() - started < 4  # woken by the second put, not the first (nor the 5 s)
    assert requests.qsize() == 3
    thread.join()


def test_callers_who_all_came_back_last_time_are_waited_for_past_the_quiet_window(
    writer: Committer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads appending one after another come back one by one: once they all did, the writer
    waits for them until they are back or the limit, without looking at its queue at the end of
    each quiet window meanwhile."""
    monkeypatch.setattr(committer_module, "GATHER_MAX_SECONDS", 5.0)
    monkeypatch.setattr(committer_module, "GATHER_QUIET_SECONDS", 0.05)
    writer.commit_seconds = 5.0
    thread, made = hand_in_later(writer, 0.3)  # later than the quiet window
    writer.returning = {thread.ident or 0}
    writer.all_back = True
    first = request(0)
    group, _ = writer.gather(first)
    assert group == [first, made[0]]
    assert writer.all_back  # they all came back again

    late, _late = hand_in_later(writer, 30.0)  # one who does not come back
    writer.returning = {late.ident or 0}
    writer.commit_seconds = 0.2  # the limit
    started = time.monotonic()
    group, _ = writer.gather(request(1))
    assert len(group) == 1 and 0.2 <= time.monotonic() - started < 4
    assert not writer.all_back  # so the next wait has its quiet window again
    writer.gather_skips = 0  # (the back-off after a wait that brought none back: not this test's)
    started = time.monotonic()
    writer.returning = {late.ident or 0}
    writer.commit_seconds = 5.0
    group, _ = writer.gather(request(2))
    assert len(group) == 1 and 0.05 <= time.monotonic() - started < 4  # the quiet window, not the 5 s limit


def test_the_limit_counts_from_when_the_writer_began_to_wait(
    writer: Committer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(committer_module, "GATHER_MAX_SECONDS", 5.0)
    monkeypatch.setattr(committer_module, "GATHER_QUIET_SECONDS", 5.0)
    late, _late = hand_in_later(writer, 30.0)
    writer.returning = {late.ident or 0}
    writer.commit_seconds = 3.0
    waited = time.monotonic() - 2.5  # it waited before the first append came
    started = time.monotonic()
    group, _ = writer.gather(request(0), waited)
    # 0.5 s left of the 3 s, not 3 s (seconds apart: a loaded machine's thread wakes late)
    assert len(group) == 1 and time.monotonic() - started < 2.0


def test_the_writer_starts_a_group_when_the_last_groups_callers_are_all_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a commit the writer sleeps until all of that group's callers have handed in their
    next appends, rather than waking at the first of them to start gathering."""
    monkeypatch.setattr(committer_module, "GATHER_QUIET_SECONDS", 2.0)
    monkeypatch.setattr(Committer, "gather_limit", lambda self: 5.0)
    queued_when_taken: list[int] = []

    class Watched(committer_module.Requests):
        def get(self, block: bool = True, timeout: float | None = None) -> Any:
            if threading.current_thread().name == "photon-committer":
                queued_when_taken.append(self.qsize())
            return super().get(block, timeout)

    backend = MemoryBackend({})
    backend.open(writer=True)
    writer = Committer(backend, Broadcaster(0), 0, max_batch=100)
    writer.requests = Watched()
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def caller(delay: float) -> None:
        for n in range(2):
            made = AppendRequest([PendingEvent("s", f"{delay}-{n}", "E", 0, b'"payload":{}}', False)], "any")
            if n == 0:
                barrier.wait()
            else:
                time.sleep(delay)
            made.hand_in(writer.requests)
            answers.append(made.result[0].order_id)

    callers = [threading.Thread(target=caller, args=(delay,)) for delay in (0.0, 0.3)]
    for thread in callers:
        thread.start()
    while writer.requests.qsize() < 2:
        time.sleep(0.01)
    writer.start()  # the first group: both callers' first appends
    for thread in callers:
        thread.join()
    writer.stop()
    backend.close()
    assert sorted(answers) == [1, 2, 3, 4]
    assert writer.commits == 2
    # The second group began with both appends queued: the first caller back did not start it.
    assert queued_when_taken[:2] == [2, 1] and queued_when_taken[2] == 2
