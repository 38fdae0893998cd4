"""A writer for the multi-stream crash test: transfers between accounts, each one atomic append
of a debit and a credit (and a ledger entry) to several streams, each with its expected version,
and a condition on the transfer's tag. Prints ``ack <transfer-id>`` after each append returns.

Run as ``python -m tests.crash_transfer_writer BACKEND PATH``, until it is killed.
"""

from __future__ import annotations

import random
import sys
import threading
import uuid

from photon.core.errors import AppendConditionFailed, VersionConflict
from photon.core.store import EventStore

ACCOUNTS = 8


def main() -> None:
    backend, path = sys.argv[1], sys.argv[2]
    store = EventStore.open({"db.backend": backend, "sqlite.path": path, "file.path": path})
    lock = threading.Lock()

    def write(seed: int) -> None:
        rng = random.Random(seed)
        while True:
            source, target = rng.sample(range(ACCOUNTS), 2)
            names = [f"account-{source}", f"account-{target}"]
            versions = {name: store.stream_version(name) for name in names}
            transfer = uuid.uuid4().hex
            payload = {"transfer": transfer, "amount": rng.randrange(1, 100), "pad": "x" * rng.randrange(300)}
            events = [
                {"stream-name": names[0], "event-type": "Debited", "payload": payload, "tags": [f"t:{transfer}"]},
                {"stream-name": names[1], "event-type": "Credited", "payload": payload, "tags": [f"t:{transfer}"]},
                {"stream-name": "ledger", "event-type": "Transferred", "payload": payload, "tags": [f"t:{transfer}"]},
            ]
            try:
                store.append(
                    events,
                    expected_versions=versions,
                    condition={"query": [{"tags": [f"t:{transfer}"]}]},
                )
            except VersionConflict:
                continue  # another thread moved one of the accounts: read again
            except AppendConditionFailed:  # pragma: no cover - a fresh id cannot be stored yet
                raise
            with lock:
                sys.stdout.write(f"ack {transfer}\n")
                sys.stdout.flush()

    threads = [threading.Thread(target=write, args=(seed,), daemon=True) for seed in range(4)]
    for thread in threads:
        thread.start()
    threads[0].join()


if __name__ == "__main__":
    main()
