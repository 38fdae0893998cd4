"""`cassandra`: the store in a Cassandra keyspace (CQL 3, native protocol v3 and up).

Long because the commit protocol below (rows first, then the head moved by a lightweight
transaction) and the readers that check every index row against ``events_all`` are one design:
each read is correct only together with how the append writes, so they are kept side by side.

Keys: `cassandra.ip` (contact points, comma-separated), `cassandra.port`, `cassandra.keyspace`,
`cassandra.replication` (the keyspace's replication map, used when the keyspace is created),
`cassandra.consistency`, `cassandra.protocol.version`, `cassandra.lease.ms`.

The CQL is the subset Cassandra 2.1 shares with current Cassandra and ScyllaDB (no JSON, no
``date``/``smallint``, no ``toTimestamp``, no ``PER PARTITION LIMIT``, no ``GROUP BY``).

Layout (B = 10,000):

- ``events_all``: PRIMARY KEY ((bucket), order_id), bucket = order_id // B: `__all__`, every
  event with all its fields (``data`` = the whole event JSON). No partition holds more than B events.
- ``stream_index``: PRIMARY KEY ((stream, bucket), version) -> order_id, bucket = (version-1) // B.
- ``event_ids``: event_id -> (order_id, stream, version).
- ``streams``: stream -> (version, order_id) of its last event.
- ``head``: one row ``'store'``: ``last_order_id`` (the commit point), ``writer`` (the token
  of the writer allowed to move it), ``epoch`` (its epoch) and ``stamp`` (the ceiling of its
  write timestamps). Written only with lightweight transactions.
- ``writer_epochs``: PRIMARY KEY ((id), epoch) -> start, writer: each epoch's first head.
- ``writer_lease``: one row with a TTL: who holds the writer lease.
- ``checkpoints``: key -> value.
- ``stream_floors``: stream -> the highest version a scavenge removed. Written before the scavenge
  removes anything, by the writer, about committed events only, so it is always true: a stream's
  version is at least its floor even when a scavenge removed all of its events.
- ``key_index``: PRIMARY KEY ((kind, key, part), order_id): the read indexes, kind ``c`` (key =
  a category), ``t`` (an event type) or ``g`` (a tag), partitioned by key: a key's rows go into
  its current part (``part`` = the order-id of the part's first row) until it holds PART_ENTRIES
  rows, then into a new part. ``key_index_parts``: PRIMARY KEY ((kind, key), part) -> entries,
  epoch: a key's parts, in order (a part a later epoch proves left over is passed over). Part i
  covers the order-ids [part i, part i+1). A read of a key finds the part holding its start
  with one request and reads on from there: a category, event-type or tags read costs what it
  returns, however far apart the key's events lie in the store. Each row carries a copy of its
  event and the epoch of the writer that wrote it (query-first denormalisation: the read is one
  slice of the index and needs no ``events_all`` fetch).
- ``read_index_state``: row ``'key-index'``: ``complete`` once every event is in ``key_index``.
  A store written before it (by the ``read_index`` layout, order-id buckets, row ``'store'``)
  is reindexed from ``events_all`` when a writer opens it (logged with progress, resumed from
  ``built_to`` if cut short); until then those reads scan ``events_all``.

Atomicity. Cassandra has no multi-partition transaction; a logged batch is only "eventually all
or nothing", and batches are size-limited. The store's commit point is the ``head`` row instead:

1. the writer writes every row of a batch (events_all, stream_index, event_ids, streams,
   key_index, key_index_parts), in parallel, then
2. moves the head with one lightweight transaction,
   ``UPDATE head SET last_order_id = new IF last_order_id = old AND writer = my-token``.

An append is acknowledged only after step 2 applied. Readers read the head first and never
return an event above it, so they see all of a batch or none of it. Rows written by a batch
whose head update never applied (a crash, a time-out, a writer that lost its lease) are inert:
the next batch reuses those order-ids and overwrites ``events_all`` (its write timestamps are
higher, see below); and every other table is only an
index that readers check against ``events_all``: a ``stream_index``, ``event_ids`` or ``streams``
row counts only if the ``events_all`` row it points to (at or below the head) names the same
stream, version and id, and a ``key_index`` row only if that event has the row's category, type
or tag. A part begun by such a batch (it begins above the head) is not read, and the next writer
of its key removes it before writing on: committed rows always lie in the part whose range holds
them. A ``key_index`` row's copy of its event is used without that check only when its epoch
proves a committed batch wrote it (a writer claims a new epoch on opening the store and after
any failed append, see ``_writer_epochs``); other rows are checked as above. Every index row
of an acknowledged event was written before the head moved, so nothing acknowledged is missing
from an index. The lightweight transaction also fences writers: a writer whose lease was taken
over fails the condition and gets `StoreLocked`. The rows written before the commit are fenced by
their write timestamps: every write of the events' tables carries ``USING TIMESTAMP`` below the
ceiling the head names for its writer, and a writer that takes the head over begins above that
ceiling, so the rows of a writer paused mid-append past its lease, arriving late, lose to the new
writer's at the same keys (see ``_write_stamps``; docs/backends.md, "Fencing the rows").

Durability: an append is acknowledged after the rows were written and the head moved at
`cassandra.consistency` (LOCAL_QUORUM by default). A node keeps a write once its commit log is
synced: with ``commitlog_sync: batch`` before it answers (the tests run so), with the default
``periodic`` within ``commitlog_sync_period_in_ms`` (10 s), so a crash of every replica at once
can lose the last seconds of acknowledged appends.

Single writer: ``writer_lease`` row taken with ``INSERT ... IF NOT EXISTS USING TTL`` and renewed
by a thread; the new holder then writes its token into ``head.writer`` with a lightweight
transaction. A dead holder's lease expires with its TTL.

Deleting a stream removes its rows table by table (idempotent, not atomic): a reader may see
part of a deletion in progress, never a wrong event. A deletion or a scavenge removes the events'
``key_index`` rows (and their copies) before their ``events_all`` rows, and a redaction rewrites
the copies before the ``events_all`` row: done again after being cut short, each still finds the
events in ``events_all`` and with them every copy.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import logging
import math
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

from photon.core.append_request import QueryItem, query_matches
from photon.core.backend import Backend, Query, StoreState, StreamInfo
from photon.core.config import parse_port, parse_positive
from photon.core.errors import BackendError, BackendUnavailable, IntegrityError, StoreLocked
from photon.core.events import RecordedEvent, category_of, event_tags
from photon.core.setting import Setting

from ._lease import LeaseRenewer, lease_holder
from ._write_stamps import WriteStamps, ceiling_after, now_us
from ._writer_epochs import Epoch, WriterEpochs

log = logging.getLogger("photon.backends.cassandra")

BUCKET = 10_000
HEAD = "store"
_IN = 200  # keys per IN query
_CONCURRENCY = 48
_BATCH_BYTES = 40_000  # current Cassandra fails batches over 50 kB by default
_INDEX_ROWS = 100
PART_ENTRIES = 10_000  # rows of one key in one key_index partition before the key's next part
_PARTS_PER_ROUND = 16  # key_index_parts rows listed per request of a read
KEY_INDEX = "key-index"  # the read_index_state row of the key_index layout
OLD_INDEX = HEAD  # the read_index_state row of the read_index layout before it (order-id buckets)
_KEY_CACHE = 100_000  # keys whose current part the writer keeps in memory

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events_all (
        bucket bigint, order_id bigint, stream text, version bigint, event_id text,
        event_type text, event_time bigint, data blob,
        PRIMARY KEY ((bucket), order_id)) WITH CLUSTERING ORDER BY (order_id ASC)""",
    """CREATE TABLE IF NOT EXISTS stream_index (
        stream text, bucket bigint, version bigint, order_id bigint,
        PRIMARY KEY ((stream, bucket), version)) WITH CLUSTERING ORDER BY (version ASC)""",
    """CREATE TABLE IF NOT EXISTS event_ids (
        event_id text PRIMARY KEY, order_id bigint, stream text, version bigint)""",
    "CREATE TABLE IF NOT EXISTS streams (stream text PRIMARY KEY, version bigint, order_id bigint)",
    "CREATE TABLE IF NOT EXISTS head (id text PRIMARY KEY, last_order_id bigint, writer text, epoch bigint, "
    "stamp bigint)",
    """CREATE TABLE IF NOT EXISTS writer_epochs (
        id text, epoch bigint, start bigint, writer text,
        PRIMARY KEY ((id), epoch)) WITH CLUSTERING ORDER BY (epoch ASC)""",
    "CREATE TABLE IF NOT EXISTS writer_lease (id text PRIMARY KEY, holder text, owner text)",
    "CREATE TABLE IF NOT EXISTS checkpoints (key text PRIMARY KEY, value blob)",
    """CREATE TABLE IF NOT EXISTS key_index (
        kind text, key text, part bigint, order_id bigint, epoch bigint,
        stream text, version bigint, event_id text, event_type text, event_time bigint, data blob,
        PRIMARY KEY ((kind, key, part), order_id)) WITH CLUSTERING ORDER BY (order_id ASC)""",
    """CREATE TABLE IF NOT EXISTS key_index_parts (
        kind text, key text, part bigint, entries bigint, epoch bigint,
        PRIMARY KEY ((kind, key), part)) WITH CLUSTERING ORDER BY (part ASC)""",
    "CREATE TABLE IF NOT EXISTS read_index_state (id text PRIMARY KEY, built_to bigint, complete boolean)",
    "CREATE TABLE IF NOT EXISTS stream_floors (stream text PRIMARY KEY, version bigint)",
)

# Columns added to tables of a store created before them: (table, column, type).
_ADDED_COLUMNS = (
    ("head", "epoch", "bigint"),
    ("head", "stamp", "bigint"),
    ("key_index", "epoch", "bigint"),
    ("key_index", "stream", "text"),
    ("key_index", "version", "bigint"),
    ("key_index", "event_id", "text"),
    ("key_index", "event_type", "text"),
    ("key_index", "event_time", "bigint"),
    ("key_index", "data", "blob"),
    ("key_index_parts", "epoch", "bigint"),
)

_STATEMENTS = {
    # Every write of the events' tables carries its timestamp (see _write_stamps): last, after
    # the values, in an INSERT; first, before SET or WHERE, in an UPDATE or a DELETE.
    "insert_all": "INSERT INTO events_all (bucket, order_id, stream, version, event_id, event_type, event_time, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
    "insert_index": "INSERT INTO stream_index (stream, bucket, version, order_id) VALUES (?, ?, ?, ?) "
    "USING TIMESTAMP ?",
    "insert_id": "INSERT INTO event_ids (event_id, order_id, stream, version) VALUES (?, ?, ?, ?) USING TIMESTAMP ?",
    "set_stream": "INSERT INTO streams (stream, version, order_id) VALUES (?, ?, ?) USING TIMESTAMP ?",
    "head": "SELECT last_order_id, writer, epoch, stamp FROM head WHERE id = ?",
    "create_head": "INSERT INTO head (id, last_order_id, writer) VALUES (?, 0, ?) IF NOT EXISTS",
    "move_head": "UPDATE head SET last_order_id = ? WHERE id = ? IF last_order_id = ? AND writer = ?",
    # How a writer of the version before claims the head (it keeps no write stamps).
    "claim_head": "UPDATE head SET writer = ?, epoch = ? WHERE id = ? IF writer = ? AND last_order_id = ?",
    "claim_stamped": "UPDATE head SET writer = ?, epoch = ?, stamp = ? WHERE id = ? "
    "IF writer = ? AND last_order_id = ? AND stamp = ?",
    "raise_stamp": "UPDATE head SET stamp = ? WHERE id = ? IF writer = ? AND stamp = ?",
    "set_epoch": "INSERT INTO writer_epochs (id, epoch, start, writer) VALUES (?, ?, ?, ?)",
    "epochs": "SELECT epoch, start, writer FROM writer_epochs WHERE id = ?",
    "take_lease": "INSERT INTO writer_lease (id, holder, owner) VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?",
    "renew_lease": "UPDATE writer_lease USING TTL ? SET holder = ?, owner = ? WHERE id = ? IF owner = ?",
    "lease": "SELECT holder, owner FROM writer_lease WHERE id = ?",
    "release_lease": "DELETE FROM writer_lease WHERE id = ? IF owner = ?",
    "all_range": "SELECT order_id, stream, version, event_id, event_type, event_time, data FROM events_all "
    "WHERE bucket = ? AND order_id >= ? AND order_id <= ? LIMIT ?",
    "all_in": "SELECT order_id, stream, version, event_id, event_type, event_time, data FROM events_all "
    "WHERE bucket = ? AND order_id IN ?",
    "index_range": "SELECT version, order_id FROM stream_index WHERE stream = ? AND bucket = ? AND version >= ? "
    "LIMIT ?",
    "index_down": "SELECT version, order_id FROM stream_index WHERE stream = ? AND bucket = ? AND version <= ? "
    "ORDER BY version DESC LIMIT ?",
    "index_at": "SELECT order_id FROM stream_index WHERE stream = ? AND bucket = ? AND version = ?",
    "ids_in": "SELECT event_id, order_id, stream, version FROM event_ids WHERE event_id IN ?",
    "streams_in": "SELECT stream, version, order_id FROM streams WHERE stream IN ?",
    "all_streams": "SELECT stream, version, order_id FROM streams",
    "delete_all": "DELETE FROM events_all USING TIMESTAMP ? WHERE bucket = ? AND order_id = ?",
    "delete_id": "DELETE FROM event_ids USING TIMESTAMP ? WHERE event_id = ?",
    "delete_index": "DELETE FROM stream_index USING TIMESTAMP ? WHERE stream = ? AND bucket = ?",
    "delete_stream": "DELETE FROM streams USING TIMESTAMP ? WHERE stream = ?",
    "checkpoint": "SELECT value FROM checkpoints WHERE key = ?",
    "set_checkpoint": "INSERT INTO checkpoints (key, value) VALUES (?, ?)",
    "delete_checkpoint": "DELETE FROM checkpoints WHERE key = ?",
    "all_checkpoints": "SELECT key, value FROM checkpoints",
    "insert_key_index": "INSERT INTO key_index (kind, key, part, order_id, epoch, stream, version, event_id, "
    "event_type, event_time, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
    "key_index_range": "SELECT order_id, epoch, stream, version, event_id, event_type, event_time, data "
    "FROM key_index WHERE kind = ? AND key = ? AND part = ? AND order_id >= ? AND order_id <= ? LIMIT ?",
    "copy_key_index": "UPDATE key_index USING TIMESTAMP ? SET stream = ?, version = ?, event_id = ?, "
    "event_type = ?, event_time = ?, data = ? WHERE kind = ? AND key = ? AND part = ? AND order_id = ?",
    "delete_key_index": "DELETE FROM key_index USING TIMESTAMP ? WHERE kind = ? AND key = ? AND part = ? "
    "AND order_id = ?",
    "set_part": "INSERT INTO key_index_parts (kind, key, part, entries, epoch) VALUES (?, ?, ?, ?, ?) "
    "USING TIMESTAMP ?",
    "last_parts": "SELECT part, entries, epoch FROM key_index_parts WHERE kind = ? AND key = ? "
    "ORDER BY part DESC LIMIT ?",
    "part_at": "SELECT part, entries, epoch FROM key_index_parts WHERE kind = ? AND key = ? AND part <= ? "
    "ORDER BY part DESC LIMIT ?",
    "parts_after": "SELECT part, epoch FROM key_index_parts WHERE kind = ? AND key = ? AND part > ? AND part <= ? "
    "LIMIT ?",
    "all_parts": "SELECT part, epoch FROM key_index_parts WHERE kind = ? AND key = ?",
    "delete_part": "DELETE FROM key_index_parts USING TIMESTAMP ? WHERE kind = ? AND key = ? AND part = ?",
    "read_index_states": "SELECT id, built_to, complete FROM read_index_state",
    "set_read_index_state": "INSERT INTO read_index_state (id, built_to, complete) VALUES (?, ?, ?)",
    "floors_in": "SELECT stream, version FROM stream_floors WHERE stream IN ?",
    "all_floors": "SELECT stream, version FROM stream_floors",
    "set_floor": "INSERT INTO stream_floors (stream, version) VALUES (?, ?) USING TIMESTAMP ?",
    "delete_floor": "DELETE FROM stream_floors USING TIMESTAMP ? WHERE stream = ?",
}


def _parse_replication(text: str) -> str:
    """Check the replication map is a CQL map literal naming a class (it goes into CREATE KEYSPACE)."""
    value = text.strip()
    if not (value.startswith("{") and value.endswith("}") and "'class'" in value) or ";" in value:
        raise ValueError(
            f"expected a CQL map such as {{'class': 'SimpleStrategy', 'replication_factor': 1}}, got {text!r}"
        )
    return value


def _parse_consistency(text: str) -> str:
    names = ("ONE", "TWO", "THREE", "QUORUM", "LOCAL_QUORUM", "EACH_QUORUM", "ALL", "LOCAL_ONE")
    value = text.strip().upper()
    if value not in names:
        raise ValueError(f"expected one of {', '.join(names)}, got {text!r}")
    return value


def _parse_keyspace(text: str) -> str:
    value = text.strip()
    if not value or len(value) > 48 or not value.replace("_", "a").isalnum() or not value[0].isalpha():
        raise ValueError(f"expected a keyspace name (letters, digits, _; at most 48), got {text!r}")
    return value


class CassandraBackend(Backend):
    name = "cassandra"
    read_page_size = 5000  # a round trip per page: fewer, larger pages
    scavenging = True
    redaction = True
    listing_checkpoints = True
    indexed_reads = frozenset({"category", "event-type", "tags"})
    description = "Cassandra / ScyllaDB keyspace (cassandra.ip, cassandra.keyspace); head row moved by LWT"
    driver = "cassandra"
    extra = "cassandra"
    settings = (
        Setting("cassandra.ip", "127.0.0.1", "cassandra backend: contact points, comma-separated."),
        Setting("cassandra.port", "9042", "cassandra backend: CQL native port.", parse_port),
        Setting(
            "cassandra.keyspace", "photon", "cassandra backend: the keyspace (created if missing).", _parse_keyspace
        ),
        Setting(
            "cassandra.replication",
            "{'class': 'SimpleStrategy', 'replication_factor': 1}",
            "cassandra backend: replication of the keyspace when it is created, as a CQL map.",
            _parse_replication,
        ),
        Setting(
            "cassandra.consistency",
            "LOCAL_QUORUM",
            "cassandra backend: consistency of reads and writes (serial phase: LOCAL_SERIAL).",
            _parse_consistency,
        ),
        Setting(
            "cassandra.protocol.version",
            "3",
            "cassandra backend: native protocol version (3 works from Cassandra 2.1 to 5).",
            parse_positive,
        ),
        Setting(
            "cassandra.lease.ms",
            "10000",
            "cassandra backend: the writer lease (a TTL, whole seconds); a dead writer frees the store after it.",
            parse_positive,
        ),
        Setting("cassandra.username", None, "cassandra backend: user name (password authentication)."),
        Setting("cassandra.password", None, "cassandra backend: password.", secret=True),
    )

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.hosts = [h.strip() for h in str(config.get("cassandra.ip") or "127.0.0.1").split(",") if h.strip()]
        self.port = int(config.get("cassandra.port") or 9042)
        self.keyspace = _parse_keyspace(str(config.get("cassandra.keyspace") or "photon"))
        self.replication = _parse_replication(
            str(config.get("cassandra.replication") or "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        )
        self.consistency = _parse_consistency(str(config.get("cassandra.consistency") or "LOCAL_QUORUM"))
        self.protocol_version = int(config.get("cassandra.protocol.version") or 3)
        self.lease_s = max(1, math.ceil(int(config.get("cassandra.lease.ms") or 10000) / 1000))
        self.username = config.get("cassandra.username")
        self.password = config.get("cassandra.password")
        self._cluster: Any = None
        self._session: Any = None
        self._ps: _Prepared | dict[str, Any] = {}
        self._token: str | None = None
        self._holder = ""
        self._lease: LeaseRenewer | None = None
        self._head: int | None = None  # the writer's view of the head, None when unsure
        self._versions: dict[str, int] = {}  # the writer's verified stream versions
        self._forgets = 0  # how often they were dropped after a failure
        self._next_version: OrderedDict[tuple[str, int], int] = OrderedDict()  # page hand-off cache
        self._indexed = False  # every event is in the key index (see _key_index_complete)
        # The writer's current part of each key it wrote or looked up: [first order-id, entries].
        self._parts: dict[tuple[str, str], list[int]] = {}
        self._epoch = 0  # the writer's epoch, stamped on the index rows it writes (see _writer_epochs)
        self._new_epoch_due = False  # an append failed: the next one claims a new epoch first
        self._epochs = WriterEpochs()
        self._stamps = WriteStamps()  # the writer's write timestamps (see _write_stamps)

    def describe(self) -> str:
        return f"cassandra {','.join(self.hosts)}:{self.port}/{self.keyspace}"

    # -- connection, schema, lease -------------------------------------------------------

    def open(self, *, writer: bool) -> StoreState:
        from cassandra import ConsistencyLevel
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import ConstantReconnectionPolicy, RoundRobinPolicy

        try:
            profile = ExecutionProfile(
                load_balancing_policy=RoundRobinPolicy(),
                consistency_level=getattr(ConsistencyLevel, self.consistency),
                serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
                request_timeout=20,
            )
            self._cluster = Cluster(
                self.hosts,
                port=self.port,
                protocol_version=self.protocol_version,
                execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                reconnection_policy=ConstantReconnectionPolicy(1.0),
                connect_timeout=10,
                auth_provider=(PlainTextAuthProvider(self.username, self.password or "") if self.username else None),
            )
            self._session = self._cluster.connect()
            self._session.execute(
                f"CREATE KEYSPACE IF NOT EXISTS {self.keyspace} WITH replication = {self.replication}"
            )
            self._session.set_keyspace(self.keyspace)
            for statement in _SCHEMA:
                self._session.execute(statement)
            self._add_columns()
            # Prepared when first used: an open (and so taking the writer lease) waits for few of them.
            self._ps = _Prepared(self._session)
            if writer:
                self._take_lease()
                self._build_key_index()
            self._indexed = self._key_index_complete()
            if not self._indexed and self._read_head() > 0:
                log.warning(
                    "cassandra %s: the store's key index is not built; category, event-type and tags reads scan "
                    "events_all until a writer opens it and builds it",
                    self.describe(),
                )
            return StoreState(self.last_order_id())
        except BaseException as exc:
            self.close()
            raise _translate(exc) from exc

    def _add_columns(self) -> None:
        """Add the columns a store created before them lacks (a column is never dropped)."""
        have: dict[str, set[str]] = {}
        for table, column, kind in _ADDED_COLUMNS:
            if table not in have:
                have[table] = set(self._session.execute(f"SELECT * FROM {table} LIMIT 1").column_names)
            if column not in have[table]:
                try:
                    self._session.execute(f"ALTER TABLE {table} ADD {column} {kind}")
                except Exception:
                    # Another process opening the store at the same time may have added it.
                    columns = self._session.execute(f"SELECT * FROM {table} LIMIT 1").column_names
                    if column not in columns:
                        raise
                have[table].add(column)

    def _key_index_complete(self) -> bool:
        """Whether reads may use the key index: it holds every event, and no writer of the layout
        before it (which maintains only ``read_index``) has marked that one complete since."""
        rows = {row.id: row for row in self._run("read_index_states", ())}
        new, old = rows.get(KEY_INDEX), rows.get(OLD_INDEX)
        return bool(new and new.complete) and not (old and old.complete)

    def _build_key_index(self) -> None:
        """Index the events of a store written before the key index (or by an older writer since),
        bucket by bucket from where a build cut short stopped, with the lease held and before any
        append (the head does not move meanwhile); then mark the index complete.

        A store of the order-id-bucketed layout before it (``read_index``) is reindexed from
        ``events_all``; its ``read_index`` state is marked incomplete first, so that an older
        reader scans rather than trusting an index no longer written. The old tables are left
        (unread) for the operator to drop."""
        if self._key_index_complete():
            return
        rows = {row.id: row for row in self._run("read_index_states", ())}
        new, old = rows.get(KEY_INDEX), rows.get(OLD_INDEX)
        done = int(new.built_to or 0) if new is not None and not new.complete else 0
        if old is not None and old.complete:
            done = 0  # an older writer appended without the key index: build it again from the start
            self._run("set_read_index_state", (OLD_INDEX, old.built_to, False))
        head = self._read_head(serial=True)
        self._parts.clear()
        if done < head:
            log.info("cassandra %s: building the key index of events %d to %d", self.describe(), done + 1, head)
        while done < head:
            end = min(head, (done // BUCKET + 1) * BUCKET - 1)
            events = self._read_all(Query(from_order_id=done + 1, limit=BUCKET), end)
            # Parts begun past `done` belong to a build cut short: dropped, then made again.
            self._load_parts({key for event in events for key in _read_keys(event)}, done)
            batches = _Batches()
            self._add_key_index_rows(batches, events, self._stamp())
            self._concurrent(batches.statements())
            done = end
            self._run("set_read_index_state", (KEY_INDEX, done, False))
            if done % 100_000 < BUCKET or done == head:
                log.info("cassandra %s: key index: %d of %d events", self.describe(), done, head)
        self._run("set_read_index_state", (KEY_INDEX, head, True))

    def _load_parts(self, keys: Iterable[tuple[str, str]], upto: int) -> None:
        """Learn the current part of each key not in memory: its last part beginning at or below
        `upto` (the head). A part beginning above it was begun by a batch that never committed,
        and so was one a later epoch proves left over (a writer paused past its lease may send
        its part after the head passed it, see ``WriterEpochs.left_over``): such parts are
        removed first, so that the next rows of the key go on in the part before them and every
        committed row lies in the part whose range [first, next part's first) holds it."""
        wanted = set(keys)
        unknown = sorted(wanted - self._parts.keys())
        if not unknown:
            return
        if len(self._parts) + len(unknown) > _KEY_CACHE:
            self._parts.clear()  # forgotten parts are looked up again when their keys come back
            unknown = sorted(wanted)
        while unknown:
            found = self._concurrent((self._ps["last_parts"], (*key, _PARTS_PER_ROUND)) for key in unknown)
            gone: list[tuple[str, str, int]] = []
            again: list[tuple[str, str]] = []
            for key, rows in zip(unknown, found, strict=True):
                for row in rows:
                    if row.part > upto or self._epochs.left_over(int(row.part), row.epoch):
                        gone.append((*key, int(row.part)))
                    else:
                        self._parts[key] = [int(row.part), int(row.entries or 0)]
                        break
                else:
                    if len(rows) == _PARTS_PER_ROUND:
                        again.append(key)  # every part listed was removed: look further down
            if gone:
                stamp = self._stamp()  # below the stamp of the rows written next: a part begun again survives
                self._concurrent((self._ps["delete_part"], (stamp, *params)) for params in gone)
            unknown = again

    def _add_key_index_rows(self, batches: _Batches, events: Sequence[RecordedEvent], stamp: int) -> None:
        """Add the events' key_index rows, each in its key's current part (a new part once the
        current one holds PART_ENTRIES rows), and the parts' rows with their entry counts.
        The keys' current parts must be loaded (`_load_parts`)."""
        touched: dict[tuple[str, str, int], int] = {}
        for event in events:
            copy = (event.order_id, self._epoch, *event[1:])
            for kind, key in _read_keys(event):
                part = self._parts.get((kind, key))
                if part is None or part[1] >= PART_ENTRIES:
                    part = self._parts[(kind, key)] = [event.order_id, 0]
                batches.add("keys", self._ps["insert_key_index"], (kind, key, part[0], *copy, stamp))
                part[1] += 1
                touched[(kind, key, part[0])] = part[1]
        for (kind, key, first), entries in touched.items():
            batches.add("keys", self._ps["set_part"], (kind, key, first, entries, self._epoch, stamp))

    def _take_lease(self) -> None:
        token = uuid.uuid4().hex
        holder = lease_holder()
        taken = self._session.execute(self._ps["take_lease"], ("writer", holder, token, self.lease_s)).one()
        if not taken[0]:
            current = self._session.execute(self._ps["lease"], ("writer",)).one()
            who = current.holder if current else "another process"
            raise StoreLocked(
                f"the store is already open for writing by {who} (lease in {self.keyspace}.writer_lease, "
                f"{self.lease_s} s TTL, on {self.describe()}); one process writes a store"
            )
        self._token, self._holder = token, holder
        # Make the head name this writer: from now on only its appends can move it.
        self._session.execute(self._ps["create_head"], (HEAD, token))
        self._claim_epoch()
        self._lease = LeaseRenewer(
            "photon-cassandra-lease", self.lease_s, self._renew_lease, f"in {self.keyspace}.writer_lease"
        )
        self._lease.start()

    def _claim_epoch(self) -> None:
        """Make the head name this writer and a new epoch (see ``_writer_epochs``), in one
        lightweight transaction on the head as it is, then record the epoch before any row of it
        is written. When the head's writer is not the one recorded for its epoch (a writer died
        between claiming and recording, or a writer that keeps no epochs held the store), a
        marker epoch is recorded first: the last recorded epoch's rows above its start are then
        checked against events_all, since another writer may have reused their order-ids."""
        assert self._token is not None
        while True:
            row = self._head_row(serial=True)
            if row is None:
                raise BackendError("cassandra: the head row is missing")
            if self._new_epoch_due and row.writer != self._token:
                raise StoreLocked(
                    "cassandra: another writer took the store over (its lease expired); one process writes a store"
                )
            known = self._recorded_epochs()
            current = int(row.epoch or 0)
            number = max(current, known[-1].number if known else 0) + 1
            foreign = bool(known) and (known[-1].number != current or known[-1].writer != row.writer)
            mine = number + 1 if foreign else number
            # The head's ceiling as read is in the condition: every timestamp a writer before
            # issued lies below it, and this writer's begin there (see _write_stamps).
            floor = row.stamp
            ceiling = ceiling_after(floor, now_us())
            claimed = self._run(
                "claim_stamped", (self._token, mine, ceiling, HEAD, row.writer, row.last_order_id, floor)
            )[0]
            if claimed[0]:
                break
        if foreign:
            self._run("set_epoch", (HEAD, number, known[-1].start, ""))
            known.append(Epoch(number, known[-1].start, ""))
        self._run("set_epoch", (HEAD, mine, int(row.last_order_id), self._token))
        self._epochs.load([*known, Epoch(mine, int(row.last_order_id), self._token)])
        self._epoch, self._new_epoch_due = mine, False
        self._head = int(row.last_order_id)
        self._stamps.claimed(int(floor or 0), ceiling)

    def _stamp(self) -> int:
        """The timestamp of the writer's next writes: above every earlier writer's, strictly
        above its own before. Near the ceiling the head names, the ceiling is raised first, by a
        lightweight transaction that applies only while the head still names this writer."""
        if self._token is None:
            raise BackendError("the store was opened read-only")
        while True:
            stamp = self._stamps.next(now_us())
            if stamp is not None:
                return stamp
            ceiling = self._stamps.ceiling
            raised = ceiling_after(ceiling, now_us())
            row = self._run("raise_stamp", (raised, HEAD, self._token, ceiling))[0]
            if row[0]:
                self._stamps.raised(raised)
            elif getattr(row, "writer", None) != self._token:
                raise StoreLocked(
                    "cassandra: another writer took the store over (its lease expired); one process writes a store"
                )
            elif row.stamp is not None and int(row.stamp) > ceiling:
                self._stamps.raised(int(row.stamp))  # a raise whose answer was lost did apply
            else:
                raise BackendError(f"cassandra: the head's write ceiling is {row.stamp}, not {ceiling}")

    def _recorded_epochs(self) -> list[Epoch]:
        return [Epoch(int(r.epoch), int(r.start), r.writer or "") for r in self._run("epochs", (HEAD,))]

    def _trust(self, head: Any) -> Callable[[int, int | None], bool]:
        """For a head row just read: which index rows' copies may be used (see ``_writer_epochs``)."""
        epoch = None if head is None or head.epoch is None else int(head.epoch)
        if self._epochs.stale(epoch):
            self._epochs.load(self._recorded_epochs())
        return self._epochs.judge(epoch, None if head is None else head.writer)

    def _renew_lease(self) -> bool:
        row = self._session.execute(
            self._ps["renew_lease"], (self.lease_s, self._holder, self._token, "writer", self._token)
        ).one()
        if row[0]:
            return True
        # The lease lapsed (the server was away): take it again if it is free. The head's
        # writer token is what really fences appends.
        again = self._session.execute(self._ps["take_lease"], ("writer", self._holder, self._token, self.lease_s)).one()
        return bool(again[0])

    def writer_problem(self) -> str | None:
        return self._lease.problem if self._lease is not None else None

    def close(self) -> None:
        if self._lease is not None:
            self._lease.stop()
            self._lease = None
        if self._session is not None and self._token is not None:
            with contextlib.suppress(Exception):
                self._session.execute(self._ps["release_lease"], ("writer", self._token))
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.shutdown()
        self._cluster = self._session = None
        self._token = None

    # -- low-level helpers ------------------------------------------------------------------

    def _run(self, name: str, params: Sequence[Any], **kwargs: Any) -> list[Any]:
        if self._session is None:
            raise BackendError("the cassandra store is closed")
        try:
            return list(self._session.execute(self._ps[name], params, **kwargs))
        except BaseException as exc:
            raise _translate(exc) from exc

    def _concurrent(self, items: Iterable[tuple[Any, Sequence[Any]]]) -> list[list[Any]]:
        """Run (statement, params) pairs in parallel; every result, or the first error translated."""
        from cassandra.concurrent import execute_concurrent

        if self._session is None:
            raise BackendError("the cassandra store is closed")
        try:
            results = execute_concurrent(
                self._session, list(items), concurrency=_CONCURRENCY, raise_on_first_error=True
            )
            return [list(rows) for _ok, rows in results]
        except BaseException as exc:
            raise _translate(exc) from exc

    def _read_head(self, serial: bool = False) -> int:
        row = self._head_row(serial)
        return int(row.last_order_id) if row is not None else 0

    def _head_row(self, serial: bool = False) -> Any:
        """The head row (last_order_id, writer, epoch), or None in a store never written."""
        from cassandra import ConsistencyLevel
        from cassandra.query import BoundStatement

        statement: BoundStatement = self._ps["head"].bind((HEAD,))
        if serial:
            # SERIAL sees (and finishes) any lightweight transaction in flight: the exact head.
            statement.consistency_level = ConsistencyLevel.LOCAL_SERIAL
        rows = self._run_bound(statement)
        return rows[0] if rows else None

    def _run_bound(self, statement: Any) -> list[Any]:
        if self._session is None:
            raise BackendError("the cassandra store is closed")
        try:
            return list(self._session.execute(statement))
        except BaseException as exc:
            raise _translate(exc) from exc

    def _events_at(self, orders: Iterable[int], head: int) -> dict[int, RecordedEvent]:
        """The events stored at these order-ids (those at or below `head`), by order-id."""
        buckets: dict[int, list[int]] = {}
        for order in sorted(set(orders)):
            if 0 < order <= head:
                buckets.setdefault(order // BUCKET, []).append(order)
        work = [
            (self._ps["all_in"], (bucket, chunk[i : i + _IN]))
            for bucket, chunk in buckets.items()
            for i in range(0, len(chunk), _IN)
        ]
        found: dict[int, RecordedEvent] = {}
        for rows in self._concurrent(work):
            for row in rows:
                found[row.order_id] = _event(row)
        return found

    # -- appending ------------------------------------------------------------------------------

    def append(self, events: Sequence[RecordedEvent]) -> None:
        if not events:
            return
        if self._token is None:
            raise BackendError("the store was opened read-only")
        try:
            if self._new_epoch_due:
                self._claim_epoch()  # rows of the failed append may lie above the head
            head = self._head if self._head is not None else self._read_head(serial=True)
            self._head = head
            self._check(events, head)
            self._load_parts({key for event in events for key in _read_keys(event)}, head)
            ps = self._ps
            stamp = self._stamp()
            # Few requests, each bounded in size: events_all rows of one partition together, the
            # small index rows in batches of up to _INDEX_ROWS (one round trip each).
            batches = _Batches()
            for event in events:
                batches.add(
                    ("all", event.order_id // BUCKET), ps["insert_all"], (event.order_id // BUCKET, *event, stamp)
                )
            self._add_key_index_rows(batches, events, stamp)
            last: dict[str, RecordedEvent] = {}
            for event in events:
                bucket = (event.stream_version - 1) // BUCKET
                batches.add(
                    "index",
                    ps["insert_index"],
                    (event.stream_name, bucket, event.stream_version, event.order_id, stamp),
                )
                batches.add(
                    "ids",
                    ps["insert_id"],
                    (event.event_id, event.order_id, event.stream_name, event.stream_version, stamp),
                )
                last[event.stream_name] = event
            for name, event in last.items():
                batches.add("streams", ps["set_stream"], (name, event.stream_version, event.order_id, stamp))
            work = batches.statements()
            self._concurrent(work)
            new_head = events[-1].order_id
            moved = self._run("move_head", (new_head, HEAD, head, self._token))[0]
        except BaseException as exc:
            self._forget()
            raise _translate(exc) from exc
        if not moved[0]:
            self._forget()
            if getattr(moved, "writer", self._token) != self._token:
                raise StoreLocked(
                    "cassandra: another writer took the store over (its lease expired); one process writes a store"
                )
            raise IntegrityError(f"cassandra: the head moved to {moved.last_order_id}, not from {head}")
        self._head = new_head
        for name, event in last.items():
            self._versions[name] = event.stream_version

    def _forget(self) -> None:
        """After a failure nothing cached can be trusted: read it again from the cluster."""
        self._head = None
        self._versions.clear()
        self._parts.clear()  # a part this failed batch began may be written: `_load_parts` removes it
        self._new_epoch_due = True  # its index rows, stamped with this epoch, must not be trusted
        self._forgets += 1

    def _check(self, events: Sequence[RecordedEvent], head: int) -> None:
        """Refuse repeated order-ids, versions and ids before anything is written."""
        previous = head
        seen: set[str] = set()
        for event in events:
            if event.order_id <= previous:
                raise IntegrityError(f"cassandra: order-id {event.order_id} is not after {previous}")
            previous = event.order_id
            if event.event_id in seen:
                raise IntegrityError(f"cassandra: event id {event.event_id!r} appears twice")
            seen.add(event.event_id)
        unknown = {e.stream_name for e in events} - self._versions.keys()
        if unknown:
            found = self._verified_versions(unknown, head)
            for name in unknown:
                self._versions[name] = found.get(name, 0)
        versions: dict[str, int] = {}
        for event in events:
            current = versions.get(event.stream_name, self._versions[event.stream_name])
            # Only a stream with no events may start past its next version: a restore of a stream
            # whose first events a scavenge removed (as the other backends allow).
            starts_late = current == 0 and event.stream_name not in versions and event.stream_version > 1
            if event.stream_version != current + 1 and not starts_late:
                raise IntegrityError(
                    f"cassandra: stream {event.stream_name!r} version {event.stream_version} does not follow {current}"
                )
            versions[event.stream_name] = event.stream_version
        stored = self._events_by_id(list(seen), head)
        if stored:
            raise IntegrityError(f"cassandra: event id {next(iter(stored))!r} is already stored")

    # -- reading ----------------------------------------------------------------------------------

    def read(self, query: Query) -> list[RecordedEvent]:
        if (query.event_types is not None and not query.event_types) or (
            query.categories is not None and not query.categories
        ):
            return []
        head_row = self._head_row()
        head = 0 if head_row is None else int(head_row.last_order_id)
        upper = head if query.to_order_id is None else min(head, query.to_order_id)
        if query.stream is None and self._indexed and (query.categories or query.event_types):
            if query.categories is not None:
                keys = [("c", name) for name in sorted(query.categories)]
            else:
                keys = [("t", name) for name in sorted(query.event_types or ())]
            trust = self._trust(head_row)
            pages = [
                self._read_key(
                    kind, key, query.from_order_id, upper, query.limit, lambda e: self._keep(query, e), trust
                )
                for kind, key in keys
            ]
            return list(heapq.merge(*pages, key=_order_id))[: query.limit]
        found = self._read_all(query, upper) if query.stream is None else self._read_stream(query, upper, head)
        return found

    def _keep(self, query: Query, event: RecordedEvent) -> bool:
        if query.event_types is not None and event.event_type not in query.event_types:
            return False
        if query.categories is not None and category_of(event.stream_name) not in query.categories:
            return False
        return query.from_time is None or event.event_time >= query.from_time

    def _read_key(
        self,
        kind: str,
        key: str,
        start: int,
        upper: int,
        limit: int,
        keep: Callable[[RecordedEvent], bool],
        trust: Callable[[int, int | None], bool],
    ) -> list[RecordedEvent]:
        """The first `limit` events of one key from `start` to `upper` that `keep` keeps.

        The key's parts are read in order, each over its range [first, next part's first): the
        part holding `start`, then those after it (listed a few at a time). A row carries a copy
        of its event: used as it is when `trust` says a committed batch wrote it (its epoch);
        any other row (written before the copies, or possibly left by a batch that never
        committed) is checked against its ``events_all`` row and skipped unless that event has
        the row's key. A part beginning above `upper` is not read."""
        found: list[RecordedEvent] = []
        start = max(start, 1)
        if start > upper:
            return found
        left_over = self._epochs.left_over  # parts a batch that never committed began: not read
        parts: list[int] = []
        below = start
        while not parts:
            holding = self._run("part_at", (kind, key, below, _PARTS_PER_ROUND))
            parts = [int(r.part) for r in holding if not left_over(int(r.part), r.epoch)][:1]
            if len(holding) < _PARTS_PER_ROUND:
                break
            below = int(holding[-1].part) - 1
        listed_to, listed_all = start, False  # parts up to `listed_to` are in `parts`
        index = 0
        while len(found) < limit:
            if index + 1 >= len(parts) and not listed_all:
                listed = self._run("parts_after", (kind, key, listed_to, upper, _PARTS_PER_ROUND))
                parts += [int(r.part) for r in listed if not left_over(int(r.part), r.epoch)]
                listed_all = len(listed) < _PARTS_PER_ROUND
                listed_to = int(listed[-1].part) if listed else listed_to
                continue
            if index >= len(parts):
                break
            end = parts[index + 1] - 1 if index + 1 < len(parts) else upper
            low = max(start, parts[index])
            want = limit - len(found)
            rows = self._run("key_index_range", (kind, key, parts[index], low, end, want))
            copies = {
                int(r.order_id): _event(r)  # an events_all row and a copy have the same columns
                for r in rows
                if r.data is not None and r.epoch is not None and trust(int(r.order_id), int(r.epoch))
            }
            if len(copies) < len(rows):
                copies.update(self._events_at((int(r.order_id) for r in rows if r.order_id not in copies), upper))
            for row in rows:
                event = copies.get(int(row.order_id))
                if event is not None and _has_read_key(event, kind, key) and keep(event):
                    found.append(event)
            if len(rows) == want:  # this part holds more: go on in it
                start = int(rows[-1].order_id) + 1
            else:
                start, index = end + 1, index + 1
        return found[:limit]

    def read_matching(self, query: tuple[QueryItem, ...], after: int, limit: int) -> list[RecordedEvent]:
        """Through the read indexes: an item with tags walks its first tag's rows (checking the
        rest), one with only types its types' rows; the items' answers are merged."""
        if not self._indexed or not query or not all(item.tags or item.types for item in query):
            return super().read_matching(query, after, limit)
        head_row = self._head_row()
        head = 0 if head_row is None else int(head_row.last_order_id)
        trust = self._trust(head_row)
        answers: list[list[RecordedEvent]] = []
        for item in query:
            keys = [("g", min(item.tags))] if item.tags else [("t", name) for name in sorted(item.types)]

            def matches(event: RecordedEvent, item: QueryItem = item) -> bool:
                return query_matches((item,), event)

            pages = [self._read_key(kind, key, after + 1, head, limit, matches, trust) for kind, key in keys]
            answers.append(list(heapq.merge(*pages, key=_order_id)))
        found: list[RecordedEvent] = []
        for event in heapq.merge(*answers, key=_order_id):
            if not found or found[-1].order_id != event.order_id:
                found.append(event)
                if len(found) >= limit:
                    break
        return found

    def _read_all(self, query: Query, upper: int) -> list[RecordedEvent]:
        found: list[RecordedEvent] = []
        start = max(query.from_order_id, 1)
        while start <= upper and len(found) < query.limit:
            bucket = start // BUCKET
            end = min(upper, (bucket + 1) * BUCKET - 1)
            want = query.limit - len(found)
            rows = self._run("all_range", (bucket, start, end, want))
            for row in rows:
                event = _event(row)
                if self._keep(query, event):
                    found.append(event)
            start = rows[-1].order_id + 1 if len(rows) == want else end + 1
        return found[: query.limit]

    def _read_stream(self, query: Query, upper: int, head: int) -> list[RecordedEvent]:
        stream = query.stream
        assert stream is not None
        version = self._first_version(stream, max(query.from_version, 1), query.from_order_id, head)
        found: list[RecordedEvent] = []
        while version is not None and len(found) < query.limit:
            want = min(max(query.limit - len(found), 100), 5000)
            bucket = (version - 1) // BUCKET
            rows = self._run("index_range", (stream, bucket, version, want))
            if not rows:
                # The next bucket holds the next version, or the stream ends here.
                if version == bucket * BUCKET + 1:
                    break
                version = (bucket + 1) * BUCKET + 1
                continue
            events = self._events_at((r.order_id for r in rows), upper)
            ended = False
            for row in rows:
                event = events.get(row.order_id)
                if event is None and 0 < row.order_id <= upper:
                    # Every order-id up to the head holds an event (order-ids are gapless and a
                    # failed batch's are written again), unless a scavenge removed it: skip it.
                    continue
                if event is None or event.stream_name != stream or event.stream_version != row.version:
                    ended = True  # past the head (or a row left by a batch that never committed)
                    break
                if self._keep(query, event):
                    found.append(event)
                    if len(found) >= query.limit:
                        break
            if ended or len(found) >= query.limit:
                break
            version = rows[-1].version + 1
        if found:
            last = found[-1]
            self._next_version[(stream, last.order_id + 1)] = last.stream_version + 1
            while len(self._next_version) > 1024:
                self._next_version.popitem(last=False)
        return found[: query.limit]

    def _first_version(self, stream: str, from_version: int, from_order_id: int, head: int) -> int | None:
        """The first version at or after `from_version` whose order-id is at least `from_order_id`."""
        if from_order_id <= 1:
            return from_version
        cached = self._next_version.get((stream, from_order_id))
        if cached is not None:
            return max(cached, from_version)
        # Versions and order-ids rise together in a stream: binary search over the versions.
        current = self._verified_versions([stream], head).get(stream, 0)
        low, high = from_version, current
        if low > high:
            return None
        while low < high:
            middle = (low + high) // 2
            rows = self._run("index_at", (stream, (middle - 1) // BUCKET, middle))
            if rows and rows[0].order_id >= from_order_id:
                high = middle
            else:
                low = middle + 1
        rows = self._run("index_at", (stream, (low - 1) // BUCKET, low))
        return low if rows and rows[0].order_id >= from_order_id else None

    def last_order_id(self) -> int:
        if self._token is not None and self._head is None:
            self._head = self._read_head(serial=True)
            return self._head
        return self._read_head(serial=self._token is not None)

    def _verified_versions(self, streams: Iterable[str], head: int) -> dict[str, int]:
        names = sorted(set(streams))
        hints: list[Any] = []
        for rows in self._concurrent(
            (self._ps["streams_in"], (names[i : i + _IN],)) for i in range(0, len(names), _IN)
        ):
            hints.extend(rows)
        stored = self._events_at((h.order_id for h in hints), head)
        floors = self._floors([h.stream for h in hints])
        found: dict[str, int] = {}
        for hint in hints:
            event = stored.get(hint.order_id)
            if event is not None and event.stream_name == hint.stream and event.stream_version == hint.version:
                found[hint.stream] = int(hint.version)
            else:
                version = max(self._walk_down(hint.stream, int(hint.version), head), floors.get(hint.stream, 0))
                if version:
                    found[hint.stream] = version
        return found

    def _floors(self, streams: list[str]) -> dict[str, int]:
        """The versions below which a scavenge removed each stream's events (see ``stream_floors``)."""
        names = sorted(set(streams))
        found: dict[str, int] = {}
        for rows in self._concurrent((self._ps["floors_in"], (names[i : i + _IN],)) for i in range(0, len(names), _IN)):
            found.update({row.stream: int(row.version) for row in rows})
        return found

    def _walk_down(self, stream: str, version: int, head: int) -> int:
        """The highest version of `stream` at or below `version` whose event is really stored."""
        while version > 0:
            bucket = (version - 1) // BUCKET
            rows = self._run("index_down", (stream, bucket, version, 500))
            stored = self._events_at((r.order_id for r in rows), head)
            for row in rows:
                event = stored.get(row.order_id)
                if event is not None and event.stream_name == stream and event.stream_version == row.version:
                    return int(row.version)
            version = rows[-1].version - 1 if len(rows) == 500 else bucket * BUCKET
        return 0

    def stream_versions(self, streams: Collection[str]) -> dict[str, int]:
        if self._token is None or self._head is None:
            return self._verified_versions(streams, self._read_head())
        # The writer asks before it appends to streams it has not seen: verified at its own head,
        # which only it can move, so the append's own check need not ask the cluster again.
        forgets = self._forgets
        found = self._verified_versions(streams, self._head)
        if forgets == self._forgets:  # nothing failed meanwhile; never overwrite a newer version
            for name in streams:
                self._versions.setdefault(name, found.get(name, 0))
        return found

    def streams(self) -> Iterator[StreamInfo]:
        head = self._read_head()
        hints = self._run("all_streams", ())
        stored = self._events_at((h.order_id for h in hints), head)
        floors = {row.stream: int(row.version) for row in self._run("all_floors", ())}
        found: list[StreamInfo] = []
        for hint in hints:
            event = stored.get(hint.order_id)
            if event is not None and event.stream_name == hint.stream and event.stream_version == hint.version:
                version = int(hint.version)
            else:
                version = max(self._walk_down(hint.stream, int(hint.version), head), floors.get(hint.stream, 0))
            if version > 0:
                found.append(StreamInfo(hint.stream, version))
        return iter(sorted(found))

    def events_by_id(self, event_ids: Collection[str]) -> dict[str, RecordedEvent]:
        return self._events_by_id(list(event_ids), self._read_head())

    def _events_by_id(self, ids: list[str], head: int) -> dict[str, RecordedEvent]:
        refs: list[Any] = []
        for rows in self._concurrent((self._ps["ids_in"], (ids[i : i + _IN],)) for i in range(0, len(ids), _IN)):
            refs.extend(rows)
        stored = self._events_at((r.order_id for r in refs), head)
        found: dict[str, RecordedEvent] = {}
        for ref in refs:
            event = stored.get(ref.order_id)
            if event is not None and event.event_id == ref.event_id:
                found[ref.event_id] = event
        return found

    # -- deletion and checkpoints --------------------------------------------------------------

    def delete_stream(self, stream: str) -> int:
        stamp = self._stamp()  # taken first: a writer that lost the store meanwhile deletes nothing newer
        head = self._read_head(serial=True)
        version = self._verified_versions([stream], head).get(stream, 0)
        hint = self._run("streams_in", ([stream],))
        top = max([version, *(int(h.version) for h in hint)])
        events: list[RecordedEvent] = []
        next_version = 1
        while next_version <= version:
            page = self._read_stream(Query(stream=stream, from_version=next_version, limit=5000), head, head)
            if not page:
                break
            events.extend(page)
            next_version = page[-1].stream_version + 1
        # The copies in the key index first: a deletion cut short and done again finds the events
        # it has not removed yet in events_all, so no copy of a removed event is left behind.
        self._concurrent(self._key_index_deletions(events, stamp))
        work: list[tuple[Any, Sequence[Any]]] = []
        for event in events:
            work.append((self._ps["delete_all"], (stamp, event.order_id // BUCKET, event.order_id)))
            work.append((self._ps["delete_id"], (stamp, event.event_id)))
        self._concurrent(work)
        # The index last: until it goes, a half-done deletion can be found and finished.
        self._concurrent(
            (self._ps["delete_index"], (stamp, stream, b)) for b in range(0, (max(top, 1) - 1) // BUCKET + 1)
        )
        self._run("delete_stream", (stamp, stream))
        self._run("delete_floor", (stamp, stream))
        self._versions[stream] = 0
        self._next_version.clear()
        return len(events)

    def truncate_stream(self, stream: str, before_version: int) -> int:
        """Removes the events and their id and read-index rows; the stream's index rows stay (reads
        skip them). The stream's floor is written first: its version stays proven when a scavenge
        removes its newest event too."""
        stamp = self._stamp()
        head = self._read_head(serial=True)
        current = self._verified_versions([stream], head).get(stream, 0)
        before = min(before_version, current + 1)
        if before <= 1:
            return 0
        floor = self._floors([stream]).get(stream, 0)
        if before - 1 > floor:
            self._run("set_floor", (stream, before - 1, stamp))
        rows: list[Any] = []
        for bucket in range(0, (before - 2) // BUCKET + 1):
            rows += [r for r in self._run("index_range", (stream, bucket, 1, BUCKET)) if r.version < before]
        events = self._events_at((r.order_id for r in rows), head)
        work: list[tuple[Any, Sequence[Any]]] = []
        removed = [e for e in events.values() if e.stream_name == stream and e.stream_version < before]
        self._concurrent(self._key_index_deletions(removed, stamp))  # first, as in delete_stream
        for event in removed:
            work.append((self._ps["delete_all"], (stamp, event.order_id // BUCKET, event.order_id)))
            work.append((self._ps["delete_id"], (stamp, event.event_id)))
        self._concurrent(work)
        return len(removed)

    def _key_index_deletions(self, events: Sequence[RecordedEvent], stamp: int) -> list[tuple[Any, Sequence[Any]]]:
        """The statements removing these events' key_index rows."""
        return [(self._ps["delete_key_index"], (stamp, *row)) for row in self._key_index_rows(events)]

    def _key_index_rows(self, events: Sequence[RecordedEvent]) -> list[tuple[str, str, int, int]]:
        """The primary keys (kind, key, part, order-id) of these stored events' key_index rows,
        each in the part whose range holds its order-id."""
        by_key: dict[tuple[str, str], list[int]] = {}
        for event in events:
            for key in _read_keys(event):
                by_key.setdefault(key, []).append(event.order_id)
        keys = sorted(by_key)
        found: list[tuple[str, str, int, int]] = []
        for key, rows in zip(keys, self._concurrent((self._ps["all_parts"], key) for key in keys), strict=True):
            firsts = sorted(int(r.part) for r in rows if not self._epochs.left_over(int(r.part), r.epoch))
            for order in by_key[key]:
                at = bisect.bisect_right(firsts, order) - 1
                if at >= 0:
                    found.append((*key, firsts[at], order))
        return found

    def replace_events(self, events: Sequence[RecordedEvent]) -> None:
        """The copies in the key index are replaced first (a row of a key the new event no
        longer has is removed), then the events_all rows: a redaction cut short and done again
        still finds the old event, and with it every copy of it, in events_all."""
        stamp = self._stamp()
        head = self._read_head(serial=True)
        stored = self._events_at((e.order_id for e in events), head)
        replacing = {e.order_id: e for e in events if e.order_id in stored}
        work: list[tuple[Any, Sequence[Any]]] = []
        for kind, key, part, order in self._key_index_rows([stored[o] for o in replacing]):
            new = replacing[order]
            if _has_read_key(new, kind, key):
                work.append((self._ps["copy_key_index"], (stamp, *new[1:], kind, key, part, order)))
            else:
                work.append((self._ps["delete_key_index"], (stamp, kind, key, part, order)))
        self._concurrent(work)
        self._concurrent(
            (
                self._ps["insert_all"],
                (
                    e.order_id // BUCKET,
                    e.order_id,
                    e.stream_name,
                    e.stream_version,
                    e.event_id,
                    e.event_type,
                    e.event_time,
                    e.data,
                    stamp,
                ),
            )
            for e in events
            if e.order_id in stored
        )

    def read_checkpoint(self, key: str) -> bytes | None:
        rows = self._run("checkpoint", (key,))
        return bytes(rows[0].value) if rows else None

    def checkpoints(self, prefix: str) -> dict[str, bytes]:
        # The table is small (one row per projection, consumer and group): a full read is fine.
        return {row.key: bytes(row.value) for row in self._run("all_checkpoints", ()) if row.key.startswith(prefix)}

    def write_checkpoint(self, key: str, value: bytes | None) -> None:
        if value is None:
            self._run("delete_checkpoint", (key,))
        else:
            self._run("set_checkpoint", (key, value))


class _Prepared:
    """The statements of `_STATEMENTS`, each prepared on the session the first time it is asked for."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._prepared: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        statement = self._prepared.get(name)
        if statement is None:
            statement = self._prepared[name] = self._session.prepare(_STATEMENTS[name])
        return statement


class _Batches:
    """Unlogged batches by group, each closed before it passes _BATCH_BYTES or _INDEX_ROWS rows.

    Unlogged: atomicity comes from the head's lightweight transaction, not from the batches.
    """

    def __init__(self) -> None:
        self._open: dict[Any, tuple[Any, int]] = {}
        self._done: list[Any] = []

    def add(self, group: Any, statement: Any, params: Sequence[Any]) -> None:
        from cassandra.query import BatchStatement, BatchType

        batch, size = self._open.get(group, (None, 0))
        weight = 64 + sum(len(p) for p in params if isinstance(p, (bytes, str)))
        if batch is None or size + weight > _BATCH_BYTES or len(batch) >= _INDEX_ROWS:
            if batch is not None:
                self._done.append(batch)
            batch, size = BatchStatement(batch_type=BatchType.UNLOGGED), 0
        batch.add(statement, params)
        self._open[group] = (batch, size + weight)

    def statements(self) -> list[tuple[Any, Sequence[Any]]]:
        return [(batch, ()) for batch in [*self._done, *(b for b, _ in self._open.values())]]


def _read_keys(event: RecordedEvent) -> list[tuple[str, str]]:
    """The event's read-index keys: its category, its event type and each of its tags."""
    keys = [("c", category_of(event.stream_name)), ("t", event.event_type)]
    if b'"tags"' in event.data:
        keys += [("g", tag) for tag in sorted(set(event_tags(event.data)))]
    return keys


def _has_read_key(event: RecordedEvent, kind: str, key: str) -> bool:
    """Whether a stored event has this read-index key (a row checked against its event)."""
    if kind == "c":
        return category_of(event.stream_name) == key
    if kind == "t":
        return event.event_type == key
    return b'"tags"' in event.data and key in event_tags(event.data)


def _order_id(event: RecordedEvent) -> int:
    return event.order_id


def _event(row: Any) -> RecordedEvent:
    return RecordedEvent(
        int(row.order_id),
        row.stream,
        int(row.version),
        row.event_id,
        row.event_type,
        int(row.event_time),
        bytes(row.data),
    )


def _translate(exc: BaseException) -> BaseException:
    """A driver exception as one of Photon's (others pass through unchanged)."""
    import cassandra
    from cassandra import cluster

    if isinstance(exc, BackendError):
        return exc
    unavailable = (
        cluster.NoHostAvailable,
        cassandra.OperationTimedOut,
        cassandra.Unavailable,
        cassandra.Timeout,
        cassandra.CoordinationFailure,
        ConnectionError,
        OSError,
    )
    if isinstance(exc, unavailable):
        return BackendUnavailable(f"cassandra: cannot complete the request: {exc}")
    if isinstance(exc, cassandra.DriverException | cassandra.RequestExecutionException):
        return BackendError(f"cassandra: {exc}")
    from cassandra.protocol import ErrorMessage

    if isinstance(exc, ErrorMessage):
        return BackendError(f"cassandra: {exc}")
    return exc
