"""A writer for the crash test: appends batches from several threads and reports each acknowledgement.

Run as ``python -m tests.crash_writer BACKEND PATH``; it prints ``ack <batch-id> <size>`` after
each append returns (and so is durable), until it is killed.
"""

from __future__ import annotations

import random
import sys
import threading
import uuid

from photon.core.store import EventStore


def main() -> None:
    backend, path = sys.argv[1], sys.argv[2]
    store = EventStore.open({"db.backend": backend, "sqlite.path": path, "file.path": path})
    lock = threading.Lock()

    def write(seed: int) -> None:
        rng = random.Random(seed)
        while True:
            batch = uuid.uuid4().hex
            size = rng.choice([1, 1, 2, 5, 50, 300])
            events = [
                {
                    "stream-name": f"s{rng.randrange(20)}",
                    "event-type": "Crash",
                    "payload": {"batch": batch, "size": size, "i": i, "pad": "x" * rng.randrange(200)},
                }
                for i in range(size)
            ]
            store.append(events)
            with lock:
                sys.stdout.write(f"ack {batch} {size}\n")
                sys.stdout.flush()

    threads = [threading.Thread(target=write, args=(seed,), daemon=True) for seed in range(4)]
    for thread in threads:
        thread.start()
    threads[0].join()


if __name__ == "__main__":
    main()
