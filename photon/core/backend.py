"""The storage backend contract, and the registry that finds backends by entry point.

A backend stores and reads; the core decides. The single writing process (the core's group
committer) assigns every order-id and stream-version before it calls `append`, so a backend
never computes positions: it keeps the rows it is given, atomically and durably, and refuses
a row that would repeat an order-id, a (stream, version) pair or an event id.

Backends are plugins in the entry-point group ``photon.backends``; the built-in ones are
registered the same way (see pyproject.toml). A third-party backend subclasses `Backend`,
declares its configuration keys in `settings`, and runs the contract suite in
``photon.testing`` against itself.

Threading: `append`, `delete_stream` and the writer lock are used from the single writer
thread; every read method may be called from any thread at the same time as a write.
"""

from __future__ import annotations

import abc
import importlib.util
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, NamedTuple

from photon.core.append_request import QueryItem, query_matches
from photon.core.errors import MissingDriver, StoreClosed, UnknownBackend
from photon.core.events import RecordedEvent
from photon.core.setting import Setting, closest_key

ENTRY_POINT_GROUP = "photon.backends"


@dataclass(frozen=True, slots=True)
class Query:
    """What to read: one page of events in order-id order.

    `stream` None means `__all__`. Every bound is inclusive. All conditions apply together.
    """

    stream: str | None = None
    from_order_id: int = 1
    to_order_id: int | None = None
    from_version: int = 1
    """Only with `stream`."""
    from_time: int | None = None
    """Only events whose event-time (epoch ms) is at least this."""
    event_types: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    """Only events of streams in these categories (see `photon.core.events.category_of`); the core
    sets it only for a backend that lists "category" in `indexed_reads`."""
    limit: int = 1000
    """The most events to return (the core always sets it: backends return bounded pages)."""
    max_bytes: int | None = None
    """Event data in the page: a backend that `reads_by_bytes` may end the page early, after the
    event whose `data` brings the page to at least this many bytes (the core sets it only for
    such a backend, and reads on from there; any other backend ignores it)."""


class StreamInfo(NamedTuple):
    stream_name: str
    total_events: int
    """Also the stream's current version: versions run 1..total_events."""


@dataclass
class StoreState:
    """What the core needs to know when it opens a store for writing."""

    last_order_id: int


class Backend(abc.ABC):
    """One storage backend. Subclasses are found through the `photon.backends` entry points."""

    #: The name `db.backend` selects it by.
    name: ClassVar[str]
    #: Other names accepted for it (Photon's old names, e.g. `h2`, `dummy`).
    aliases: ClassVar[tuple[str, ...]] = ()
    #: The configuration keys this backend reads (added to the server's settings).
    settings: ClassVar[tuple[Setting, ...]] = ()
    #: One line for `photon backends` and error messages.
    description: ClassVar[str] = ""
    #: Events per `read` page when the core pages through a long read. Embedded stores are
    #: fastest with small pages (they stay in the CPU cache); remote ones want fewer round trips.
    read_page_size: ClassVar[int] = 1000
    #: The reads this backend answers from an index, so that their cost follows what they return:
    #: "category" (it honours `Query.categories`), "event-type" (`Query.event_types`) and "tags"
    #: (it overrides `read_matching`, the DCB condition reads and reads by tags). The core answers
    #: a category read on a backend without "category" by scanning `__all__`, and `photon backends`
    #: shows which way each backend goes. The contract suite checks every indexed read against a scan.
    indexed_reads: ClassVar[frozenset[str]] = frozenset()
    #: The driver module this backend imports when it opens (None: nothing beyond Photon's own
    #: dependencies), and the pip extra of photon-eventstore that installs it.
    driver: ClassVar[str | None] = None
    extra: ClassVar[str | None] = None
    #: False for a backend whose events are gone when the process exits (the memory backend).
    persistent: ClassVar[bool] = True

    # -- capabilities ---------------------------------------------------------------------------
    # What a backend can do beyond the abstract methods, declared on its class. The core asks
    # these, never a backend's name. Each default is what a minimal backend has (the base class's
    # method, a fallback in the core, or a clear refusal), so a backend written before a capability
    # existed keeps working when the core learns to use it.

    #: The data lives inside the writing process (memory, a file the writer holds): another process
    #: cannot open the store while the writer runs, so projection workers are fed by the server.
    in_process: ClassVar[bool] = False
    #: `begin_bulk_load`/`end_bulk_load` make loading an empty store faster (a restore asks them).
    bulk_load: ClassVar[bool] = False
    #: `truncate_stream` removes a stream's oldest events (a scavenge); without it a scavenge that
    #: has events to remove is refused, and metadata still hides them from reads.
    scavenging: ClassVar[bool] = False
    #: `replace_events` rewrites stored payloads in place (a redaction); without it a redaction is refused.
    redaction: ClassVar[bool] = False
    #: `checkpoints(prefix)` lists the key/value table; without it backups carry no positions.
    listing_checkpoints: ClassVar[bool] = False
    #: `read` honours `Query.max_bytes`: the core then asks for full pages from the first one and
    #: lets the backend stop at the byte bound, instead of growing pages from a few events as it
    #: learns the events' size (a read of a 200-event stream is then one statement, not three).
    reads_by_bytes: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any]) -> None:
        """Keep the configuration; connect nothing yet (that is `open`'s job)."""
        self.config = config

    @abc.abstractmethod
    def open(self, *, writer: bool) -> StoreState:
        """Connect, create the schema if it is missing, and return the store's state.

        With `writer=True`, take the store's writer lock (a file lock, a lease...) and raise
        `StoreLocked` naming the holder when another live process has it. A lock held by a
        process that died must become free again (a lease expires, a file lock is released).
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the writer lock and every connection. Safe to call twice."""

    @abc.abstractmethod
    def append(self, events: Sequence[RecordedEvent]) -> None:
        """Store `events` (in order-id order, positions already assigned) in one atomic, durable step.

        Return only once the events would survive the process being killed (and, for a server,
        the server's own durability settings). Either every event is stored or none is. Raise
        `IntegrityError` if an order-id, a (stream, version) or an event id is already stored,
        `BackendUnavailable` if the server cannot be reached; in both cases nothing is stored.
        """

    @abc.abstractmethod
    def read(self, query: Query) -> list[RecordedEvent]:
        """One page of events matching `query`, in order-id order, at most `query.limit` of them."""

    def read_data(self, query: Query) -> list[tuple[int, bytes]]:
        """`read`, as each event's (order-id, stored JSON) only: for a reader that decodes the
        events itself (a projection worker catching up). A backend that can fetch the two
        columns alone, cheaper than whole events, overrides it."""
        return [(event.order_id, event.data) for event in self.read(query)]

    def read_data_array(self, query: Query) -> tuple[int, int, bytes] | None:
        """`read_data` as one JSON array: (events, last order-id, `[json,json,...]`), None when no
        event matches. For a reader that decodes a page by one call or hands it on whole (the
        projection manager sending history to its workers). A backend that can join the stored
        JSON itself, cheaper than handing over each event's, overrides it."""
        rows = self.read_data(query)
        if not rows:
            return None
        return len(rows), rows[-1][0], b"[" + b",".join([data for _, data in rows]) + b"]"

    def read_stream_data(self, query: Query) -> list[tuple[int, int, bytes]]:
        """`read` of one stream (`query.stream` set), as each event's (order-id, version, stored
        JSON) only: a reader of a stream's history page by page starts each page at the version
        after the last one's. A backend that can fetch the three columns alone overrides it."""
        return [(event.order_id, event.stream_version, event.data) for event in self.read(query)]

    @abc.abstractmethod
    def last_order_id(self) -> int:
        """The highest order-id stored (0 for an empty store)."""

    @abc.abstractmethod
    def stream_versions(self, streams: Collection[str]) -> dict[str, int]:
        """The current version of each named stream; streams that do not exist may be left out."""

    def versions_before_append(self, streams: Collection[str]) -> dict[str, int]:
        """`stream_versions`, asked by the writer thread for the streams it is about to give
        positions in (between two appends, never while a read needs an answer from it).

        The default asks `stream_versions`. A backend may answer from its writer's own connection
        and keep what it learns for the `append` that follows (the SQL backends learn each
        stream's number in the same query, so an append to a new stream looks it up once).
        """
        return self.stream_versions(streams)

    @abc.abstractmethod
    def streams(self) -> Iterator[StreamInfo]:
        """Every stream that holds events, with its event count, in name order."""

    def stream_page(self, prefix: str, after: str | None, limit: int) -> list[StreamInfo]:
        """At most `limit` streams whose names start with `prefix` and sort after `after`, in name order.

        What a paged stream list reads. This default walks `streams()`; a backend with an index
        on the stream names overrides it with a seek (the SQL backends do).
        """
        found: list[StreamInfo] = []
        for info in self.streams():
            name = info.stream_name
            if (after is not None and name <= after) or not name.startswith(prefix):
                continue
            found.append(info)
            if len(found) >= limit:
                break
        return found

    @abc.abstractmethod
    def events_by_id(self, event_ids: Collection[str]) -> dict[str, RecordedEvent]:
        """The stored events among `event_ids`, keyed by id."""

    @abc.abstractmethod
    def delete_stream(self, stream: str) -> int:
        """Remove a stream's events (their order-ids are never reused); return how many were removed.

        Afterwards the stream does not exist: its next event is version 1 again.
        """

    @abc.abstractmethod
    def read_checkpoint(self, key: str) -> bytes | None:
        """A value from the backend's small key/value table (projection checkpoints, consumer positions)."""

    @abc.abstractmethod
    def write_checkpoint(self, key: str, value: bytes | None) -> None:
        """Durably set (or with None, remove) a key/value entry. Any thread may call it."""

    def write_checkpoint_parts(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        """Durably set a key/value entry to `parts` one after another, in one atomic write: a large
        value (a projection's state, an entry per stream) given as the pieces it is held in, so
        that it is never copied whole into one value first. `read_checkpoint` gives the value back
        whole. This default joins the parts and writes the one value; a backend that can store a
        value in pieces overrides it (the SQL backends: `backends.sql.backend`)."""
        self.write_checkpoint(key, b"".join(parts))

    def truncate_stream(self, stream: str, before_version: int) -> int:
        """Remove the stream's events with a lower version than `before_version` (a scavenge); return how many.

        In one atomic step. The stream keeps its current version (its next event numbers on) and
        the store its highest order-id (order-ids are never reused); the removed events leave
        `__all__`, the stream, the id index and the tags index. The core calls it with bounded
        ranges, from the writer thread, between commits.
        """
        raise NotImplementedError(f"the {self.name} backend cannot scavenge (see `scavenging`)")

    def replace_events(self, events: Sequence[RecordedEvent]) -> None:
        """Replace the stored JSON (`data`) of stored events, keeping every position (a redaction).

        In one atomic step, from the writer thread. Events that are not stored are ignored.
        """
        raise NotImplementedError(f"the {self.name} backend cannot redact (see `redaction`)")

    def reclaim_step(self) -> bool:
        """Optional: give a bounded share of the space freed by removals back; True while more remains.

        Called from the writer thread between commits, until it returns False; each call should
        take about as long as a commit. The default has nothing to do: a server backend's own
        compaction gives space back.
        """
        return False

    def checkpoints(self, prefix: str) -> dict[str, bytes]:
        """Every key/value entry whose key starts with `prefix` (backups carry consumers' and groups'
        positions this way). Only called on a backend that declares `listing_checkpoints`."""
        raise NotImplementedError(f"the {self.name} backend cannot list its checkpoints")

    def read_matching(self, query: tuple[QueryItem, ...], after: int, limit: int) -> list[RecordedEvent]:
        """Events of client streams matching `query` with an order-id above `after`, in order, at most `limit`.

        What conditional (DCB) appends check and what reads by tags use; see
        `photon.core.append_request` for what matches. This default scans `__all__`; a backend with
        a tags index overrides it, so that the cost follows the matching events, not the store.
        """
        found: list[RecordedEvent] = []
        types: frozenset[str] | None = None
        if query and all(item.types for item in query):
            types = frozenset().union(*(item.types for item in query))
        position = after + 1
        page = max(self.read_page_size, limit)
        while len(found) < limit:
            events = self.read(Query(from_order_id=position, event_types=types, limit=page))
            found.extend(e for e in events if query_matches(query, e))
            if len(events) < page:
                break
            position = events[-1].order_id + 1
        return found[:limit]

    def begin_bulk_load(self) -> bool:
        """Optional: the core is about to load many positioned events into this EMPTY store (a restore).

        A backend may drop what slows such a load (secondary indexes) until `end_bulk_load`.
        Return True if `end_bulk_load(False)` will leave the store empty again (then a restore
        needs no separate checking pass); the default does nothing and returns False.
        """
        return False

    def end_bulk_load(self, ok: bool) -> None:  # noqa: B027 - optional, a no-op unless overridden
        """Optional: the bulk load is over. Rebuild what `begin_bulk_load` dropped.

        With `ok` False, or when the rebuild finds a duplicate (raise `IntegrityError` then),
        leave the store empty, as it was before the load.
        """

    def writer_problem(self) -> str | None:
        """Why this writer may no longer hold the store's writer lock (a lease it failed to renew), or None.

        Backends whose lock is a file lock or a database session have nothing to add: the lock
        lasts as long as the process or the connection, and a lost connection fails the appends.
        """
        return None

    def describe(self) -> str:
        """Where the data lives, for logs (no secrets)."""
        return self.name


class ClosedBackend:
    """What a closed store reads through: every call raises `StoreClosed`, rather than whatever
    the released driver would (SQLAlchemy's engine is gone: an ``AttributeError`` on None). The
    backend's description and plain attributes stay readable; closing again does nothing."""

    def __init__(self, backend: Backend) -> None:
        self._released = backend

    def describe(self) -> str:
        return self._released.describe()

    def close(self) -> None:
        """Already closed."""

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._released, name)
        if not callable(value):
            return value

        def closed(*args: Any, **kwargs: Any) -> Any:
            raise StoreClosed("the store is closed")

        return closed


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def backend_modules() -> list[str]:
    """The modules of every installed backend class, without importing them."""
    return sorted({ep.module for ep in _entry_points().values()})


def available_backends() -> dict[str, type[Backend]]:
    """Every installed backend class by its entry-point name."""
    found: dict[str, type[Backend]] = {}
    for name, ep in sorted(_entry_points().items()):
        found[name] = ep.load()
    return found


def backend_names() -> list[str]:
    """Names and aliases accepted by `db.backend`, without importing any driver."""
    names: set[str] = set()
    for cls in available_backends().values():
        names.add(cls.name)
        names.update(cls.aliases)
    return sorted(names)


def missing_driver(cls: type[Backend]) -> str | None:
    """Why `cls` cannot open here (its driver is not installed, and the extra that installs it), or None."""
    if cls.driver is None:
        return None
    try:
        if importlib.util.find_spec(cls.driver) is not None:
            return None
    except ModuleNotFoundError:  # a parent package is missing, or an import hook refuses the name
        pass
    extra = cls.extra or cls.name
    return (
        f"the {cls.name} backend needs the {cls.driver!r} driver, which is not installed: "
        f"pip install 'photon-eventstore[{extra}]'"
    )


def _usable(cls: type[Backend]) -> type[Backend]:
    problem = missing_driver(cls)
    if problem is not None:
        raise MissingDriver(problem)
    return cls


def backend_class(name: str) -> type[Backend]:
    """The backend class for `name` or one of its aliases; `UnknownBackend` names the closest and lists the rest.

    A backend whose driver is not installed is refused here too, naming the extra that installs it.
    """
    # Most stores name a backend by its entry point's name: load that one alone, since loading
    # every installed backend (to look at their aliases) takes a tenth of a second, paid again by
    # each projection worker that opens the store.
    named = _entry_points().get(name)
    if named is not None:
        cls = named.load()
        if name == cls.name or name in cls.aliases:
            return _usable(cls)
    classes = available_backends()
    for cls in classes.values():
        if name == cls.name or name in cls.aliases:
            return _usable(cls)
    described = ", ".join(
        cls.name + (f" (alias {', '.join(cls.aliases)})" if cls.aliases else "") for cls in classes.values()
    )
    hint = closest_key(name, backend_names())
    suggestion = f"; did you mean {hint!r}?" if hint else ""
    raise UnknownBackend(f"unknown db.backend {name!r}{suggestion} (available backends: {described})")
