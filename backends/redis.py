"""`redis`: the store on a Redis server (`redis.url`), every append one atomic Lua script.

Long because the key layout, the scripts that keep it (see `redis_scripts`) and the reads that
walk it are one design: a read is right only for how the scripts write the keys.

Layout, every key under one hash tag ``{P}`` (P = `redis.prefix`, default ``photon``), so a
Redis Cluster keeps a whole store in one slot and the scripts may touch all of its keys:

- ``{P}:events`` HASH: order-id -> record (a JSON header ``[order-id, stream, version, id, type,
  time]``, a newline, then the whole event JSON as the core gave it).
- ``{P}:all`` ZSET: `__all__`, members and scores are the order-ids.
- ``{P}:s:<stream>`` ZSET: one per stream, members and scores are its events' order-ids. A
  stream's versions run 1..n in order-id order, so version v is the member of rank v-1.
- ``{P}:ids`` HASH: event id -> order-id (idempotency and look-up by id).
- ``{P}:versions`` HASH: stream -> current version (also the stream list).
- ``{P}:meta`` HASH: ``last`` = the highest order-id ever stored (deletions never lower it);
  ``store`` = an id the store got when its writer first opened it. Every append checks it: a
  server that restarted empty (no append-only file) has lost it, and the append is refused.
- ``{P}:c:<category>``, ``{P}:t:<event type>``, ``{P}:g:<tag>`` ZSETs: the read indexes, members
  and scores the order-ids of the category's, the type's, the tag's events; written and removed by
  the same scripts as the events, so a category, event-type or tags read walks only what it
  returns. A record's header carries its tags (a 7th element) so the scripts find them.
  ``indexes`` in ``{P}:meta`` says they are complete: a store written before them gets them when
  a writer opens it (logged with progress); until then those reads scan `__all__`.
- ``{P}:checkpoints`` HASH: key -> value.
- ``{P}:writer`` STRING: the writer lease (``SET NX PX``), renewed by a thread.

Atomicity: an append is one script. It checks everything first (the caller still holds the
writer lease; order-ids strictly increasing and above ``last``; no id already stored or repeated;
each stream's versions following on), and only then writes, so it stores all of a batch or
nothing, and no other client sees a state between. Reads are scripts too (a page of order-ids
and their records in one step).

Durability is the server's: an append is acknowledged after Redis replied, and Redis replies
after the AOF was written and fsynced only with ``appendonly yes`` and ``appendfsync always``
(the tests run so). With ``everysec`` up to a second of acknowledged appends can be lost on a
crash; without AOF, everything since the last snapshot. `redis.wait.replicas` adds ``WAIT``:
an append is acknowledged only once that many replicas have it.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

import orjson

from photon.core.append_request import QueryItem, query_matches
from photon.core.backend import Backend, Query, StoreState, StreamInfo
from photon.core.config import parse_int, parse_positive
from photon.core.errors import BackendError, BackendUnavailable, IntegrityError, StoreLocked, StoreLost
from photon.core.events import RecordedEvent, category_of, event_tags
from photon.core.setting import Setting

from ._lease import LeaseRenewer, lease_holder
from .redis_scripts import PAGE, SCRIPTS

log = logging.getLogger("photon.backends.redis")


class RedisBackend(Backend):
    name = "redis"
    read_page_size = 5000  # a round trip per page: fewer, larger pages
    scavenging = True
    redaction = True
    listing_checkpoints = True
    indexed_reads = frozenset({"category", "event-type", "tags"})
    description = "Redis server (redis.url); one Lua script per append"
    driver = "redis"
    extra = "redis"
    settings = (
        Setting(
            "redis.url", "redis://localhost:6379/0", "redis backend: server URL (redis:// or rediss://).", secret=True
        ),
        Setting(
            "redis.prefix",
            "photon",
            "redis backend: key prefix; the store's keys are {prefix}:... (one hash slot), so several "
            "stores can share a server.",
        ),
        Setting(
            "redis.lease.ms",
            "10000",
            "redis backend: the writer lease; a writer that dies frees the store after this long.",
            parse_positive,
        ),
        Setting(
            "redis.wait.replicas",
            "0",
            "redis backend: acknowledge an append only once this many replicas have it (WAIT); 0 = do not wait.",
            parse_int,
        ),
        Setting("redis.wait.ms", "1000", "redis backend: how long WAIT waits for the replicas.", parse_positive),
        Setting("redis.timeout.ms", "10000", "redis backend: socket time-out of every command.", parse_positive),
    )

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.url = str(config.get("redis.url") or "redis://localhost:6379/0")
        prefix = str(config.get("redis.prefix") or "photon")
        if any(c in prefix for c in "{}"):
            raise BackendError(f"redis.prefix must not contain braces (got {prefix!r})")
        self.prefix = prefix
        self.lease_ms = int(config.get("redis.lease.ms") or 10000)
        self.wait_replicas = int(config.get("redis.wait.replicas") or 0)
        self.wait_ms = int(config.get("redis.wait.ms") or 1000)
        self.timeout = int(config.get("redis.timeout.ms") or 10000) / 1000
        tag = "{" + prefix + "}"
        self.k_events = f"{tag}:events"
        self.k_all = f"{tag}:all"
        self.k_ids = f"{tag}:ids"
        self.k_versions = f"{tag}:versions"
        self.k_meta = f"{tag}:meta"
        self.k_checkpoints = f"{tag}:checkpoints"
        self.k_writer = f"{tag}:writer"
        self.k_trimmed = f"{tag}:trimmed"
        self.k_stream = f"{tag}:s:"
        self.k_prefix = f"{tag}:"
        self._indexed = False
        """The read indexes are complete (``indexes`` in the meta hash): category, event-type and
        tags reads go through them, otherwise they scan `__all__`."""
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._token: str | None = None
        self._store_id = ""
        """The id this store was given when it was created (``store`` in the meta hash): every
        append checks it, so a server that came back without its data is noticed at once."""
        self._lease: LeaseRenewer | None = None

    def describe(self) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        return f"redis {parts.hostname}:{parts.port or 6379}{parts.path or '/0'} prefix {self.prefix}"

    # -- connection and the writer lease -----------------------------------------------

    def open(self, *, writer: bool) -> StoreState:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        try:
            # No automatic retries: a retried append whose first try did reach the server would
            # be refused as a duplicate; the core decides what to do after a failure instead.
            self._client = redis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=min(self.timeout, 5.0),
                retry=Retry(NoBackoff(), 0),
                health_check_interval=30,
            )
            for name, source in SCRIPTS.items():
                self._scripts[name] = self._client.register_script(source)
            self._client.ping()
            if writer:
                self._take_lease()
                self._warn_if_not_durable()
                self._client.hsetnx(self.k_meta, "store", uuid.uuid4().hex)
                self._store_id = self._client.hget(self.k_meta, "store").decode()
                if not self._client.hget(self.k_meta, "indexes"):
                    self._build_indexes()
            self._indexed = bool(self._client.hget(self.k_meta, "indexes"))
            if not self._indexed and self.last_order_id() > 0:
                log.warning(
                    "redis %s: the store has no read indexes yet; category, event-type and tags reads scan "
                    "__all__ until a writer opens it and builds them",
                    self.describe(),
                )
            return StoreState(self.last_order_id())
        except BaseException as exc:
            self.close()
            raise _translate(exc) from exc

    def _build_indexes(self) -> None:
        """Index the events of a store written before the read indexes (ZADD is idempotent: a build
        cut short is simply run again at the next open); then mark the indexes complete."""
        total = int(self._client.zcard(self.k_all))
        if total:
            log.info("redis %s: building the read indexes of %d existing events", self.describe(), total)
        done, start = 0, 0
        while True:
            orders = self._client.zrangebyscore(self.k_all, start, "+inf", start=0, num=PAGE)
            if not orders:
                break
            pipe = self._client.pipeline(transaction=False)
            for raw in self._client.hmget(self.k_events, orders):
                if raw is None:
                    continue
                event = _parse(raw)
                for key in self._index_keys(event):
                    pipe.zadd(key, {str(event.order_id): event.order_id})
            pipe.execute()
            done += len(orders)
            start = int(orders[-1]) + 1
            if done % 100_000 < PAGE:
                log.info("redis %s: read indexes: %d of %d events", self.describe(), done, total)
        self._client.hset(self.k_meta, "indexes", "1")
        if total:
            log.info("redis %s: read indexes complete (%d events)", self.describe(), done)

    def _index_keys(self, event: RecordedEvent) -> list[str]:
        keys = [self.k_prefix + "c:" + category_of(event.stream_name), self.k_prefix + "t:" + event.event_type]
        return keys + [self.k_prefix + "g:" + tag for tag in _tags(event)]

    def _take_lease(self) -> None:
        token = f"{lease_holder()} ({uuid.uuid4().hex[:8]})"
        if not self._client.set(self.k_writer, token, nx=True, px=self.lease_ms):
            holder = self._client.get(self.k_writer)
            who = holder.decode(errors="replace") if holder else "another process"
            raise StoreLocked(
                f"the store is already open for writing by {who} (lease {self.k_writer} on {self.describe()}); "
                "one process writes a store"
            )
        self._token = token
        self._lease = LeaseRenewer("photon-redis-lease", self.lease_ms / 1000, self._renew_lease, self.k_writer)
        self._lease.start()

    def _renew_lease(self) -> bool:
        return bool(self._scripts["renew"](keys=[self.k_writer], args=[self._token, self.lease_ms]))

    def _warn_if_not_durable(self) -> None:
        try:
            settings = self._client.config_get("append*")
        except Exception:  # CONFIG is often disabled on managed servers
            return
        if settings.get("appendonly") != "yes" or settings.get("appendfsync") != "always":
            log.warning(
                "redis at %s runs with appendonly=%s appendfsync=%s: acknowledged appends can be lost "
                "in a crash (use appendonly yes, appendfsync always)",
                self.describe(),
                settings.get("appendonly"),
                settings.get("appendfsync"),
            )

    def writer_problem(self) -> str | None:
        return self._lease.problem if self._lease is not None else None

    def close(self) -> None:
        if self._lease is not None:
            self._lease.stop()
            self._lease = None
        if self._client is not None:
            if self._token is not None:
                with contextlib.suppress(Exception):
                    self._scripts["release"](keys=[self.k_writer], args=[self._token])
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        self._token = None

    # -- records ------------------------------------------------------------------------

    def _stream_key(self, stream: str) -> str:
        return self.k_stream + stream

    def append(self, events: Sequence[RecordedEvent]) -> None:
        if not events:
            return
        if self._token is None:
            raise BackendError("the store was opened read-only")
        streams: dict[str, int] = {}
        for event in events:
            if event.stream_name not in streams:
                streams[event.stream_name] = len(streams) + 1
        args: list[Any] = [self._token, self.lease_ms, self._store_id, len(streams), *streams]
        args += [category_of(name) for name in streams]
        for event in events:
            tags = _tags(event)
            args += (
                event.order_id,
                streams[event.stream_name],
                event.stream_version,
                event.event_id,
                _record(event, tags),
                event.event_type,
                orjson.dumps(tags) if tags else "",
            )
        args.append(self.k_prefix)
        keys = [self.k_events, self.k_all, self.k_ids, self.k_versions, self.k_meta, self.k_writer]
        keys += [self._stream_key(name) for name in streams]
        keys.append(self.k_trimmed)
        try:
            self._scripts["append"](keys=keys, args=args)
            if self.wait_replicas > 0:
                reached = self._client.wait(self.wait_replicas, self.wait_ms)
                if reached < self.wait_replicas:
                    raise BackendUnavailable(
                        f"redis: the append reached {reached} of {self.wait_replicas} replicas within "
                        f"{self.wait_ms} ms (redis.wait.replicas); not acknowledged"
                    )
        except BaseException as exc:
            raise _translate(exc) from exc

    def read(self, query: Query) -> list[RecordedEvent]:
        if (query.event_types is not None and not query.event_types) or (
            query.categories is not None and not query.categories
        ):
            return []
        types, categories, when = query.event_types, query.categories, query.from_time

        def keep(event: RecordedEvent) -> bool:
            return (
                (types is None or event.event_type in types)
                and (categories is None or category_of(event.stream_name) in categories)
                and (when is None or event.event_time >= when)
            )

        filtered = types is not None or categories is not None or when is not None
        check = keep if filtered else None
        if query.stream is not None:
            keys = [self._stream_key(query.stream)]
        elif categories is not None and self._indexed:
            keys = [self.k_prefix + "c:" + name for name in sorted(categories)]
        elif types is not None and self._indexed:
            keys = [self.k_prefix + "t:" + name for name in sorted(types)]
        else:
            keys = [self.k_all]
        return self._read_indexes(keys, query, check)

    def _read_indexes(
        self, keys: list[str], query: Query, check: Callable[[RecordedEvent], bool] | None
    ) -> list[RecordedEvent]:
        """The first `query.limit` events kept by `check` through one or more index ZSETs, in order-id order."""
        if len(keys) == 1:
            return self._read_index(keys[0], query, check)
        # Several categories or types: each index's first page, merged (an event is in one of them).
        pages = [self._read_index(key, query, check) for key in keys]
        return list(heapq.merge(*pages, key=lambda e: e.order_id))[: query.limit]

    def _read_index(
        self, index: str, query: Query, check: Callable[[RecordedEvent], bool] | None
    ) -> list[RecordedEvent]:
        upper = "+inf" if query.to_order_id is None else query.to_order_id
        version = query.from_version if query.stream is not None else 1
        found: list[RecordedEvent] = []
        start = query.from_order_id
        while True:
            want = query.limit - len(found)
            batch = max(want, PAGE) if check is not None else want
            records = self._run(
                "read", [index, self.k_events, self.k_trimmed], [start, upper, version, batch, query.stream or ""]
            )
            for raw in records:
                if raw is None:  # cannot happen while the script keeps the keys in step
                    raise BackendError(f"redis: {index} names an order-id missing from {self.k_events}")
                event = _parse(raw)
                if check is not None and not check(event):
                    continue
                found.append(event)
                if len(found) >= query.limit:
                    return found
            if len(records) < batch or not records:
                return found
            start = _parse(records[-1]).order_id + 1
            version = 1

    def read_matching(self, query: tuple[QueryItem, ...], after: int, limit: int) -> list[RecordedEvent]:
        """Through the read indexes: an item with tags walks its first tag's events (checking the
        rest), one with only types its types' events; the items' answers are merged."""
        if not self._indexed or not query or not all(item.tags or item.types for item in query):
            return super().read_matching(query, after, limit)
        answers: list[list[RecordedEvent]] = []
        for item in query:
            if item.tags:
                keys = [self.k_prefix + "g:" + min(item.tags)]
            else:
                keys = [self.k_prefix + "t:" + name for name in sorted(item.types)]

            def matches(event: RecordedEvent, item: QueryItem = item) -> bool:
                return query_matches((item,), event)

            answers.append(self._read_indexes(keys, Query(from_order_id=after + 1, limit=limit), matches))
        found: list[RecordedEvent] = []
        for event in heapq.merge(*answers, key=lambda e: e.order_id):
            if not found or found[-1].order_id != event.order_id:
                found.append(event)
                if len(found) >= limit:
                    break
        return found

    def last_order_id(self) -> int:
        return int(self._call(self._client.hget, self.k_meta, "last") or 0)

    def stream_versions(self, streams: Collection[str]) -> dict[str, int]:
        names = list(streams)
        found: dict[str, int] = {}
        for start in range(0, len(names), PAGE):
            chunk = names[start : start + PAGE]
            values = self._call(self._client.hmget, self.k_versions, chunk)
            found.update({name: int(v) for name, v in zip(chunk, values, strict=True) if v is not None})
        return found

    def streams(self) -> Iterator[StreamInfo]:
        found: list[StreamInfo] = []
        cursor = 0
        while True:
            cursor, page = self._call(self._client.hscan, self.k_versions, cursor, count=1000)
            found.extend(StreamInfo(name.decode(), int(v)) for name, v in page.items() if int(v) > 0)
            if cursor == 0:
                return iter(sorted(found))

    def events_by_id(self, event_ids: Collection[str]) -> dict[str, RecordedEvent]:
        ids = list(event_ids)
        found: dict[str, RecordedEvent] = {}
        for start in range(0, len(ids), PAGE):
            for raw in self._run("by_id", [self.k_ids, self.k_events], ids[start : start + PAGE]):
                event = _parse(raw)
                found[event.event_id] = event
        return found

    def delete_stream(self, stream: str) -> int:
        keys = [self.k_events, self.k_all, self.k_ids, self.k_versions, self.k_writer, self._stream_key(stream)]
        removed = int(self._run("delete", keys, [self._token or "", stream, self.k_prefix]))
        self._call(self._client.hdel, self.k_trimmed, stream)  # a deleted stream starts again at version 1
        return removed

    def truncate_stream(self, stream: str, before_version: int) -> int:
        keys = [self.k_events, self.k_all, self.k_ids, self.k_trimmed, self.k_writer, self._stream_key(stream)]
        return int(self._run("truncate", keys, [self._token or "", stream, before_version, self.k_prefix]))

    def replace_events(self, events: Sequence[RecordedEvent]) -> None:
        args: list[Any] = [self._token or ""]
        for event in events:
            args += [event.order_id, _record(event)]
        self._run("replace", [self.k_events, self.k_writer], args)

    def read_checkpoint(self, key: str) -> bytes | None:
        value = self._call(self._client.hget, self.k_checkpoints, key)
        return None if value is None else bytes(value)

    def checkpoints(self, prefix: str) -> dict[str, bytes]:
        found = self._call(self._client.hgetall, self.k_checkpoints)
        result = {}
        for key, value in found.items():
            name = key.decode() if isinstance(key, bytes) else str(key)
            if name.startswith(prefix):
                result[name] = bytes(value)
        return result

    def write_checkpoint(self, key: str, value: bytes | None) -> None:
        if value is None:
            self._call(self._client.hdel, self.k_checkpoints, key)
        else:
            self._call(self._client.hset, self.k_checkpoints, key, value)

    # -- helpers ------------------------------------------------------------------------

    def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return self._call(self._scripts[script], keys=keys, args=args)

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        if self._client is None:
            raise BackendError("the redis store is closed")
        try:
            return function(*args, **kwargs)
        except BaseException as exc:
            raise _translate(exc) from exc


def _tags(event: RecordedEvent) -> list[str]:
    """The event's distinct tags, sorted (none without reading the JSON when it names no tags)."""
    return sorted(set(event_tags(event.data))) if b'"tags"' in event.data else []


def _record(event: RecordedEvent, tags: list[str] | None = None) -> bytes:
    fields: list[Any] = [
        event.order_id,
        event.stream_name,
        event.stream_version,
        event.event_id,
        event.event_type,
        event.event_time,
    ]
    if tags is None:
        tags = _tags(event)
    if tags:
        fields.append(tags)  # deleting, truncating and scavenging scripts find the tags index keys here
    return orjson.dumps(fields) + b"\n" + event.data


def _parse(raw: bytes) -> RecordedEvent:
    header, _, data = raw.partition(b"\n")
    order_id, stream, version, event_id, event_type, event_time = orjson.loads(header)[:6]
    return RecordedEvent(order_id, stream, version, event_id, event_type, event_time, data)


def _translate(exc: BaseException) -> BaseException:
    """A redis-py exception as one of Photon's (others pass through unchanged)."""
    import redis.exceptions as rx

    if isinstance(exc, (BackendError, StoreLocked, StoreLost)):
        return exc
    if isinstance(exc, rx.ResponseError):
        message = str(exc)
        if message.startswith("PHOTON-INTEGRITY "):
            return IntegrityError("redis: " + message.removeprefix("PHOTON-INTEGRITY "))
        if message.startswith("PHOTON-LOST "):
            return StoreLost(
                "redis: the store's keys are gone (the server came back without its data: was it "
                "running without an append-only file?); the writer stops rather than number on over "
                "a store that lost its events. Restore it from a backup, then restart Photon"
            )
        if message.startswith("PHOTON-LOCKED "):
            return StoreLocked(
                f"redis: the writer lease was taken by {message.removeprefix('PHOTON-LOCKED ')}; "
                "one process writes a store"
            )
        if isinstance(exc, (rx.BusyLoadingError, rx.ReadOnlyError)) or message.startswith(
            ("LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")
        ):
            return BackendUnavailable(f"redis: {message}")
        return BackendError(f"redis: {message}")
    if isinstance(exc, (rx.ConnectionError, rx.TimeoutError, OSError)):
        return BackendUnavailable(f"redis: cannot reach the server: {exc}")
    if isinstance(exc, rx.RedisError):
        return BackendError(f"redis: {exc}")
    return exc
