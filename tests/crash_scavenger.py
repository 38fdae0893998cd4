"""A scavenger for the crash test: writers keep appending while a scavenge runs; killed at random.

Run as ``python -m tests.crash_scavenger PATH``; prints ``ack <stream> <version>`` after each
acknowledged append and ``scavenged`` when a scavenge finishes, until it is killed.
"""

from __future__ import annotations

import sys
import threading

from photon.core.store import EventStore


def main() -> None:
    path = sys.argv[1]
    store = EventStore.open({"db.backend": "sqlite", "sqlite.path": path})
    lock = threading.Lock()

    def write() -> None:
        while True:
            stored = store.append([{"stream-name": "live", "event-type": "E", "payload": {"pad": "x" * 200}}] * 10)
            with lock:
                sys.stdout.write(f"ack live {stored[-1].stream_version}\n")
                sys.stdout.flush()

    threading.Thread(target=write, daemon=True).start()
    while True:
        store.scavenge()
        with lock:
            sys.stdout.write("scavenged\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
