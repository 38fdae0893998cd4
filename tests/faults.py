"""The server-fault scenario every server backend runs: the server dies in the middle of appends.

Several threads append single events (each with its own id) while the server is killed and later
started again on the same data. What must hold:

- while the server is down, appends fail with `BackendUnavailable` (or another `BackendError`),
  naming the problem, and are not acknowledged;
- once the server is back, appends succeed again without reopening the store;
- every acknowledged event is read back afterwards, and `__all__` is still gapless.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from photon.core.errors import BackendError, BackendUnavailable
from photon.core.store import EventStore


@dataclass
class FaultReport:
    acknowledged: set[str] = field(default_factory=set)
    errors: list[BaseException] = field(default_factory=list)
    acknowledged_after_restart: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def run_server_fault(
    store_config: dict[str, Any],
    kill: Callable[[], None],
    restart: Callable[[], None],
    *,
    threads: int = 6,
    before: int = 300,
    after: int = 300,
    deadline: float = 120.0,
) -> FaultReport:
    """Append from `threads` threads; `kill()` the server after `before` acks, `restart()` it once
    appends have failed, and stop once `after` more acks arrived. Checks the outcome, returns the report."""
    report = FaultReport()
    stop = threading.Event()
    restarted = threading.Event()
    failed = threading.Event()

    store = EventStore.open(store_config)
    try:

        def appender(index: int) -> None:
            while not stop.is_set():
                event_id = str(uuid.uuid4())
                try:
                    store.append({"stream-name": f"fault-{index}", "event-type": "Tick", "payload": {}, "id": event_id})
                except BackendError as exc:
                    with report.lock:
                        report.errors.append(exc)
                    failed.set()
                    time.sleep(0.05)
                    continue
                with report.lock:
                    report.acknowledged.add(event_id)
                    if restarted.is_set():
                        report.acknowledged_after_restart += 1

        workers = [threading.Thread(target=appender, args=(i,), daemon=True) for i in range(threads)]
        for worker in workers:
            worker.start()
        started = time.monotonic()
        try:
            _wait(lambda: len(report.acknowledged) >= before, started + deadline, "appends before the fault")
            kill()
            _wait(failed.is_set, time.monotonic() + deadline, "an append to fail while the server is down")
            time.sleep(0.5)  # let every thread meet the dead server
            restart()
            restarted.set()
            _wait(
                lambda: report.acknowledged_after_restart >= after,
                time.monotonic() + deadline,
                "appends to succeed again after the server came back",
            )
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=60)
        assert not any(worker.is_alive() for worker in workers), "an append hung after the fault"

        assert any(isinstance(e, BackendUnavailable) for e in report.errors), report.errors[:5]
        for error in report.errors:
            assert str(error), f"an error without a message: {error!r}"

        stored = list(store.read())
        stored_ids = {e.event_id for e in stored}
        lost = report.acknowledged - stored_ids
        assert not lost, f"{len(lost)} acknowledged events were lost, e.g. {sorted(lost)[:3]}"
        assert [e.order_id for e in stored] == list(range(1, len(stored) + 1)), "__all__ has a gap"
    finally:
        store.close()

    # A fresh process-eye view: reopen the store and read everything again.
    with EventStore.open(store_config, read_only=True) as reader:
        again = {e.event_id for e in reader.read()}
    assert report.acknowledged <= again
    return report


def _wait(condition: Callable[[], bool], until: float, what: str) -> None:
    while not condition():
        if time.monotonic() > until:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def writer_killed_while_holding_the_lock(store_config: dict[str, Any]) -> None:
    """Start a writer in another process, SIGKILL it while it holds the writer lock, and return.

    The caller then checks that the lock is still refused at once (a lease) and free later.
    """
    import json
    import os
    import signal
    import subprocess
    import sys

    program = (
        "import json, sys, time\n"
        "from photon.core.store import EventStore\n"
        "store = EventStore.open(json.loads(sys.argv[1]))\n"
        "store.append({'stream-name': 'killed', 'event-type': 'Opened', 'payload': {}})\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", program, json.dumps(store_config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if line.strip() != "ready":
            child.kill()
            _out, err = child.communicate(timeout=30)
            raise AssertionError(f"the writer process did not start: {err[-2000:]}")
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)


#: The writer lease of the killed-writer tests. The store must still be refused when the test
#: opens it after the kill: with a lease of 1.5-2.5 s (renewed every third of it), a loaded
#: machine had as little as a second to do so.
KILLED_WRITER_LEASE_SECONDS = 6.0


def open_once_the_lease_is_over(store_config: dict[str, Any], lease_seconds: float) -> EventStore:
    """The store opened as its writer once a killed writer's lease of `lease_seconds` is over
    (counted from now, after the kill): at once then, or within a minute on a loaded machine."""
    from photon.core.errors import StoreLocked

    time.sleep(lease_seconds)
    deadline = time.monotonic() + 60
    while True:
        try:
            return EventStore.open(store_config)
        except StoreLocked:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
