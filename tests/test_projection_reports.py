"""A projection worker's live reports (`photon.projections.worker`): a large state is serialized
at a pace bounded by its own cost, never a report with a position its state does not hold, and a
report held back goes out on its own when due; a small state still reports after every batch.

The worker runs its real loop in a thread, on a real pipe, fed as the manager feeds it."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import orjson

from photon.projections.definition import ProjectionSpec
from photon.projections.messages import Add, Added, Fold, Folded, Ready, Report, Stop, Stopped
from photon.projections.worker import Worker

LARGE = """
projection_name = "large"
stream_name = "__all__"
initial_value = {}

def reduction(state, event):
    # An entry per event, a few hundred bytes each: as __streams__ grows an entry per stream.
    state[str(event["order-id"])] = {"stream-name": event["stream-name"], "padding": "x" * 300}
    return state
"""

SMALL = """
projection_name = "small"
stream_name = "__all__"
initial_value = 0

def reduction(state, event):
    return state + 1
"""


def _event(order_id: int) -> bytes:
    return orjson.dumps(
        {"order-id": order_id, "stream-version": 1, "stream-name": f"s-{order_id}", "event-type": "t", "payload": {}}
    )


def _add(slot: int, source: str, name: str, initial: Any) -> Add:
    spec = ProjectionSpec(name=name, language="python", source=source).to_payload()
    return Add(slot, spec, orjson.dumps(initial), 0, 0, 0)


def test_a_large_state_reports_at_its_own_pace_and_what_is_held_goes_out_when_due() -> None:
    manager, worker_end = multiprocessing.Pipe()
    worker = Worker(worker_end, [0, 0], None)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert isinstance(manager.recv(), Ready)
        manager.send(_add(1, LARGE, "large", {}))
        manager.send(_add(2, SMALL, "small", 0))
        assert manager.recv() == Added(1, None) and manager.recv() == Added(2, None)

        # First a state of 5,000 entries (about 1.7 MB of JSON), then one event per batch, as a
        # server that commits one insert at a time feeds its workers: each batch after the last
        # one's answer and a client's round trip (2 ms). Fed faster, on a loaded machine the
        # batches queue in the pipe and the worker folds them back to back, closer together than
        # even the small state's microseconds of serialization allow, and the small projection's
        # reports are merged for a reason that is not its state's cost.
        batches = 300
        last = 5000 + batches
        reports: dict[int, list[Report]] = {1: [], 2: []}
        answered: list[int] = []

        def take() -> Folded:
            assert manager.poll(60), "the worker did not answer within 60 s"
            message = manager.recv()
            assert isinstance(message, Folded), message
            if message.seq is not None:
                answered.append(message.seq)
            for report in message.reports:
                reports[report.slot].append(report)
            return message

        manager.send(Fold(0, [_event(n) for n in range(1, 5001)], 5000))
        while take().seq != 0:
            pass
        for n in range(5001, 5001 + batches):
            time.sleep(0.002)
            manager.send(Fold(n, [_event(n)], n))
            while take().seq != n:  # a report held back may come on its own first
                pass
        # The large state's last report is held back after the last batch: it comes on its own.
        while not (reports[1] and reports[1][-1].position == last):
            assert take().seq is None
        # Every batch answered (the manager's flow control), in order.
        assert answered == [0, *range(5001, 5001 + batches)]
        # The small projection reported as it went (batches that come faster than its state's
        # serialization allows are reported together); the large one far less often.
        small = reports[2]
        assert len(small) > batches / 3, len(small)
        assert small[-1].position == last
        assert all(r.state == b"%d" % r.position for r in small if r.state is not None)  # None: unchanged
        large = reports[1]
        assert 2 <= len(large) < batches / 3, len(large)
        # Each report's state holds exactly the events up to its position.
        for report in large:
            assert report.state is not None
            assert len(orjson.loads(report.state)) == report.position == report.last_event
        # The last report came on its own, once due, with no batch after it: the final state.
        assert large[-1].position == last
        assert sum(r.folded for r in large) == last
    finally:
        manager.send(Stop())
        stopped = manager.recv()
        while not isinstance(stopped, Stopped):
            stopped = manager.recv()
        thread.join(10)


def test_a_small_state_is_paced_by_its_serialization_cpu_not_by_the_wall_clock(monkeypatch: Any) -> None:
    # On a busy machine the worker's thread can be preempted in the middle of a small state's
    # serialization; that wait is not the state's cost, and must not hold its next report back
    # as if it were a large state's.
    from photon.projections import worker as worker_module
    from photon.projections.definition import load

    running = worker_module.Running(0, load(ProjectionSpec(name="small", language="python", source=SMALL)), 0, 0, 0, 0)
    dumps = orjson.dumps

    def preempted(value: Any) -> bytes:
        time.sleep(0.05)  # 50 ms away from the CPU: paced by that, the limit of a second
        return dumps(value)

    monkeypatch.setattr(worker_module.orjson, "dumps", preempted)
    before = time.perf_counter_ns()
    assert running.report().state == b"0"
    assert running.report_due - before < 200_000_000  # due within a fraction of the 1 s a 50 ms cost gives


def test_a_changed_state_reports_again_after_sixty_times_its_serialization_cpu(monkeypatch: Any) -> None:
    # The server reads and unpickles each report on its event loop, about as much again as the
    # serialization: a large state's reports are a sixtieth of the worker's time, not a twentieth.
    from photon.projections import worker as worker_module
    from photon.projections.definition import load

    running = worker_module.Running(0, load(ProjectionSpec(name="small", language="python", source=SMALL)), 0, 0, 0, 0)
    clock = iter([7_000_000, 9_000_000])  # 2 ms of the thread's CPU for the serialization
    monkeypatch.setattr(worker_module.time, "thread_time_ns", lambda: next(clock))
    before = time.perf_counter_ns()
    running.report()
    after = time.perf_counter_ns()
    assert before + 120_000_000 <= running.report_due <= after + 120_000_000
