"""The lease renewer shared by the server backends: renews on time, says when it cannot, stops."""

from __future__ import annotations

import itertools
import logging
import threading
import time

import pytest
from photon_backends._lease import LeaseRenewer


def test_renews_three_times_a_period_and_reports_failures_and_takeovers(caplog: pytest.LogCaptureFixture) -> None:
    answers = iter([True, ConnectionError("server away"), False, True])
    calls: list[float] = []
    done = threading.Event()

    def renew() -> bool:
        calls.append(time.monotonic())
        answer = next(answers, True)
        if len(calls) >= 4:
            done.set()
        if isinstance(answer, Exception):
            raise answer
        return answer

    renewer = LeaseRenewer("test-lease", 0.15, renew, "at the test key")
    with caplog.at_level(logging.WARNING, logger="photon.backends"):
        renewer.start()
        assert done.wait(5), "the lease was not renewed on time"
        renewer.stop()
    assert all(0.03 <= b - a <= 1.0 for a, b in itertools.pairwise(calls))  # every period / 3 = 0.05 s
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("WARNING", "cannot renew the writer lease at the test key: server away") in messages
    assert ("ERROR", "the writer lease at the test key is held by another process") in messages
    count = len(calls)
    time.sleep(0.2)
    assert len(calls) == count  # stopped: no renewal after stop()
