"""The writer acknowledges a group by waking its callers in a chain, each woken caller waking the
next (`photon.core.committer.acknowledge`): every caller is woken once, and a caller who stopped
waiting, before or after its turn, never stops the chain."""

from __future__ import annotations

import threading

from photon.core.append_waits import AppendRequest, acknowledge
from photon.core.events import PendingEvent


def request(n: int) -> AppendRequest:
    return AppendRequest([PendingEvent("s", f"id-{n}", "t", 0, b"{}", False)], "any")


def waiters(requests: list[AppendRequest]) -> tuple[list[threading.Thread], list[int]]:
    woken: list[int] = []

    def wait(n: int, req: AppendRequest) -> None:
        req.wait()
        woken.append(n)

    threads = [threading.Thread(target=wait, args=(n, r), daemon=True) for n, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    return threads, woken


def test_every_waiting_caller_of_a_group_is_woken_once() -> None:
    requests = [request(n) for n in range(50)]
    threads, woken = waiters(requests)
    acknowledge(requests)
    for thread in threads:
        thread.join(10)
    assert sorted(woken) == list(range(50))
    assert all(r.finished for r in requests)


def test_a_caller_gone_before_its_turn_is_passed_over() -> None:
    requests = [request(n) for n in range(5)]
    requests[2].leave()  # interrupted before the group was acknowledged: nobody waits on it
    threads, woken = waiters(requests[:2] + requests[3:])
    acknowledge(requests)
    for thread in threads:
        thread.join(10)
    assert sorted(woken) == [0, 1, 2, 3]  # the four waiters (numbered among themselves)


def test_a_caller_gone_after_its_turn_passes_it_on() -> None:
    requests = [request(n) for n in range(5)]
    threads, woken = waiters(requests[1:])
    acknowledge(requests)  # the chain starts at requests[0], whose caller is not waiting
    threads[0].join(0.2)
    assert woken == []
    requests[0].leave()  # that caller stops (it was interrupted): the chain goes on
    for thread in threads:
        thread.join(10)
    assert sorted(woken) == [0, 1, 2, 3]


def test_a_request_answered_directly_needs_no_chain() -> None:
    req = request(0)
    threads, woken = waiters([req])
    req.fail(RuntimeError("refused"))
    threads[0].join(10)
    assert woken == [0] and isinstance(req.error, RuntimeError)
