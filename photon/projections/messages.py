"""The messages between the manager and its worker processes, each a named type.

They cross a process boundary (pickled on one duplex pipe per worker) with every batch of events,
so they are named tuples: pickled as small and as fast as plain tuples, read by field name. The
worker's replies carry one `Report` per projection and one `Failure` per reduction that raised.

To a worker: `Add`, `Remove`, `Fold`, `History`, `CatchUp`, `Stop`. From a worker: `Ready`, `Added`,
`Folded` (also sent part-way through a long catch-up, with `seq` None), `Stopped`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

# -- to a worker ---------------------------------------------------------------------------------


class Add(NamedTuple):
    """Take a projection, resuming from the state `state_json` after order-id `position`."""

    slot: int
    spec: dict[str, Any]
    """The definition, as `ProjectionSpec.to_payload()` gives it."""
    state_json: bytes | str
    """The state as JSON, decoded by the worker: the server holds it, and a checkpoint stores
    it, as JSON (a large state decoded and pickled again here cost the server seconds). A large
    one is the path of a memory file of the manager's that holds it (`spool.hand`)."""
    position: int
    last_event: int
    processed: int


class Remove(NamedTuple):
    """Drop a projection."""

    slot: int


class Fold(NamedTuple):
    """A batch of events (each its stored JSON bytes) for every projection of the worker."""

    seq: int | None
    datas: list[bytes]
    end_order_id: int
    """The last order-id the batch covers (events of other streams may have been left out), so
    positions advance past them."""


class History(NamedTuple):
    """A page of history the manager read once for several workers (see `Feed.assign_all`): the
    events' stored JSON as one JSON array, for the projections behind `end_order_id`."""

    seq: int | None
    page: bytes | str
    """`[event, event, ...]`: the stored JSON of each event, joined (decoded by one call); or the
    path of a memory file of the manager's that holds it (`photon.projections.spool`)."""
    end_order_id: int
    """The last order-id the page covers: the projections behind it are at it afterwards."""


class CatchUp(NamedTuple):
    """Read the store (read-only) up to `to_order_id` for every projection behind it; only sent
    to a worker that opened the store itself."""

    seq: int | None
    to_order_id: int


class Stop(NamedTuple):
    """Report the final states and exit."""


ToWorker = Add | Remove | Fold | History | CatchUp | Stop

# -- from a worker -------------------------------------------------------------------------------


class Report(NamedTuple):
    """Where one projection is, with what changed since its last report."""

    slot: int
    position: int
    last_event: int
    processed: int
    state: bytes | None
    """The state as JSON, None when unchanged since the last report."""
    fold_ns: int
    """Nanoseconds spent folding since the last report."""
    folded: int
    """Events folded since the last report."""


class Failure(NamedTuple):
    """A projection whose reduction raised (or whose state is not JSON)."""

    slot: int
    order_id: int
    """The order-id of the event it failed on (0 when none)."""
    error: str
    snapshot: bytes | None
    """The state as JSON at the failure, when it could be encoded."""
    counters: tuple[int, int, int] | None = None
    """That state's position, last event and events processed (with the snapshot): the last
    report may be older, as in a catch-up, which reports every so many events."""


class Ready(NamedTuple):
    reads_store: bool
    """Whether the worker opened the store itself (then it is sent `CatchUp`, not history)."""


class Added(NamedTuple):
    slot: int
    error: str | None
    """Why the definition did not load in the worker, or None."""


class Folded(NamedTuple):
    seq: int | None
    """The `seq` of the `Fold`, `History` or `CatchUp` answered; None for a report part-way through."""
    reports: list[Report]
    failures: list[Failure]
    cpu_ns: int = 0
    """The worker's CPU time so far (`time.process_time_ns`) when it answered a batch, 0 in a
    report part-way: what the manager weighs its projections by (`photon.projections.balance`)."""


class Stopped(NamedTuple):
    reports: list[Report]


FromWorker = Ready | Added | Folded | Stopped
