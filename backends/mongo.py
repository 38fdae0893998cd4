"""`mongo` (alias `mongodb`): the store in a MongoDB database, each append one transaction.

Long because the transaction that appends, the read indexes it keeps and the reads that use
them are one design: each read's selector and hint are right only for how the append writes.

Server: `mongodb.host` (a host, ``host:port``, or a whole ``mongodb://`` / ``mongodb+srv://`` URL)
and `mongodb.database`. Transactions need a replica set (a single-node one is enough) or a
sharded cluster; a standalone ``mongod`` is refused with a message saying so.

Layout (collections of `mongodb.database`):

- ``events``: one document per event: ``_id`` = order-id, ``s`` stream, ``v`` version, ``i``
  event id, ``t`` type, ``tm`` event-time, ``c`` the stream's category, ``g`` its tags (only
  on events that have some), ``d`` the whole event JSON (binary). Unique indexes: ``_id``
  (order-ids), ``(s, v)`` (versions), ``i`` (ids); plus ``(s, _id)`` for stream reads and the
  read indexes ``(c, _id)`` (categories), ``(t, _id)`` (event types) and ``(g, _id)`` (tags,
  multikey and sparse), so a category, event-type or tags read walks only the events it returns.
  A store written before ``c`` existed gets it when a writer opens it (logged with progress);
  until then category reads scan `__all__` by stream name.
- ``streams``: ``{_id: stream, v: current version}``.
- ``meta``: ``{_id: "high-water", last: highest order-id ever stored}`` and the writer lease
  ``{_id: "writer", token, holder, expires}``.
- ``checkpoints``: ``{_id: key, value: binary}``.

Atomicity: an append runs in one multi-document transaction (snapshot read concern, write concern
``majority`` with journal): it renews the caller's writer lease (a write, so a writer that lost
the lease conflicts and fails), moves the high-water mark only if the first order-id is above it,
inserts the events with one ordered ``insert_many`` (the unique indexes refuse repeated order-ids,
versions and ids), and moves each stream's version only from the one before the batch. Any
failure aborts the lot; readers never see an uncommitted transaction.

Durability: acknowledged means committed with ``w: majority, j: true``: on a majority of the
replica set and in their journals.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import re
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from photon.core.append_request import QueryItem
from photon.core.backend import Backend, Query, StoreState, StreamInfo
from photon.core.config import parse_positive
from photon.core.errors import BackendError, BackendUnavailable, IntegrityError, StoreLocked
from photon.core.events import CATEGORY_SEPARATOR, RecordedEvent, category_of, event_tags
from photon.core.setting import Setting

from ._lease import LeaseRenewer, lease_holder

log = logging.getLogger("photon.backends.mongo")

HIGH_WATER = "high-water"
WRITER = "writer"
_CHUNK = 1000
_FIELDS = {"_id": 1, "s": 1, "v": 1, "i": 1, "t": 1, "tm": 1, "d": 1}
_TRANSIENT_RETRIES = 4


class MongoBackend(Backend):
    name = "mongo"
    aliases = ("mongodb",)
    read_page_size = 5000  # a round trip per page: fewer, larger pages
    scavenging = True
    redaction = True
    listing_checkpoints = True
    indexed_reads = frozenset({"category", "event-type", "tags"})
    description = "MongoDB (mongodb.host, mongodb.database); one transaction per append"
    driver = "pymongo"
    extra = "mongo"
    settings = (
        Setting(
            "mongodb.host",
            "localhost",
            "mongo backend: the server: a host, host:port, or a mongodb:// URL (replica set needed).",
            secret=True,
        ),
        Setting("mongodb.database", "photon", "mongo backend: the database holding the store's collections."),
        Setting(
            "mongodb.lease.ms",
            "10000",
            "mongo backend: the writer lease; a writer that dies frees the store after this long.",
            parse_positive,
        ),
        Setting(
            "mongodb.timeout.ms",
            "5000",
            "mongo backend: how long to wait for a reachable server before an operation fails.",
            parse_positive,
        ),
    )

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.host = str(config.get("mongodb.host") or "localhost")
        self.database_name = str(config.get("mongodb.database") or "photon")
        self.lease_ms = int(config.get("mongodb.lease.ms") or 10000)
        self.timeout_ms = int(config.get("mongodb.timeout.ms") or 5000)
        self._client: Any = None
        self._db: Any = None
        self._token: str | None = None
        self._lease: LeaseRenewer | None = None
        self._categories_ready = True
        """Every event has its category field (``c``), so the category index answers category reads."""

    def uri(self) -> str:
        host = self.host.strip()
        if host.startswith(("mongodb://", "mongodb+srv://")):
            return host
        return f"mongodb://{host}"

    def describe(self) -> str:
        from pymongo.uri_parser import parse_uri

        try:
            nodes = ",".join(f"{h}:{p}" for h, p in parse_uri(self.uri())["nodelist"])
        except Exception:
            nodes = "?"
        return f"mongo {nodes}/{self.database_name}"

    # -- connection, schema and the writer lease ------------------------------------------

    def open(self, *, writer: bool) -> StoreState:
        import pymongo
        from pymongo.write_concern import WriteConcern

        try:
            self._client = pymongo.MongoClient(
                self.uri(),
                serverSelectionTimeoutMS=self.timeout_ms,
                connectTimeoutMS=self.timeout_ms,
                socketTimeoutMS=max(30_000, self.timeout_ms),
                appname=f"photon pid {os.getpid()}",
            )
            self._db = self._client.get_database(self.database_name, write_concern=WriteConcern(w="majority", j=True))
            hello = self._client.admin.command("hello")
            if not (hello.get("setName") or hello.get("msg") == "isdbgrid"):
                raise BackendError(
                    f"{self.describe()} is a standalone server; the mongo backend needs transactions, "
                    "which need a replica set (a single-node one will do) or a sharded cluster"
                )
            self._create_schema()
            if writer:
                self._take_lease()
                self._fill_categories()
            self._categories_ready = self._db.events.find_one({"c": None}, {"_id": 1}, hint="category") is None
            if not self._categories_ready:
                log.warning(
                    "mongo %s: events written before the category index have no category yet; category "
                    "reads scan __all__ until a writer opens the store and fills it in",
                    self.describe(),
                )
            return StoreState(self.last_order_id())
        except BaseException as exc:
            self.close()
            raise _translate(exc) from exc

    def _create_schema(self) -> None:
        import pymongo
        from pymongo.errors import DuplicateKeyError

        events = self._db.events
        events.create_index([("s", pymongo.ASCENDING), ("v", pymongo.ASCENDING)], unique=True, name="stream_version")
        events.create_index("i", unique=True, name="event_id")
        events.create_index([("s", pymongo.ASCENDING), ("_id", pymongo.ASCENDING)], name="stream_order")
        # The tags index: only events with tags have the field `g` (a sparse, multikey index).
        events.create_index([("g", pymongo.ASCENDING), ("_id", pymongo.ASCENDING)], name="tags", sparse=True)
        events.create_index([("c", pymongo.ASCENDING), ("_id", pymongo.ASCENDING)], name="category")
        events.create_index([("t", pymongo.ASCENDING), ("_id", pymongo.ASCENDING)], name="event_type")
        # Created up front, never upserted under contention (an upsert race is where some
        # MongoDB-compatible servers misbehave), so appends only ever update it.
        with contextlib.suppress(DuplicateKeyError):
            self._db.meta.insert_one({"_id": HIGH_WATER, "last": 0})

    def _fill_categories(self) -> None:
        """Give the events of a store written before the category index their category, a stream at a time."""
        events = self._db.events
        filled = streams = 0
        while (doc := events.find_one({"c": None}, {"s": 1}, hint="category")) is not None:
            if streams == 0:
                log.info("mongo %s: filling in the category index of existing events", self.describe())
            name = doc["s"]
            filled += events.update_many({"s": name, "c": None}, {"$set": {"c": category_of(name)}}).modified_count
            streams += 1
            if streams % 1000 == 0:
                log.info(
                    "mongo %s: category index: %d events of %d streams filled in", self.describe(), filled, streams
                )
        if streams:
            log.info("mongo %s: category index complete (%d events of %d streams)", self.describe(), filled, streams)

    def _server_now(self) -> datetime.datetime:
        """The server's clock: leases compare times from one clock, whoever's process writes them."""
        now: datetime.datetime = self._client.admin.command("hello")["localTime"]
        return now

    def _take_lease(self) -> None:
        from pymongo.errors import DuplicateKeyError

        token = uuid.uuid4().hex
        holder = lease_holder()
        now = self._server_now()
        lease = {"token": token, "holder": holder, "expires": now + datetime.timedelta(milliseconds=self.lease_ms)}
        try:
            self._db.meta.insert_one({"_id": WRITER, **lease})
        except DuplicateKeyError:
            taken = self._db.meta.update_one({"_id": WRITER, "expires": {"$lt": now}}, {"$set": lease})
            if taken.matched_count != 1:
                current = self._db.meta.find_one({"_id": WRITER}) or {}
                raise StoreLocked(
                    f"the store is already open for writing by {current.get('holder', 'another process')} "
                    f"(lease in {self.database_name}.meta until {current.get('expires')} UTC on {self.describe()}); "
                    "one process writes a store"
                ) from None
        self._token = token
        self._lease = LeaseRenewer(
            "photon-mongo-lease", self.lease_ms / 1000, self._renew_lease, f"in {self.database_name}.meta"
        )
        self._lease.start()

    def _renew_lease(self) -> bool:
        expires = self._server_now() + datetime.timedelta(milliseconds=self.lease_ms)
        renewed = self._db.meta.update_one({"_id": WRITER, "token": self._token}, {"$set": {"expires": expires}})
        return bool(renewed.matched_count == 1)

    def writer_problem(self) -> str | None:
        return self._lease.problem if self._lease is not None else None

    def close(self) -> None:
        if self._lease is not None:
            self._lease.stop()
            self._lease = None
        if self._client is not None:
            if self._token is not None:
                with contextlib.suppress(Exception):
                    self._db.meta.delete_one({"_id": WRITER, "token": self._token})
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        self._token = None

    # -- transactions -------------------------------------------------------------------

    def _transaction(self, body: Callable[[Any], Any]) -> Any:
        """Run `body(session)` in a transaction, retrying write conflicts (never network errors:
        the core decides what happens after an append whose outcome is unknown)."""
        from pymongo.errors import ConnectionFailure, PyMongoError
        from pymongo.read_concern import ReadConcern
        from pymongo.write_concern import WriteConcern

        for attempt in range(_TRANSIENT_RETRIES + 1):
            try:
                with self._client.start_session() as session:
                    session.start_transaction(
                        read_concern=ReadConcern("snapshot"), write_concern=WriteConcern(w="majority", j=True)
                    )
                    try:
                        result = body(session)
                    except BaseException:
                        with contextlib.suppress(Exception):
                            session.abort_transaction()
                        raise
                    session.commit_transaction()
                    return result
            except PyMongoError as exc:
                conflict = exc.has_error_label("TransientTransactionError") and not isinstance(exc, ConnectionFailure)
                if conflict and attempt < _TRANSIENT_RETRIES:
                    continue
                raise
        raise AssertionError("unreachable")

    def _check_lease(self, session: Any) -> None:
        expires = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        # Writing the lease document inside the transaction fences it: a writer whose lease was
        # taken over matches nothing here, and a takeover racing this append conflicts with it.
        renewed = self._db.meta.update_one(
            {"_id": WRITER, "token": self._token},
            {"$set": {"used": expires}},
            session=session,
        )
        if renewed.matched_count != 1:
            current = self._db.meta.find_one({"_id": WRITER}, session=session) or {}
            raise StoreLocked(
                f"mongo: the writer lease was taken by {current.get('holder', 'nobody')}; one process writes a store"
            )

    # -- the contract ---------------------------------------------------------------------

    def append(self, events: Sequence[RecordedEvent]) -> None:
        import pymongo
        from bson.int64 import Int64

        if not events:
            return
        if self._token is None:
            raise BackendError("the store was opened read-only")
        previous = 0
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        docs = []
        for event in events:
            if event.order_id <= previous:
                raise IntegrityError(f"mongo: order-id {event.order_id} is not after {previous}")
            previous = event.order_id
            first.setdefault(event.stream_name, event.stream_version)
            if event.stream_version != last.get(event.stream_name, first[event.stream_name] - 1) + 1:
                raise IntegrityError(
                    f"mongo: stream {event.stream_name!r} version {event.stream_version} does not follow "
                    f"{last.get(event.stream_name)}"
                )
            last[event.stream_name] = event.stream_version
            docs.append(
                {
                    "_id": Int64(event.order_id),
                    "s": event.stream_name,
                    "v": Int64(event.stream_version),
                    "i": event.event_id,
                    "t": event.event_type,
                    "c": category_of(event.stream_name),
                    "tm": Int64(event.event_time),
                    "d": event.data,
                }
            )
            if b'"tags"' in event.data:
                tags = event_tags(event.data)
                if tags:
                    docs[-1]["g"] = sorted(set(tags))
        # A stream's version moves only from the one just before the batch; for a new (or
        # deleted) stream the upsert's insert collides with any existing document instead.
        # A stream may start past version 1 only when it is new (a restore of a stream whose first
        # events a scavenge removed): the upsert inserts it then, and collides with an existing one
        # that is not at the version just before.
        stream_updates = [
            pymongo.UpdateOne({"_id": name, "v": Int64(v - 1)}, {"$set": {"v": Int64(last[name])}}, upsert=True)
            for name, v in first.items()
        ]

        def body(session: Any) -> None:
            db = self._db
            self._check_lease(session)
            moved = db.meta.update_one(
                {"_id": HIGH_WATER, "last": {"$lt": Int64(events[0].order_id)}},
                {"$set": {"last": Int64(events[-1].order_id)}},
                session=session,
            )
            if moved.matched_count != 1:
                raise IntegrityError(f"mongo: order-id {events[0].order_id} is not after the last one stored")
            db.events.insert_many(docs, ordered=True, session=session)
            result = db.streams.bulk_write(stream_updates, ordered=True, session=session)
            if result.matched_count + result.upserted_count != len(stream_updates):
                raise IntegrityError("mongo: a stream's version in the batch does not follow the stored one")

        try:
            self._transaction(body)
        except BaseException as exc:
            raise _translate(exc) from exc

    def read_matching(self, query: tuple[QueryItem, ...], after: int, limit: int) -> list[RecordedEvent]:
        """Through the tags index: an item with tags is an `$all` over it; items are an `$or`."""
        import pymongo
        from bson.int64 import Int64

        branches: list[dict[str, Any]] = []
        for item in query or (QueryItem(),):
            branch: dict[str, Any] = {}
            if item.tags:
                branch["g"] = {"$all": sorted(item.tags)}
            if item.types:
                branch["t"] = {"$in": sorted(item.types)}
            branches.append(branch)
        selector: dict[str, Any] = {"_id": {"$gt": Int64(after)}, "s": {"$not": {"$regex": "^__"}}}
        index: str | None = None
        if len(branches) == 1:
            selector.update(branches[0])
            # One item: its first tag's (or its types') index entries, in order-id order. Without
            # the hint a planner may pick the order-id index and walk every event after `after`.
            index = "tags" if "g" in selector else "event_type" if "t" in selector else None
        else:
            selector["$or"] = branches

        def find() -> list[Any]:
            cursor = self._db.events.find(selector).sort("_id", pymongo.ASCENDING)
            return list((cursor if index is None else cursor.hint(index)).limit(limit))

        return [_event(doc) for doc in self._call(find)]

    def read(self, query: Query) -> list[RecordedEvent]:
        if (query.event_types is not None and not query.event_types) or (
            query.categories is not None and not query.categories
        ):
            return []
        start = query.from_order_id
        selector: dict[str, Any] = {}
        if query.stream is not None:
            selector["s"] = query.stream
            if query.from_version > 1:
                # Versions and order-ids rise together inside a stream: start at the version's order-id.
                at = self._call(
                    lambda: self._db.events.find_one({"s": query.stream, "v": query.from_version}, {"_id": 1})
                )
                if at is None:
                    return []
                start = max(start, int(at["_id"]))
        order: dict[str, Any] = {"$gte": start}
        if query.to_order_id is not None:
            order["$lte"] = query.to_order_id
        selector["_id"] = order
        if query.from_time is not None:
            selector["tm"] = {"$gte": query.from_time}
        if query.event_types is not None:
            selector["t"] = _one_of(query.event_types)
        index = "_id_" if query.stream is None else "stream_order"
        if query.categories is not None:
            if self._categories_ready:
                selector["c"] = _one_of(query.categories)
                index = "category" if query.stream is None else index
            else:  # a store whose older events have no category yet: by stream name, scanning
                selector["$or"] = [
                    {"s": {"$regex": f"^{re.escape(name)}({re.escape(CATEGORY_SEPARATOR)}|$)"}}
                    for name in sorted(query.categories)
                ]
        elif query.event_types is not None and query.stream is None:
            index = "event_type"

        def find() -> list[RecordedEvent]:
            # The hint keeps the read in index order (order-ids within each category or type), so
            # no server sorts a whole range per page and the cost follows the events returned.
            cursor = self._db.events.find(selector, _FIELDS).sort("_id", 1).hint(index).limit(query.limit)
            return [_event(doc) for doc in cursor]

        found: list[RecordedEvent] = self._call(find)
        return found

    def last_order_id(self) -> int:
        doc = self._call(lambda: self._db.meta.find_one({"_id": HIGH_WATER}))
        return int(doc["last"]) if doc else 0

    def stream_versions(self, streams: Collection[str]) -> dict[str, int]:
        names = list(streams)
        found: dict[str, int] = {}
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            docs = self._find("streams", {"_id": {"$in": chunk}})
            found.update({doc["_id"]: int(doc["v"]) for doc in docs})
        return found

    def streams(self) -> Iterator[StreamInfo]:
        docs = self._call(lambda: list(self._db.streams.find({"v": {"$gt": 0}}).sort("_id", 1)))
        return (StreamInfo(doc["_id"], int(doc["v"])) for doc in docs)

    def events_by_id(self, event_ids: Collection[str]) -> dict[str, RecordedEvent]:
        ids = list(event_ids)
        found: dict[str, RecordedEvent] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            docs = self._find("events", {"i": {"$in": chunk}}, _FIELDS)
            found.update({doc["i"]: _event(doc) for doc in docs})
        return found

    def delete_stream(self, stream: str) -> int:
        def body(session: Any) -> int:
            self._check_lease(session)
            removed = self._db.events.delete_many({"s": stream}, session=session).deleted_count
            self._db.streams.delete_one({"_id": stream}, session=session)
            return int(removed)

        try:
            result: int = self._transaction(body)
            return result
        except BaseException as exc:
            raise _translate(exc) from exc

    def truncate_stream(self, stream: str, before_version: int) -> int:
        def body(session: Any) -> int:
            self._check_lease(session)
            removed = self._db.events.delete_many({"s": stream, "v": {"$lt": before_version}}, session=session)
            return int(removed.deleted_count)

        try:
            result: int = self._transaction(body)
            return result
        except BaseException as exc:
            raise _translate(exc) from exc

    def replace_events(self, events: Sequence[RecordedEvent]) -> None:
        def body(session: Any) -> None:
            self._check_lease(session)
            for event in events:
                self._db.events.update_one({"_id": event.order_id}, {"$set": {"d": event.data}}, session=session)

        try:
            self._transaction(body)
        except BaseException as exc:
            raise _translate(exc) from exc

    def read_checkpoint(self, key: str) -> bytes | None:
        doc = self._call(lambda: self._db.checkpoints.find_one({"_id": key}))
        return None if doc is None else bytes(doc["value"])

    def checkpoints(self, prefix: str) -> dict[str, bytes]:
        selector = {"_id": {"$gte": prefix, "$lt": prefix + "\U0010ffff"}}
        return {
            doc["_id"]: bytes(doc["value"])
            for doc in self._find("checkpoints", selector)
            if doc["_id"].startswith(prefix)
        }

    def write_checkpoint(self, key: str, value: bytes | None) -> None:
        if value is None:
            self._call(lambda: self._db.checkpoints.delete_one({"_id": key}))
        else:
            self._call(
                lambda: self._db.checkpoints.replace_one({"_id": key}, {"_id": key, "value": value}, upsert=True)
            )

    def _find(self, collection: str, selector: dict[str, Any], fields: dict[str, int] | None = None) -> list[Any]:
        found: list[Any] = self._call(lambda: list(self._db[collection].find(selector, fields)))
        return found

    def _call(self, function: Callable[[], Any]) -> Any:
        if self._client is None:
            raise BackendError("the mongo store is closed")
        try:
            return function()
        except BaseException as exc:
            raise _translate(exc) from exc


def _one_of(values: frozenset[str]) -> Any:
    """A field equal to one of `values`: plain equality for one (then no server needs to merge or
    sort index ranges: the index is already in order-id order), `$in` for several."""
    if len(values) == 1:
        return next(iter(values))
    return {"$in": sorted(values)}


def _event(doc: Mapping[str, Any]) -> RecordedEvent:
    return RecordedEvent(int(doc["_id"]), doc["s"], int(doc["v"]), doc["i"], doc["t"], int(doc["tm"]), bytes(doc["d"]))


def _translate(exc: BaseException) -> BaseException:
    """A pymongo exception as one of Photon's (others pass through unchanged)."""
    from pymongo import errors

    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, (errors.DuplicateKeyError, errors.BulkWriteError)):
        details = getattr(exc, "details", None) or {}
        write_errors = details.get("writeErrors") or []
        if isinstance(exc, errors.DuplicateKeyError) or any(e.get("code") == 11000 for e in write_errors):
            message = write_errors[0].get("errmsg") if write_errors else str(exc)
            return IntegrityError(f"mongo: {message}")
        return BackendError(f"mongo: {exc}")
    if isinstance(exc, (errors.ConnectionFailure, errors.ServerSelectionTimeoutError, errors.NetworkTimeout)):
        return BackendUnavailable(f"mongo: cannot reach the server: {exc}")
    if isinstance(exc, errors.OperationFailure) and exc.has_error_label("TransientTransactionError"):
        return BackendUnavailable(f"mongo: the transaction could not complete: {exc}")
    if isinstance(exc, errors.PyMongoError):
        return BackendError(f"mongo: {exc}")
    return exc
