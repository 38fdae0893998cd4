"""Streaming replay (`/api/replay/{stream}`) and durable named subscriptions (`/api/subscription/...`).

Each line of an NDJSON replay is one stored event, written as the store holds it (never
decoded and re-encoded). Between history and live comes one marker line,
``{"caught-up":<order-id>}``: every event up to that order-id has been sent, what follows is
live. A client that reads too slowly for its live buffer (`subscription.buffer.bytes`) is told
so with ``{"fell-behind":<order-id>}`` (the last event it got); its events then come from the
store until a new ``caught-up`` line. With ``Accept: text/event-stream`` the same items go out
as server-sent events: events as ``id: <order-id>`` + ``data: <event>``, the markers as
``event: caught-up`` and ``event: fell-behind``.

Memory per replay is bounded in bytes: history pages of about `replay.page.bytes`, at most
`replay.readahead.bytes` read ahead of what the client has taken, and the live buffer.

A durable subscription is a consumer name whose position the server keeps (checkpoint key
``consumer:<name>``). The consumer acknowledges what it has processed; a new connection under
the same name starts right after the last acknowledged event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from photon.core import aio
from photon.core.errors import NotFound, StoreClosed
from photon.core.events import ALL_STREAM, RecordedEvent, is_one_stream
from photon.core.filters import EventFilter
from photon.core.metrics import metrics_for
from photon.core.store import EventStore
from photon.core.subscriptions import STREAM_TYPES, CaughtUp, FellBehind, Item, StreamType, Subscription
from photon.server.http.api import parse_json, read_body
from photon.server.http.errors import RequestError, json_response
from photon.server.http.params import Param, accepts

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
IDLE_SECONDS = 1.0
SSE_KEEPALIVE_IDLES = 15
CONSUMER_PREFIX = "consumer:"
HISTORY_PAGE = 10_000
"""Most events in one history page (`replay.page.bytes` bounds its bytes)."""
MAX_CONSUMER_NAME = 200

STREAM_TYPE = Param("stream-type", "string", "cold, hot or hot-cold (default).", choices=STREAM_TYPES)
EVENT_TYPES = Param("event-types", "list", "Only these event types (comma-separated, or the parameter repeated).")
LIMIT = Param("limit", "integer", "Stop after this many events.", minimum=1)

FILTER_PARAMS = (
    Param("stream-prefix", "list", "__all__ or a category: only streams whose name starts with one of these."),
    Param("event-type-prefix", "list", "Only event types starting with one of these."),
    Param("stream-regex", "string", "__all__ or a category: only stream names this regular expression finds."),
    Param("event-type-regex", "string", "Only event types this regular expression finds."),
    Param("category", "list", "__all__: only streams of these categories (a name's part before its first '-')."),
)

REPLAY_PARAMS = (
    STREAM_TYPE,
    Param("from", "integer", "First order-id (inclusive).", minimum=1),
    Param("from-version", "integer", "First stream-version (inclusive; not for __all__).", minimum=1),
    Param("from-time", "integer", "Only events whose event-time (epoch ms) is at least this.", minimum=0),
    Param("to", "integer", "Last order-id (inclusive); the replay ends there.", minimum=1),
    EVENT_TYPES,
    LIMIT,
    *FILTER_PARAMS,
)


def event_filter(query: dict[str, Any]) -> EventFilter | None:
    """The filter a request's query parameters give (None when they give none)."""
    found = EventFilter.from_mapping({p.name: query[p.name] for p in FILTER_PARAMS if query.get(p.name) is not None})
    return None if found.empty else found


def _marker_line(item: CaughtUp | FellBehind) -> bytes:
    if type(item) is CaughtUp:
        return b'{"caught-up":%d}' % item.order_id
    return b'{"fell-behind":%d}' % item.order_id


def _ndjson(batch: list[Item]) -> bytes:
    # Markers are rare and only ever open (fell-behind) or close (caught-up) a batch.
    if type(batch[0]) is RecordedEvent and type(batch[-1]) is RecordedEvent:
        return b"\n".join([e.data for e in batch]) + b"\n"  # type: ignore[union-attr]
    return b"\n".join([e.data if type(e) is RecordedEvent else _marker_line(e) for e in batch]) + b"\n"  # type: ignore[arg-type]


def _sse(batch: list[Item]) -> bytes:
    parts: list[bytes] = []
    for item in batch:
        if type(item) is CaughtUp:
            parts.append(b"event: caught-up\ndata: " + _marker_line(item) + b"\n\n")
        elif type(item) is FellBehind:
            parts.append(b"event: fell-behind\ndata: " + _marker_line(item) + b"\n\n")
        else:
            assert isinstance(item, RecordedEvent)
            parts.append(b"id: %d\ndata: " % item.order_id + item.data + b"\n\n")
    return b"".join(parts)


def wants_sse(request: Request) -> bool:
    return SSE in request.headers.get("accept", "")


def stream_response(request: Request, subscription: Subscription) -> StreamingResponse:
    """Send a subscription's items as NDJSON or server-sent events until it ends or the client leaves."""
    sse = wants_sse(request)
    encode = _sse if sse else _ndjson
    metrics = metrics_for(request.app.state.store)

    read_ahead = ReadAhead(int(request.app.state.config["replay.readahead.bytes"]))

    async def produce() -> None:
        # Reads ahead: the next page comes from the store while this one is being sent.
        try:
            while True:
                batch = await subscription.next_batch(timeout=IDLE_SECONDS)
                await read_ahead.put(batch)
                if batch is None:
                    return
        except StoreClosed:
            await read_ahead.put(None)
        except BaseException as exc:
            await read_ahead.put(exc)
            raise

    async def body() -> AsyncIterator[bytes]:
        metrics.replays.inc()
        producer = asyncio.create_task(produce())
        idles = 0
        try:
            while True:
                batch = await read_ahead.get()
                if batch is None:
                    return
                if isinstance(batch, BaseException):
                    raise batch
                if not batch:
                    if getattr(request.app.state, "closing", False) or await request.is_disconnected():
                        return
                    idles += 1
                    if sse and idles % SSE_KEEPALIVE_IDLES == 0:
                        yield b": keep-alive\n\n"
                    continue
                metrics.replayed.inc(len(batch))
                yield encode(batch)
        finally:
            producer.cancel()
            with contextlib.suppress(BaseException):
                await producer
            metrics.replays.dec()
            subscription.close()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type=SSE if sse else NDJSON, headers=headers)


class ReadAhead:
    """The batches a replay has read and not yet sent, bounded by their bytes of event data.

    The producer may always hand over one batch (however large: a batch is bounded by the page
    and live-buffer sizes); further ones wait until what is queued is under `limit`.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.queued_bytes = 0
        self._items: deque[tuple[list[Item] | BaseException | None, int]] = deque()
        self._changed = asyncio.Event()

    async def put(self, item: list[Item] | BaseException | None) -> None:
        size = sum(len(e.data) for e in item if type(e) is RecordedEvent) if isinstance(item, list) else 0
        while self._items and self.queued_bytes + size > self.limit:
            self._changed.clear()
            await self._changed.wait()
        self._items.append((item, size))
        self.queued_bytes += size
        self._changed.set()

    async def get(self) -> list[Item] | BaseException | None:
        while not self._items:
            self._changed.clear()
            await self._changed.wait()
        item, size = self._items.popleft()
        self.queued_bytes -= size
        self._changed.set()
        return item


def subscribe(store: EventStore, stream: str, stream_type: StreamType, **options: Any) -> Subscription:
    """`store.subscribe`, with bigger history pages (a replay sends them whole), telling the client
    when it fell behind."""
    return store.subscribe(stream, stream_type, page_events=HISTORY_PAGE, tell_fell_behind=True, **options)


def _last_event_id(request: Request) -> int | None:
    value = request.headers.get("last-event-id")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise RequestError(f"Last-Event-ID must be an order-id, got {value!r}")
    return int(value)


@accepts(
    *REPLAY_PARAMS,
    answer='NDJSON: one event per line, and one line {"caught-up": <order-id>} between history and live '
    "(hot-cold only); server-sent events with Accept: text/event-stream",
    errors={400: "a bad parameter (from-version on __all__, an unknown stream-type, ...)", 404: "no such stream"},
    streaming=True,
)
async def replay(request: Request, query: dict[str, Any]) -> Response:
    """Replay a stream (or __all__): cold = history then end; hot = live only; hot-cold = history then live."""
    store: EventStore = request.app.state.store
    stream = request.path_params["stream"]
    stream_type: StreamType = query["stream-type"] or "hot-cold"
    start = query["from"]
    if start is None and wants_sse(request):
        last = _last_event_id(request)
        start = None if last is None else last + 1
    if (
        stream_type == "cold"
        and is_one_stream(stream)  # a category or a `**` wildcard may match no stream: an empty replay
        and not await aio.run_blocking(store, store.stream_exists, stream)
    ):
        raise NotFound(f"stream {stream!r} does not exist")
    subscription = subscribe(
        store,
        stream,
        stream_type,
        from_order_id=start,
        from_version=query["from-version"],
        from_time=query["from-time"],
        to_order_id=query["to"],
        event_types=query["event-types"],
        limit=query["limit"],
        event_filter=event_filter(query),
    )
    return stream_response(request, subscription)


# -- durable subscriptions ---------------------------------------------------------------------


def _consumer_name(request: Request) -> str:
    name: str = request.path_params["name"]
    if len(name) > MAX_CONSUMER_NAME or not name.isprintable():
        raise RequestError(f"a consumer name is 1 to {MAX_CONSUMER_NAME} printable characters", field="name")
    return name


def _position(store: EventStore, name: str) -> dict[str, Any] | None:
    value = store.read_checkpoint(CONSUMER_PREFIX + name)
    return value if isinstance(value, dict) else None


CONSUMER_NAMES = "consumers"
"""Checkpoint key of the sorted list of durable consumers' names (what `GET /api/subscriptions` lists).

Consumers created before the list existed are not in it until they are created again."""


def _set_listed(store: EventStore, name: str, listed: bool) -> None:
    """Add or remove a name in the consumer list (callers hold the consumers lock)."""
    value = store.read_checkpoint(CONSUMER_NAMES)
    names = set(value) if isinstance(value, list) else set()
    if (name in names) != listed:
        names.symmetric_difference_update({name})
        store.write_checkpoint(CONSUMER_NAMES, sorted(names))


def _consumers_lock(request: Request) -> asyncio.Lock:
    lock: asyncio.Lock | None = getattr(request.app.state, "consumers_lock", None)
    if lock is None:
        lock = request.app.state.consumers_lock = asyncio.Lock()
    return lock


@accepts(
    Param("stream", "string", "The stream to follow (default __all__); fixed at the consumer's first connection."),
    Param(
        "stream-type",
        "string",
        "hot-cold (default: history, then live) or cold (history, then end).",
        choices=("cold", "hot-cold"),
    ),
    EVENT_TYPES,
    LIMIT,
    answer="like /api/replay, starting after the consumer's last acknowledged event",
    errors={409: "the consumer already follows another stream"},
    streaming=True,
)
async def subscription(request: Request, query: dict[str, Any]) -> Response:
    """Follow a stream as a named durable consumer: resumes after its last acknowledged event."""
    store: EventStore = request.app.state.store
    name = _consumer_name(request)
    async with _consumers_lock(request):
        position = await aio.run_blocking(store, _position, store, name)
        stream = query["stream"]
        if position is None:
            stream = stream or ALL_STREAM
            position = {"stream": stream, "order-id": 0}
            await aio.run_blocking(store, store.write_checkpoint, CONSUMER_PREFIX + name, position)
            await aio.run_blocking(store, _set_listed, store, name, True)
        elif stream is not None and stream != position["stream"]:
            raise RequestError(
                f"consumer {name!r} follows stream {position['stream']!r}, not {stream!r} "
                "(delete the consumer to start over)",
                409,
            )
    metrics_for(store).consumers.seen(name, position["order-id"])
    stream_type: StreamType = query["stream-type"] or "hot-cold"
    subscription = subscribe(
        store,
        position["stream"],
        stream_type,
        from_order_id=position["order-id"] + 1,
        event_types=query["event-types"],
        limit=query["limit"],
    )
    return stream_response(request, subscription)


@accepts(
    body='{"order-id": n}: the last event the consumer has processed',
    answer='{"consumer": name, "stream": stream, "acked": n}',
    errors={400: "order-id missing, not a number, or not yet stored", 404: "no such consumer"},
)
async def ack(request: Request, query: dict[str, Any]) -> Response:
    """Acknowledge events up to an order-id; positions only move forward."""
    store: EventStore = request.app.state.store
    name = _consumer_name(request)
    doc = parse_json(await read_body(request, 65536))
    if type(doc) is not dict or set(doc) != {"order-id"}:
        raise RequestError('the body must be {"order-id": <number>}', field="order-id")
    order_id = doc["order-id"]
    if type(order_id) is not int or order_id < 0:
        raise RequestError(f"order-id must be a whole number of at least 0, got {order_id!r}", field="order-id")
    if order_id > store.last_order_id():
        raise RequestError(
            f"order-id {order_id} is past the newest stored event ({store.last_order_id()})", field="order-id"
        )
    async with _consumers_lock(request):
        position = await aio.run_blocking(store, _position, store, name)
        if position is None:
            raise NotFound(f"no consumer named {name!r}")
        if order_id > position["order-id"]:
            position = {**position, "order-id": order_id}
            await aio.run_blocking(store, store.write_checkpoint, CONSUMER_PREFIX + name, position)
    metrics_for(store).consumers.seen(name, position["order-id"])
    return json_response({"consumer": name, "stream": position["stream"], "acked": position["order-id"]})


@accepts(answer='{"consumer": name, "stream": stream, "acked": n}', errors={404: "no such consumer"})
async def consumer_position(request: Request, query: dict[str, Any]) -> Response:
    """A durable consumer's stream and last acknowledged order-id."""
    store: EventStore = request.app.state.store
    name = _consumer_name(request)
    position = await aio.run_blocking(store, _position, store, name)
    if position is None:
        raise NotFound(f"no consumer named {name!r}")
    return json_response({"consumer": name, "stream": position["stream"], "acked": position["order-id"]})


@accepts(answer='{"correct": true}', errors={404: "no such consumer"})
async def delete_consumer(request: Request, query: dict[str, Any]) -> Response:
    """Forget a durable consumer and its position."""
    store: EventStore = request.app.state.store
    name = _consumer_name(request)
    async with _consumers_lock(request):
        if await aio.run_blocking(store, _position, store, name) is None:
            raise NotFound(f"no consumer named {name!r}")
        await aio.run_blocking(store, store.write_checkpoint, CONSUMER_PREFIX + name, None)
        await aio.run_blocking(store, _set_listed, store, name, False)
    metrics_for(store).consumers.forget(name)
    return json_response({"correct": True})


@accepts(answer='{"subscriptions": [{"consumer": name, "stream": stream, "acked": n, "behind": n}]}')
async def list_consumers(request: Request, query: dict[str, Any]) -> Response:
    """Every durable consumer with its stream, last acknowledged order-id and distance behind the newest event."""
    store: EventStore = request.app.state.store

    def listed() -> list[dict[str, Any]]:
        value = store.read_checkpoint(CONSUMER_NAMES)
        last = store.last_order_id()
        found = []
        for name in value if isinstance(value, list) else []:
            position = _position(store, name)
            if position is not None:
                acked = position["order-id"]
                found.append({"consumer": name, "stream": position["stream"], "acked": acked, "behind": last - acked})
        return found

    return json_response({"subscriptions": await aio.run_blocking(store, listed)})


def replay_routes() -> list[BaseRoute]:
    return [
        Route("/api/replay/{stream:path}", replay, methods=["GET"]),
        Route("/api/subscriptions", list_consumers, methods=["GET"]),
        Route("/api/subscription/{name}", subscription, methods=["GET"]),
        Route("/api/subscription/{name}", delete_consumer, methods=["DELETE"]),
        Route("/api/subscription/{name}/ack", ack, methods=["POST"]),
        Route("/api/subscription/{name}/position", consumer_position, methods=["GET"]),
    ]
