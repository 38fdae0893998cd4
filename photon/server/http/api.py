"""Photon's core /api routes: ping, streams, emit, stream contents, one event, delete a stream."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Iterable
from typing import Annotated, Any

import orjson
from msgspec import Meta
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from photon.core import aio
from photon.core.append_request import parse_after, parse_emit, parse_query
from photon.core.errors import NotFound, PhotonError
from photon.core.events import RecordedEvent, is_one_stream, read_holds
from photon.core.metrics import Metrics, metrics_for
from photon.core.requests import (
    DEFAULT_PAGE,
    MAX_PAGE,
    EmitEnvelope,
    PageOptions,
    ReadMatchingRequest,
    build,
    field_names,
    parse_integer,
)
from photon.core.store import EventStore
from photon.core.stream_metadata import within_bounds
from photon.server.http.errors import JSON, RequestError, json_response
from photon.server.http.json_calls import parse_json
from photon.server.http.lifetime_routes import lifetime_routes
from photon.server.http.limits import read_body
from photon.server.http.params import Param, accepts, params_of
from photon.server.http.schemas import (
    CLIENT_STREAM_PATH,
    Categories,
    Deleted,
    EventPage,
    MatchingPage,
    NewEvent,
    Ping,
    StoredEvent,
    Streams,
)

log = logging.getLogger("photon.http")

DEFAULT_STREAM_PAGE = 100

EXPECTED_VERSION = Param(
    "expected-version",
    "string",
    "Optimistic concurrency for the batch's one stream: a version number (0 = must not exist), "
    "'any' (default) or 'no-stream'. May also be given in the body wrapper (which also takes "
    "expected-versions for several streams, and a condition).",
)


def _store(request: Request) -> EventStore:
    store: EventStore = request.app.state.store
    return store


@accepts(answer='{"auth": "ok"}', auth=False, response=Ping)
async def ping(request: Request, query: dict[str, Any]) -> Response:
    """Check that the server answers (no token needed)."""
    return Response(b'{"auth":"ok"}', media_type=JSON)


@accepts(
    Param("prefix", "string", "Only streams whose names start with this."),
    Param("after", "string", "Only streams whose names sort after this one (the previous page's next)."),
    Param("limit", "integer", f"Most streams in the page (at most {MAX_PAGE}).", minimum=1, maximum=MAX_PAGE),
    response=Streams,
    answer='{"streams": [{"stream-name": str, "total-events": int}], "next": <name to pass as after, or null>}',
)
async def streams(request: Request, query: dict[str, Any]) -> Response:
    """The streams holding events, with their number of events, in name order.

    Without parameters, every stream (Photon's answer, without `next`); with `prefix`, `after` or
    `limit`, one page of them (`limit` defaults to 100 then).
    """
    store = _store(request)
    if query["prefix"] is None and query["after"] is None and query["limit"] is None:
        found = await aio.run_blocking(store, store.streams)
        return json_response(
            {"streams": [{"stream-name": s.stream_name, "total-events": s.total_events} for s in found]}
        )
    limit = query["limit"] or DEFAULT_STREAM_PAGE
    found = await aio.run_blocking(
        store, lambda: store.stream_page(prefix=query["prefix"] or "", after=query["after"], limit=limit + 1)
    )
    following = found[limit - 1].stream_name if len(found) > limit else None
    del found[limit:]
    listed = [{"stream-name": s.stream_name, "total-events": s.total_events} for s in found]
    return json_response({"streams": listed, "next": following})


@accepts(
    Param("after", "string", "Only categories after this one (the previous page's next)."),
    Param(
        "limit", "integer", f"Most categories in the page (default {DEFAULT_STREAM_PAGE}).", minimum=1, maximum=MAX_PAGE
    ),
    answer='{"categories": [str], "next": <category to pass as after, or null>}',
    response=Categories,
)
async def categories(request: Request, query: dict[str, Any]) -> Response:
    """Stream categories (a stream name up to its first '-'), one page, in the order of their first stream."""
    store = _store(request)
    found, following = await aio.run_blocking(
        store, lambda: store.categories(after=query["after"], limit=query["limit"] or DEFAULT_STREAM_PAGE)
    )
    return json_response({"categories": found, "next": following})


@accepts(
    EXPECTED_VERSION,
    body='an event object, a list of events, or {"events": [...], "expected-version": ...} with, instead of '
    'expected-version, "expected-versions": {stream: version, ...} (a batch over several streams) and/or '
    '"condition": {"query": [{"event-types": [...], "tags": [...]}], "after": order-id}',
    answer="the stored event (an object) or the stored events (a list), with order-id and stream-version",
    request=(NewEvent, Annotated[list[NewEvent], Meta(min_length=1)], EmitEnvelope),
    response=(StoredEvent, list[StoredEvent]),
    errors={
        400: "malformed JSON, a JSON object with a repeated key, a missing or mistyped field, an internal "
        "stream name, a null expected-version",
        409: "an expected version does not match (answer has stream-name and current-version), the "
        "condition failed (answer has the first matching event's order-id, stream-name, event-type and id), "
        "or an event id is already stored in another stream (answer has id, stream-name and stored-in)",
        410: "a stream of the batch was hard deleted (answer has its stream-name)",
        413: "an event over payload.max.bytes or a body over rest.body.max.bytes",
    },
)
async def post_event(request: Request, query: dict[str, Any]) -> Response:
    """Store one event or a batch of events atomically (all or nothing)."""
    limit = request.app.state.config["rest.body.max.bytes"]
    answer = await emit(
        _store(request), read_body(request, limit), query["expected-version"], request.scope.get("client")
    )
    return Response(answer, media_type=JSON)


async def emit(
    store: EventStore,
    body: bytes | Awaitable[bytes],
    expected_version: str | None,
    connection: Iterable[Any] | None = None,
    metrics: Metrics | None = None,
) -> bytes:
    """What `POST /api/event` does once routed: read the body (`body`, awaited here so that a
    refused one counts as a rejected emit; or its bytes, when the caller has them whole), store
    its events, count it in the metrics, and give the answer's bytes. Shared by the routed
    endpoint and the direct path (`emit_direct`).
    `connection` (the ASGI scope's client address) tells the store's writer that this client's next emit
    may follow its answer at once (see `Committer.gather`). `metrics` is `metrics_for(store)`,
    when the caller holds it already."""
    started = time.perf_counter()
    if metrics is None:
        metrics = metrics_for(store)
    try:
        doc = parse_json(body if isinstance(body, bytes) else await body)
        request = parse_emit(doc, expected_version=expected_version)
        events = request.events
        stored = await store.append_request_async(events, request.options, tuple(connection) if connection else 0)
    except (PhotonError, RequestError) as exc:
        metrics.http.rejected_append()
        metrics.refuse("http", exc)
        log.debug("append refused: %s", exc)
        raise
    metrics.http.stored_append(len(stored), time.perf_counter() - started)
    if type(events) is list:
        return b"[" + b",".join([e.data for e in stored]) + b"]"
    return stored[0].data


@accepts(
    body='{"query": [{"event-types": [...], "tags": [...]}], "after": order-id, "limit": n} (all optional)',
    answer='{"results": [events], "next": <after for the next page, or null>, "head": <last order-id>}',
    request=ReadMatchingRequest,
    body_required=False,
    response=MatchingPage,
    errors={400: "a malformed query"},
)
async def read_matching(request: Request, query: dict[str, Any]) -> Response:
    """Events of client streams matching a query, after a position: what a conditional append checks."""
    store = _store(request)
    body = await read_body(request, request.app.state.config["rest.body.max.bytes"])
    doc = parse_json(body) if body.strip() else {}
    if type(doc) is not dict:
        raise RequestError('the body must be an object {"query": [...], "after": ..., "limit": ...}')
    unknown = sorted(doc.keys() - set(field_names(ReadMatchingRequest)))
    if unknown:
        raise RequestError(f"unknown field {unknown[0]!r}; the body has the fields query, after and limit")
    items = parse_query(doc.get("query", []))
    after = parse_after(doc.get("after"))
    limit = parse_integer(doc.get("limit", DEFAULT_PAGE), "limit", minimum=1, maximum=MAX_PAGE)
    head = store.last_order_id()

    def page() -> list[Any]:
        return list(store.read_matching(items, after=after, limit=limit))

    events = await aio.run_blocking(store, page)
    following = events[-1].order_id if len(events) == limit else None
    return Response(
        b'{"results":['
        + b",".join([e.data for e in events])
        + b'],"next":'
        + orjson.dumps(following)
        + b',"head":%d}' % head,
        media_type=JSON,
    )


async def _require_stream(store: EventStore, stream: str) -> None:
    if not is_one_stream(stream):  # __all__, a category or a `**` wildcard may hold no event yet
        return
    if not await aio.run_blocking(store, store.stream_exists, stream):
        raise NotFound(f"stream {stream!r} does not exist")


@accepts(
    *params_of(PageOptions),
    answer='{"results": [events], "next": <order-id to pass as from for the next page, or null>}',
    response=EventPage,
    errors={404: "no such stream"},
)
async def stream_contents(request: Request, query: dict[str, Any]) -> Response:
    """One page of a stream's events (or __all__'s, or a category's), oldest or newest first."""
    store = _store(request)
    stream = request.path_params["stream"]
    options = build(PageOptions, query)
    await _require_stream(store, stream)
    limit = options.limit or DEFAULT_PAGE
    read = store.read_backward if options.direction == "backward" else store.read

    def page() -> list[Any]:
        return list(
            read(
                stream,
                from_order_id=options.from_order_id,
                from_version=options.from_version,
                event_types=list(options.event_types) if options.event_types is not None else None,
                limit=limit + 1,
            )
        )

    events = await aio.run_blocking(store, page)
    following = events[limit].order_id if len(events) > limit else None
    body = b'{"results":[' + b",".join([e.data for e in events[:limit]]) + b'],"next":' + orjson.dumps(following) + b"}"
    return Response(body, media_type=JSON)


@accepts(
    answer="the event",
    errors={400: "order-id is not a number", 404: "no such event in that stream"},
    response=StoredEvent,
)
async def event_by_order_id(request: Request, query: dict[str, Any]) -> Response:
    """The event at an order-id, if it belongs to the stream (or the stream is __all__)."""
    store = _store(request)
    stream = request.path_params["stream"]
    order_id = parse_integer(request.path_params["order_id"], "order-id", text=True, where="path segment")
    event = await aio.run_blocking(store, store.get_by_order_id, order_id)
    if event is None or not read_holds(stream, event.stream_name) or not await _readable(store, stream, event):
        raise NotFound(f"no event with order-id {order_id} in stream {stream!r}")
    return Response(event.data, media_type=JSON)


async def _readable(store: EventStore, stream: str, event: RecordedEvent) -> bool:
    """Whether a read of `stream` returns `event`: a stream's own read hides what its metadata
    expires, truncates or deletes (`__all__`, a category and a wildcard show it until a scavenge)."""
    if not is_one_stream(stream):
        return True
    from_version, from_time = await aio.run_blocking(store, store.read_bounds, stream, None, None)
    return within_bounds(event.stream_version, event.event_time, from_version, from_time)


@accepts(answer="the event", errors={404: "no stored event has that id"}, response=StoredEvent)
async def event_by_id(request: Request, query: dict[str, Any]) -> Response:
    """The stored event with an id (what a caused-by names)."""
    store = _store(request)
    event_id = request.path_params["event_id"]
    event = await aio.run_blocking(store, store.get_event, event_id)
    if event is None:
        raise NotFound(f"no event with id {event_id!r}")
    return Response(event.data, media_type=JSON)


@accepts(
    Param(
        "hard",
        "boolean",
        "A hard delete: a tombstone, and the stream can never be written again (default: a soft delete, "
        "after which writing to the stream continues its version numbering).",
    ),
    answer='{"correct": true, "deleted-events": n} (n: the stream\'s version when deleted)',
    errors={400: "an internal stream", 404: "no such stream", 410: "the stream was hard deleted already"},
    response=Deleted,
    path=CLIENT_STREAM_PATH,
)
async def delete_stream(request: Request, query: dict[str, Any]) -> Response:
    """Delete a stream (soft by default, hard with hard=true): it reads as gone at once, a scavenge
    removes its events; recorded in __metadata__ and, as stream-deleted, in __config__."""
    store = _store(request)
    hard = bool(query["hard"])
    removed = await aio.run_blocking(store, lambda: store.delete_stream(request.path_params["stream"], hard=hard))
    return json_response({"correct": True, "deleted-events": removed})


def api_routes() -> list[BaseRoute]:
    # Stream names may hold "/" (and any other printable character): sent percent-encoded, they
    # arrive decoded, so the stream is the whole rest of the path (`:path`), not one segment.
    return [
        Route("/api/ping", ping, methods=["GET"]),
        Route("/api/streams", streams, methods=["GET"]),
        Route("/api/categories", categories, methods=["GET"]),
        Route("/api/event", post_event, methods=["POST"]),
        Route("/api/read-matching", read_matching, methods=["POST"]),
        Route("/api/stream-contents/{stream:path}", stream_contents, methods=["GET"]),
        Route("/api/event/{stream:path}/{order_id}", event_by_order_id, methods=["GET"]),
        Route("/api/event-id/{event_id}", event_by_id, methods=["GET"]),
        Route("/api/stream/{stream:path}", delete_stream, methods=["DELETE"]),
        *lifetime_routes(),
    ]
