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
`replay.readahead.bytes` read ahead of what the client has taken (encoded, as it is sent), and
the live buffer.

A durable subscription is a consumer name whose position the store keeps
(`photon.core.consumers`). The consumer acknowledges what it has processed; a new connection
under the same name starts right after the last acknowledged event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from photon.core import aio
from photon.core.consumers import check_consumer_name, consumer_positions
from photon.core.errors import NotFound, StoreClosed, ValidationError
from photon.core.events import RecordedEvent, is_one_stream
from photon.core.filters import EventFilter
from photon.core.metrics import metrics_for
from photon.core.requests import MAX_INT64, AckRequest, ReplayOptions, build, parse_integer
from photon.core.store import EventStore
from photon.core.subscriptions import CaughtUp, FellBehind, Item, StreamType, Subscription
from photon.server.http.errors import RequestError, json_response
from photon.server.http.json_calls import parse_json
from photon.server.http.limits import read_body
from photon.server.http.params import Param, accepts, params_of
from photon.server.http.schemas import ConsumerPosition, Consumers, Done, ReplayLine

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
IDLE_SECONDS = 1.0
SSE_KEEPALIVE_IDLES = 15
HISTORY_PAGE = 10_000
"""Most events in one history page (`replay.page.bytes` bounds its bytes)."""

REPLAY_PARAMS = params_of(
    ReplayOptions,
    help={
        "stream-type": "cold, hot or hot-cold (default).",
        "event-types": "Only these event types (comma-separated, or the parameter repeated).",
    },
)
"""The replay options (`photon.core.requests.ReplayOptions`) as query parameters."""
_BY_NAME = {param.name: param for param in REPLAY_PARAMS}
EVENT_TYPES = _BY_NAME["event-types"]
LIMIT = _BY_NAME["limit"]
FILTER_PARAMS = tuple(
    _BY_NAME[name] for name in ("stream-prefix", "event-type-prefix", "stream-regex", "event-type-regex", "category")
)
"""The filters of a replay of `__all__` or of a category, which a durable subscription takes too."""


def event_filter(query: dict[str, Any]) -> EventFilter | None:
    """The filter a request's query parameters give (None when they give none)."""
    return build(ReplayOptions, query).event_filter()


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
        # Reads ahead: the next page comes from the store while this one is being sent. A page
        # is encoded as soon as it is read, so what waits to be sent is its bytes, not its events
        # (a RecordedEvent with its fields takes some 2.5 times its JSON): measured on
        # PostgreSQL, a full replay of 10M events held 28 MiB at its peak, five pages of events,
        # against 18 MiB for one of 30,000 events, which never fills the read-ahead.
        try:
            while True:
                batch = await subscription.next_batch(timeout=IDLE_SECONDS)
                if batch is None:
                    await read_ahead.put(None)
                    return
                encoded = Encoded(encode(batch), len(batch)) if batch else IDLE
                del batch  # its events go now, not once the next page has been read beside them
                await read_ahead.put(encoded)
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
                encoded = await read_ahead.get()
                if encoded is None:
                    return
                if isinstance(encoded, BaseException):
                    raise encoded
                if not encoded.items:
                    if getattr(request.app.state, "closing", False) or await request.is_disconnected():
                        return
                    idles += 1
                    if sse and idles % SSE_KEEPALIVE_IDLES == 0:
                        yield b": keep-alive\n\n"
                    continue
                metrics.replayed.inc(encoded.items)
                yield encoded.body
        finally:
            producer.cancel()
            with contextlib.suppress(BaseException):
                await producer
            metrics.replays.dec()
            subscription.close()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type=SSE if sse else NDJSON, headers=headers)


class Encoded(NamedTuple):
    """A batch of a replay as it is sent, and how many items it holds (0: none came in time)."""

    body: bytes
    items: int


IDLE = Encoded(b"", 0)
"""No items within IDLE_SECONDS: the sender looks whether its client is still there."""


class ReadAhead:
    """The batches a replay has read and encoded and not yet sent, bounded by their bytes.

    The producer may always hand over one batch (however large: a batch is bounded by the page
    and live-buffer sizes); further ones wait until what is queued is under `limit`.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.queued_bytes = 0
        self._items: deque[tuple[Encoded | BaseException | None, int]] = deque()
        self._changed = asyncio.Event()

    async def put(self, item: Encoded | BaseException | None) -> None:
        size = len(item.body) if isinstance(item, Encoded) else 0
        while self._items and self.queued_bytes + size > self.limit:
            self._changed.clear()
            await self._changed.wait()
        self._items.append((item, size))
        self.queued_bytes += size
        self._changed.set()

    async def get(self) -> Encoded | BaseException | None:
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
    try:
        return parse_integer(value.strip(), "Last-Event-ID", text=True, where="header", maximum=MAX_INT64 - 1)
    except ValidationError as exc:
        raise RequestError(f"Last-Event-ID must be an order-id: {exc}") from None


@accepts(
    *REPLAY_PARAMS,
    answer='NDJSON: one event per line, and one line {"caught-up": <order-id>} between history and live '
    "(hot-cold only); server-sent events with Accept: text/event-stream",
    errors={400: "a bad parameter (from-version on __all__, an unknown stream-type, ...)", 404: "no such stream"},
    streaming=True,
    response=ReplayLine,
)
async def replay(request: Request, query: dict[str, Any]) -> Response:
    """Replay a stream (or __all__): cold = history then end; hot = live only; hot-cold = history then live."""
    store: EventStore = request.app.state.store
    stream = request.path_params["stream"]
    options = build(ReplayOptions, query)
    if options.from_order_id is None and wants_sse(request):
        last = _last_event_id(request)
        if last is not None:
            options = msgspec.structs.replace(options, from_order_id=last + 1)
    if (
        options.stream_type == "cold"
        and is_one_stream(stream)  # a category or a `**` wildcard may match no stream: an empty replay
        and not await aio.run_blocking(store, store.stream_exists, stream)
    ):
        raise NotFound(f"stream {stream!r} does not exist")
    subscription = subscribe(store, stream, options.stream_type, **options.subscribe_args())
    return stream_response(request, subscription)


# -- durable subscriptions ---------------------------------------------------------------------


def _consumer_name(request: Request) -> str:
    return check_consumer_name(request.path_params["name"])


@accepts(
    Param("stream", "string", "The stream to follow (default __all__); fixed at the consumer's first connection."),
    Param(
        "stream-type",
        "string",
        "hot-cold (default: history, then live) or cold (history, then end).",
        choices=("cold", "hot-cold"),
    ),
    EVENT_TYPES,
    *FILTER_PARAMS,
    LIMIT,
    answer="like /api/replay, starting after the consumer's last acknowledged event",
    errors={404: "no such route (a consumer name holding '/')", 409: "the consumer already follows another stream"},
    streaming=True,
    response=ReplayLine,
)
async def subscription(request: Request, query: dict[str, Any]) -> Response:
    """Follow a stream as a named durable consumer: resumes after its last acknowledged event."""
    store: EventStore = request.app.state.store
    name = _consumer_name(request)
    # Bad options are refused before a new consumer is recorded.
    options = build(ReplayOptions, query)
    opened = consumer_positions(store).open
    position = await aio.run_blocking(store, opened, name, query["stream"], options.event_filter())
    metrics_for(store).consumers.seen(name, position.acked)
    options = msgspec.structs.replace(options, from_order_id=position.acked + 1)
    subscription = subscribe(store, position.stream, options.stream_type, **options.subscribe_args())
    return stream_response(request, subscription)


@accepts(
    body='{"order-id": n}: the last event the consumer has processed',
    answer='{"consumer": name, "stream": stream, "acked": n}',
    errors={
        400: "order-id missing or not a number",
        404: "no such consumer",
        409: "the order-id is past the newest stored event",
    },
    request=AckRequest,
    response=ConsumerPosition,
)
async def ack(request: Request, query: dict[str, Any]) -> Response:
    """Acknowledge events up to an order-id; positions only move forward."""
    store: EventStore = request.app.state.store
    name = _consumer_name(request)
    doc = parse_json(await read_body(request, 65536))
    if type(doc) is dict and (unknown := sorted(set(doc) - {"order-id"})):
        raise RequestError(f'unknown key {unknown[0]!r}; the body is {{"order-id": <number>}}', field=unknown[0])
    if type(doc) is not dict or "order-id" not in doc:
        raise RequestError('the body must be {"order-id": <number>}', field="order-id")
    order_id = parse_integer(doc["order-id"], "order-id")
    position = await aio.run_blocking(store, consumer_positions(store).ack, name, order_id)
    metrics_for(store).consumers.seen(name, position.acked)
    return json_response(position.to_json())


@accepts(
    answer='{"consumer": name, "stream": stream, "acked": n}',
    errors={404: "no such consumer"},
    response=ConsumerPosition,
)
async def consumer_position(request: Request, query: dict[str, Any]) -> Response:
    """A durable consumer's stream and last acknowledged order-id."""
    store: EventStore = request.app.state.store
    name = _consumer_name(request)
    position = await aio.run_blocking(store, consumer_positions(store).require, name)
    return json_response(position.to_json())


@accepts(answer='{"correct": true}', errors={404: "no such consumer"}, response=Done)
async def delete_consumer(request: Request, query: dict[str, Any]) -> Response:
    """Forget a durable consumer and its position."""
    store: EventStore = request.app.state.store
    name = _consumer_name(request)
    await aio.run_blocking(store, consumer_positions(store).delete, name)
    metrics_for(store).consumers.forget(name)
    return json_response({"correct": True})


@accepts(
    answer='{"subscriptions": [{"consumer": name, "stream": stream, "acked": n, "behind": n}]}', response=Consumers
)
async def list_consumers(request: Request, query: dict[str, Any]) -> Response:
    """Every durable consumer with its stream, last acknowledged order-id and distance behind the newest event."""
    store: EventStore = request.app.state.store

    def listed() -> list[dict[str, Any]]:
        last = store.last_order_id()
        return [
            {**position.to_json(), "behind": last - position.acked} for position in consumer_positions(store).list()
        ]

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
