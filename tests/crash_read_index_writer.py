"""A writer for the read index's crash test: appends to streams of a few categories, with the
category and event-type index filed every few events, and reports each acknowledgement.

Run as ``python -m tests.crash_read_index_writer PATH``; it prints ``ack <last order-id>`` after
each append returns (and so is durable), until it is killed.
"""

from __future__ import annotations

import random
import sys

from photon_backends.sql import read_index

from photon.core.store import EventStore

EVERY = 23
"""Order-ids between the writer's steps: small, so that a kill often falls inside one."""


def main() -> None:
    read_index.EVERY = EVERY
    store = EventStore.open({"db.backend": "sqlite", "sqlite.path": sys.argv[1], "sqlite.synchronous": "NORMAL"})
    rng = random.Random()
    while True:
        size = rng.choice([1, 2, 5, 17, 40])
        events = [
            {
                "stream-name": f"{rng.choice(['cart', 'shop', 'user'])}-{rng.randrange(30)}",
                "event-type": rng.choice(["Added", "Removed", "Paid"]),
                "payload": {"i": i},
            }
            for i in range(size)
        ]
        stored = store.append(events)
        sys.stdout.write(f"ack {stored[-1].order_id}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
