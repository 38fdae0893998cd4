"""Photon's core /api routes: ping, streams, emit, stream contents, one event, delete a stream."""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import aio, json_input
from ..errors import NotFound, PhotonError
from ..events import ALL_STREAM, expected_version_field, parse_expected_version
from ..metrics import metrics_for
from ..store import EventStore
from .errors import JSON, RequestError, json_response
from .params import Param, accepts

MAX_PAGE = 1000
DEFAULT_PAGE = 50  # Photon's page size

EXPECTED_VERSION = Param(
    "expected-version",
    "string",
    "Optimistic concurrency for the batch's one stream: a version number (0 = must not exist), "
    "'any' (default) or 'no-stream'. May also be given in the body wrapper.",
)


def _store(request: Request) -> EventStore:
    store: EventStore = request.app.state.store
    return store


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(
            f"request body of {declared} bytes is over the limit of {limit} bytes (rest.body.max.bytes)", 413
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"request body is over the limit of {limit} bytes (rest.body.max.bytes)", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise RequestError("empty request body: expected JSON")
    try:
        return json_input.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"malformed JSON: {exc}") from None


@accepts(answer='{"auth": "ok"}', auth=False)
async def ping(request: Request, query: dict[str, Any]) -> Response:
    """Check that the server answers (no token needed)."""
    return Response(b'{"auth":"ok"}', media_type=JSON)


@accepts(answer='{"streams": [{"stream-name": str, "total-events": int}]}')
async def streams(request: Request, query: dict[str, Any]) -> Response:
    """Every stream holding events, with its number of events."""
    found = await aio.run_blocking(_store(request), _store(request).streams)
    return json_response({"streams": [{"stream-name": s.stream_name, "total-events": s.total_events} for s in found]})


@accepts(
    EXPECTED_VERSION,
    body='an event object, a list of events, or {"events": [...], "expected-version": ...}',
    answer="the stored event (an object) or the stored events (a list), with order-id and stream-version",
    errors={
        400: "malformed JSON, a missing or mistyped field, an internal stream name",
        409: "expected-version does not match (answer has current-version)",
        413: "an event over payload.max.bytes or a body over rest.body.max.bytes",
    },
)
async def post_event(request: Request, query: dict[str, Any]) -> Response:
    """Store one event or a batch of events atomically (all or nothing)."""
    started = time.perf_counter()
    store = _store(request)
    metrics = metrics_for(store)
    try:
        doc = parse_json(await read_body(request, request.app.state.config["rest.body.max.bytes"]))
        expected = query["expected-version"]
        if type(doc) is dict and "events" in doc and "stream-name" not in doc:
            extra = sorted(doc.keys() - {"events", "expected-version"})
            if extra:
                raise RequestError(
                    f"unknown field {extra[0]!r} in the body wrapper; it has the fields events and expected-version"
                )
            if "expected-version" in doc:
                if expected is not None:
                    raise RequestError("expected-version given both in the body and as a query parameter")
                expected = expected_version_field(doc)
            events = doc["events"]
            if type(events) is not list and type(events) is not dict:
                raise RequestError("field 'events' must be a list of events or one event", field="events")
        elif type(doc) is dict or type(doc) is list:
            events = doc
        else:
            raise RequestError(
                'the body must be an event object, a list of events or {"events": [...], "expected-version": ...}'
            )
        version = parse_expected_version(expected)
        stored = await aio.append(store, events, version)
    except (PhotonError, RequestError):
        metrics.http.rejected.inc()
        raise
    metrics.http.stored.inc()
    metrics.http.events.inc(len(stored))
    metrics.http.seconds.observe(time.perf_counter() - started)
    if type(events) is list:
        return Response(b"[" + b",".join([e.data for e in stored]) + b"]", media_type=JSON)
    return Response(stored[0].data, media_type=JSON)


async def _require_stream(store: EventStore, stream: str) -> None:
    if stream != ALL_STREAM and await aio.run_blocking(store, store.stream_version, stream) == 0:
        raise NotFound(f"stream {stream!r} does not exist")


@accepts(
    Param("from", "integer", "First order-id (inclusive).", minimum=1),
    Param("from-version", "integer", "First stream-version (inclusive; not for __all__).", minimum=1),
    Param("limit", "integer", f"Most events in the page (default {DEFAULT_PAGE}).", minimum=1, maximum=MAX_PAGE),
    answer='{"results": [events], "next": <order-id to pass as from for the next page, or null>}',
    errors={404: "no such stream"},
)
async def stream_contents(request: Request, query: dict[str, Any]) -> Response:
    """One page of a stream's events (or __all__'s), in order."""
    store = _store(request)
    stream = request.path_params["stream"]
    await _require_stream(store, stream)
    limit = query["limit"] or DEFAULT_PAGE

    def page() -> list[Any]:
        return list(
            store.read(stream, from_order_id=query["from"], from_version=query["from-version"], limit=limit + 1)
        )

    events = await aio.run_blocking(store, page)
    following = events[limit].order_id if len(events) > limit else None
    body = b'{"results":[' + b",".join([e.data for e in events[:limit]]) + b'],"next":' + orjson.dumps(following) + b"}"
    return Response(body, media_type=JSON)


@accepts(answer="the event", errors={400: "order-id is not a number", 404: "no such event in that stream"})
async def event_by_order_id(request: Request, query: dict[str, Any]) -> Response:
    """The event at an order-id, if it belongs to the stream (or the stream is __all__)."""
    store = _store(request)
    stream = request.path_params["stream"]
    text = request.path_params["order_id"]
    if not text.isdigit():
        raise RequestError(f"order-id must be a positive whole number, got {text!r}", field="order-id")
    event = await aio.run_blocking(store, store.get_by_order_id, int(text))
    if event is None or (stream != ALL_STREAM and event.stream_name != stream):
        raise NotFound(f"no event with order-id {text} in stream {stream!r}")
    return Response(event.data, media_type=JSON)


@accepts(
    answer='{"correct": true, "deleted-events": n}',
    errors={400: "an internal stream", 404: "no such stream"},
)
async def delete_stream(request: Request, query: dict[str, Any]) -> Response:
    """Delete a stream's events (admin); the deletion is recorded in __config__."""
    store = _store(request)
    removed = await aio.run_blocking(store, store.delete_stream, request.path_params["stream"])
    return json_response({"correct": True, "deleted-events": removed})


def api_routes() -> list[BaseRoute]:
    return [
        Route("/api/ping", ping, methods=["GET"]),
        Route("/api/streams", streams, methods=["GET"]),
        Route("/api/event", post_event, methods=["POST"]),
        Route("/api/stream-contents/{stream}", stream_contents, methods=["GET"]),
        Route("/api/event/{stream}/{order_id}", event_by_order_id, methods=["GET"]),
        Route("/api/stream/{stream}", delete_stream, methods=["DELETE"]),
    ]
