"""A writer for the checkpoint crash test: writes a projection checkpoint of a state of several
parts again and again, each round's state its own, and reports each one written.

Run as ``python -m tests.crash_checkpoint_writer BACKEND WHERE`` (``sqlite PATH`` or ``postgres
URL``); it prints ``ack <round>`` after each checkpoint write returns, until it is killed.
"""

from __future__ import annotations

import sys

from photon.core.store import EventStore
from photon.projections.checkpoints import Checkpoint, StateJSON, write_checkpoint

DIGEST = "d" * 64
PAD_REPEATS = 400_000
"""A round's state is some 3.2 MB of JSON: four parts of a MiB in the SQL backends."""


def state_of(round_: int) -> dict[str, object]:
    """Round `round_`'s state, as the checkpoint must give it back whole."""
    return {"round": round_, "pad": ("%08d" % round_) * PAD_REPEATS}


def state_json(round_: int) -> bytes:
    return b'{"round":%d,"pad":"' % round_ + (b"%08d" % round_) * PAD_REPEATS + b'"}'


def main() -> None:
    backend, where = sys.argv[1], sys.argv[2]
    store = EventStore.open({"db.backend": backend, "sqlite.path" if backend == "sqlite" else "postgres.url": where})
    round_ = 0
    while True:
        round_ += 1
        write_checkpoint(store, "big", Checkpoint(DIGEST, round_, round_, round_, StateJSON(state_json(round_))))
        sys.stdout.write(f"ack {round_}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
