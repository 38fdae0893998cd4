"""A writer for the stream numbers' crash test: appends that bring new streams beside known ones,
and truncations (a scavenge of a stream's first events) now and then, reporting each
acknowledgement.

Run as ``python -m tests.crash_stream_numbers_writer PATH``; it prints ``ack <last order-id>``
after each append returns (and so is durable), until it is killed.
"""

from __future__ import annotations

import random
import sys
import time

from photon.core.store import EventStore


def main() -> None:
    store = EventStore.open({"db.backend": "sqlite", "sqlite.path": sys.argv[1], "sqlite.synchronous": "NORMAL"})
    rng = random.Random()
    run = rng.randrange(1 << 30)  # each run's new streams have names of their own
    count = 0
    while True:
        count += 1
        new = [f"new-{run}-{count}-{i}" for i in range(rng.choice([1, 1, 2, 5]))]
        names = [f"old-{rng.randrange(20)}" for _ in range(rng.choice([0, 1, 3]))] + new
        events = [{"stream-name": name, "event-type": "t", "payload": {"i": i}} for i, name in enumerate(names)]
        stored = store.append(events)
        sys.stdout.write(f"ack {stored[-1].order_id}\n")
        sys.stdout.flush()
        if count % 5 == 0:
            # The highest-numbered stream loses its one event: its number leaves the stream
            # index. A pause after it, so that kills often find the store so.
            store.set_stream_metadata(new[-1], {"truncate-before": 2})
            store.scavenge()
            time.sleep(0.01)


if __name__ == "__main__":
    main()
