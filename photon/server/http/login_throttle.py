"""Repeated failed logins from one address are slowed down (`GET /auth/token`).

The first `FREE_FAILURES` failures from an address cost nothing (typos happen). Each failure
after those shuts the address out for a wait that doubles, from `FIRST_WAIT` up to `MAX_WAIT`
seconds; while shut out, every attempt from it (right or wrong) is answered 429 with
`Retry-After` without checking the password, so guessing runs at a few tries a minute. A
success forgets the address's failures; so does `FORGET_AFTER` seconds without one. At most
`MAX_ADDRESSES` addresses are remembered (the oldest are forgotten first), so a flood of
addresses cannot grow the server's memory.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

FREE_FAILURES = 5
FIRST_WAIT = 1.0
MAX_WAIT = 60.0
FORGET_AFTER = 900.0
MAX_ADDRESSES = 10_000


class _Record:
    __slots__ = ("failures", "last", "until")

    def __init__(self) -> None:
        self.failures = 0
        self.last = 0.0
        self.until = 0.0


class LoginThrottle:
    """Failed logins per client address."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def retry_after(self, address: str) -> int:
        """Seconds the address must wait before it may try again (0: it may try now)."""
        record = self._records.get(address)
        if record is None:
            return 0
        now = self._clock()
        if now - record.last > FORGET_AFTER:
            del self._records[address]
            return 0
        return max(0, math.ceil(record.until - now))

    def failed(self, address: str) -> None:
        now = self._clock()
        record = self._records.pop(address, None) or _Record()
        if now - record.last > FORGET_AFTER:
            record.failures = 0
        record.failures += 1
        record.last = now
        beyond = record.failures - FREE_FAILURES
        if beyond > 0:
            record.until = now + min(MAX_WAIT, FIRST_WAIT * 2 ** (beyond - 1))
        self._records[address] = record  # the most recent last
        while len(self._records) > MAX_ADDRESSES:
            self._records.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._records.pop(address, None)
