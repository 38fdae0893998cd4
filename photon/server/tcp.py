"""TCP ingest on `events.port`: newline-delimited JSON events in, one acknowledgement line out per event.

Protocol:

1. The client's first line is ``{"token": "<token from GET /auth/token>"}``. A bad token is
   answered with ``{"error":"Not authorized"}`` and the connection is closed; a good one gets
   no answer, so that acknowledgements line up one to one with events.
2. Then one event (a JSON object, as for ``POST /api/event``) per line. Blank lines are skipped.
3. For each event, in order, one line: ``{"order-id":n,"stream-version":v}`` once it is durable,
   or ``{"error":"..."}``. A bad line gets its own error and does not affect its neighbours.
   If storing fails in the server itself, one error line says so and the connection is closed.

Throughput comes from batching: while one batch is being committed, the lines that arrive are
parsed and validated; the next commit takes all of them in one store append. The lines of one
read are parsed in one call and checked field by field across them (`prepare_batch`) when they
are the usual compact, valid events; otherwise line by line, each fault answered on its own line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from operator import itemgetter
from typing import Any, cast

import orjson

from photon.core import aio, json_input
from photon.core.append_prepare import BATCH_VALIDATION
from photon.core.batches import split_batches
from photon.core.config import Config
from photon.core.errors import PhotonError
from photon.core.event_validation import prepare_batch, prepare_event
from photon.core.events import PendingEvent, Tagless, new_event_ids, now_millis
from photon.core.gc_pause import cycle_collection_paused
from photon.core.metrics import metrics_for
from photon.core.store import EventStore
from photon.server.net import bind, tcp_tls, url_host
from photon.server.tokens import TokenSigner

log = logging.getLogger("photon.tcp")

READ_SIZE = 1 << 18
MAX_LINE = 64 << 20
MAX_BATCH = 10_000
MAX_QUEUED = 50_000
"""Validated events waiting for a commit before the reader stops reading (back-pressure)."""
TOKEN_TIMEOUT = 30.0
STOP_SECONDS = 5.0
CLOSE_GRACE_SECONDS = 1.0
NOT_AUTHORIZED = b'{"error":"Not authorized"}\n'


def _error_line(message: str) -> bytes:
    return orjson.dumps({"error": message}) + b"\n"


_ACK = b'{"order-id":%d,"stream-version":%d}\n'
"""One acknowledgement line: `_ACK % (order_id, stream_version)`."""
_ORDER_AND_VERSION = itemgetter(0, 2)
"""A recorded event's (order-id, stream-version): the acknowledgement lines of a batch are
formatted in one pass in C (`map`), without a Python call an event."""


class _Connection:
    """One client: a reader that validates lines, a committer that appends and answers in order."""

    def __init__(self, service: TcpIngestService, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.service = service
        self.store = service.store
        self.reader = reader
        self.writer = writer
        self.items: list[PendingEvent | bytes] = []  # an event to append, or the error line of a bad one
        self.queued_events = 0
        self.plain = True
        """Whether `items` holds only valid events with store-made ids (the common case)."""
        self.tagless = True
        """Whether every event of `items` came from `prepare_batch` (none has tags): the writer
        then skips the search for tags (`Tagless`)."""
        self.more = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self.reading_done = False
        self.read_task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        if not await self._authorize():
            return
        committer = asyncio.create_task(self._commit_loop())
        self.read_task = asyncio.create_task(self._read_loop())
        try:
            # Reading ends at the client's EOF or when the server stops; the committer ends early
            # only when it fails, and then the client must hear of it rather than wait for acks.
            await asyncio.wait([self.read_task, committer], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.read_task.cancel()
            self.reading_done = True
            self.more.set()
            try:
                await committer
            except ConnectionError:
                pass
            except Exception as exc:  # a fault of the server's, not of the client's input
                await self._answer_failure(exc)
                return
        if self.service.closing:
            await self._close_gracefully()

    async def _answer_failure(self, exc: Exception) -> None:
        """The committer failed: log it, tell the client in an error line, and end the connection
        (events without an acknowledgement may or may not have been stored)."""
        log.error("TCP ingest: storing a client's events failed; closing its connection", exc_info=exc)
        line = _error_line(
            f"internal error while storing events ({type(exc).__name__}: {exc}); the connection is closed "
            "and the events sent after the last acknowledgement may or may not be stored"
        )
        with contextlib.suppress(ConnectionError, RuntimeError):
            self.writer.write(line)
            await self.writer.drain()
        await self._close_gracefully()

    def stop_reading(self) -> None:
        if self.read_task is not None:
            self.read_task.cancel()

    async def _close_gracefully(self) -> None:
        """Signal the end of the answers (FIN), then drop what the client still sends for a moment:
        closing with unread input would reset the connection and could lose answers in flight."""
        with contextlib.suppress(OSError, RuntimeError):
            if self.writer.can_write_eof():
                self.writer.write_eof()
            deadline = asyncio.get_running_loop().time() + CLOSE_GRACE_SECONDS
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                if not await asyncio.wait_for(self.reader.read(READ_SIZE), left):
                    break

    async def _authorize(self) -> bool:
        try:
            line = await asyncio.wait_for(self.reader.readline(), TOKEN_TIMEOUT)
            token = orjson.loads(line).get("token") if line.strip() else None
        except (TimeoutError, ValueError, AttributeError, orjson.JSONDecodeError):
            token = None
        if not isinstance(token, str) or not self.service.signer.verify(token):
            self.writer.write(NOT_AUTHORIZED)
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()
            # A client sends its events right behind the token line: closed with them unread,
            # the connection was reset, and the client could get the reset instead of the answer.
            await self._close_gracefully()
            return False
        return True

    def _take_lines(self, lines: list[bytes]) -> None:
        store = self.store
        items = self.items
        queued = len(items)
        if store.read_only:
            refusal = _error_line("this store was opened read-only")
            items.extend(refusal for line in lines if line and not line.isspace())
            self.plain = False
        else:
            # One clock reading and one run of ids for the lines of a read (a few thousand at most).
            max_bytes, now = store.max_event_bytes, now_millis()
            if len(lines) >= BATCH_VALIDATION:
                # The read's parsed events (two dicts or more each) are alive together, and a
                # cycle collection while they are would move them all to an older generation,
                # whose collections then walk them, and bring on the full ones, which walk the
                # whole server; paused, they are freed (by their counts) before any collection
                # sees them, and the next collection finds only the batch's plain tuples.
                with cycle_collection_paused():
                    values = json_input.loads_compact_lines(lines)
                    batch = prepare_batch(values, max_bytes, now, lines) if values is not None else None
                    del values
                if batch is not None:
                    items.extend(batch)
                    if batch[0][5]:  # client-chosen ids (all or none in such a batch)
                        self.plain = False
                    self.queued_events += len(items) - queued
                    self.more.set()
                    return
            self.tagless = False
            new_id = iter(new_event_ids(len(lines))).__next__
            loads = json_input.loads
            for line in lines:
                if not line or line.isspace():
                    continue
                try:
                    event = prepare_event(loads(line), max_bytes, False, now, new_id, True)
                except orjson.JSONDecodeError as exc:
                    items.append(_error_line(f"malformed JSON: {exc}"))
                    self.plain = False
                    metrics_for(store).refused.labels("tcp", "invalid").inc()
                except PhotonError as exc:
                    items.append(_error_line(str(exc)))
                    self.plain = False
                    metrics_for(store).refuse("tcp", exc)
                else:
                    items.append(event)
                    if event.client_id:
                        self.plain = False
        self.queued_events += len(items) - queued
        self.more.set()

    async def _read_loop(self) -> None:
        # The start of a line not ended yet, kept as chunks: joining them only once the line ends
        # keeps a long line linear (adding each chunk to one bytes object copied it again and again).
        pending: list[bytes] = []
        pending_size = 0
        reader = self.reader
        while not self.service.closing:
            await self.room.wait()
            chunk = await reader.read(READ_SIZE)
            if not chunk:
                break
            if b"\n" not in chunk:
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size > MAX_LINE:
                    self.items.append(_error_line(f"line longer than {MAX_LINE} bytes; closing"))
                    self.plain = False
                    self.more.set()
                    return
                continue
            lines = chunk.split(b"\n")
            if pending:  # the line begun in earlier reads ends in this one's first
                pending.append(lines[0])
                lines[0] = b"".join(pending)
                pending.clear()
            rest = lines.pop()
            pending_size = len(rest)
            if rest:
                pending.append(rest)
            self._take_lines(lines)
            if self.queued_events >= MAX_QUEUED:
                self.room.clear()
        buffer = b"".join(pending)
        if buffer.strip() and not self.service.closing:
            self._take_lines([buffer])

    async def _commit_loop(self) -> None:
        metrics = metrics_for(self.store)
        while True:
            if not self.items:
                if self.reading_done:
                    return
                await self.more.wait()
                self.more.clear()
                continue
            items, self.items = self.items, []
            plain, self.plain = self.plain, True
            tagless, self.tagless = self.tagless, True
            self.queued_events = 0
            self.room.set()
            if plain:
                out = await self._commit_plain(items, metrics, tagless)
            else:
                out = await self._commit(items, metrics)
            self.writer.write(b"".join(out))
            await self.writer.drain()

    async def _append(self, batch: list[PendingEvent], metrics: Any) -> list[bytes]:
        """Append `batch` atomically; one answer per event: its acknowledgement, or the error."""
        started = asyncio.get_running_loop().time()
        try:
            stored = await aio.append_validated(self.store, batch)
        except PhotonError as exc:
            metrics.tcp.rejected_append()
            metrics.refuse("tcp", exc)
            return [_error_line(str(exc))] * len(batch)
        metrics.tcp.stored_append(len(stored), asyncio.get_running_loop().time() - started)
        return list(map(_ACK.__mod__, map(_ORDER_AND_VERSION, stored)))

    async def _commit_plain(self, items: list[PendingEvent | bytes], metrics: Any, tagless: bool) -> list[bytes]:
        """`_commit` for items that are all valid events with store-made ids: nothing to split."""
        out: list[bytes] = []
        for start in range(0, len(items), MAX_BATCH):
            batch = cast(list[PendingEvent], items[start : start + MAX_BATCH])
            out.extend(await self._append(Tagless(batch) if tagless else batch, metrics))
        return out

    async def _commit(self, items: list[PendingEvent | bytes], metrics: Any) -> list[bytes]:
        """Append the valid events (in batches the core splits: `split_batches`) and answer every
        item in order."""
        events = [cast(PendingEvent, item) for item in items if type(item) is not bytes]
        answers: list[bytes] = []
        for batch in split_batches(events, MAX_BATCH):
            answers.extend(await self._append(batch, metrics))
        following = iter(answers).__next__
        return [item if type(item) is bytes else following() for item in items]


class TcpIngestService:
    """Listens on `events.port` (on `rest.host`) for bulk ingest."""

    def __init__(self, store: EventStore, config: Config) -> None:
        self.store = store
        self.config = config
        self.signer = TokenSigner.from_config(config)
        self.port = 0
        self.address = ""
        self.closing = False
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._open: set[_Connection] = set()

    async def start(self) -> None:
        sock = bind(self.config["rest.host"], self.config["events.port"], "events.port")
        self.port = sock.getsockname()[1]
        self.address = f"{url_host(sock)}:{self.port}"
        tls = tcp_tls(self.config)
        self._server = await asyncio.start_server(self._handle, sock=sock, limit=MAX_LINE, ssl=tls)
        log.info("TCP ingest listening on %s%s", self.address, " (TLS)" if tls else "")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        connection = _Connection(self, reader, writer)
        self._open.add(connection)
        gauge = metrics_for(self.store).tcp_connections
        gauge.inc()
        try:
            await connection.run()
        except (ConnectionError, TimeoutError):
            pass
        except Exception:
            log.exception("TCP ingest connection failed")
        finally:
            gauge.dec()
            self._connections.discard(task)
            self._open.discard(connection)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def stop(self) -> None:
        """Stop accepting; each connection answers what it has read, then closes."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._open):
            connection.stop_reading()  # what was read is still stored and answered
        if self._connections:
            _, pending = await asyncio.wait(list(self._connections), timeout=STOP_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        log.info("TCP ingest stopped")
