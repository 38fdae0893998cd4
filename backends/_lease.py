"""Keeping a writer's lease alive, for stores on a server (Redis, MongoDB, Cassandra).

Such a store has no lock that dies with its process, so the writer holds a lease that expires
unless renewed. A daemon thread renews it three times per lease period; if renewing fails
(the server is away) it says so and tries again, and if the lease turns out to be another
process's it says that loudly. Appends check the lease (or the fencing token) themselves, so
this thread only keeps it alive and reports.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

log = logging.getLogger("photon.backends")


def lease_holder() -> str:
    """Who holds a lease, for the message another process gets when it is refused."""
    return f"pid {os.getpid()} on {socket.gethostname()}"


class LeaseRenewer:
    def __init__(self, name: str, period_seconds: float, renew: Callable[[], bool], where: str) -> None:
        """`renew()` renews once: True when done, False when another process holds the lease
        (at `where`, for the message); it raises when the server cannot be reached."""
        self.interval = period_seconds / 3
        self.renew = renew
        self.where = where
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.problem: str | None = None
        """Why the last renewal failed (for the server's readiness), None once it succeeds again."""

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.renew():
                    self.problem = None
                else:
                    self.problem = f"the writer lease {self.where} is held by another process"
                    log.error("%s", self.problem)
            except Exception as exc:  # the server is away: appends report it; keep trying
                self.problem = f"cannot renew the writer lease {self.where}: {exc}"
                log.warning("%s", self.problem)
