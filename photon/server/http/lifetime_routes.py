"""Routes for streams over their lifetime: metadata, scavenging and redaction (see docs/lifetime.md)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from photon.core import aio
from photon.core.store import EventStore
from photon.server.http.errors import RequestError, json_response
from photon.server.http.limits import body_limit, read_body
from photon.server.http.params import accepts
from photon.server.http.schemas import (
    CLIENT_STREAM_PATH,
    Redacted,
    Redaction,
    ScavengeReport,
    stream_metadata_body,
)
from photon.server.http.schemas import (
    StreamMetadataAnswer as MetadataAnswer,
)


def _store(request: Request) -> EventStore:
    store: EventStore = request.app.state.store
    return store


async def _json_body(request: Request) -> Any:
    body = await read_body(request, body_limit(request))
    if not body.strip():
        raise RequestError("empty request body: expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"malformed JSON: {exc}") from None


@accepts(
    answer='{"stream-name": str, "metadata": {...}}',
    errors={400: "an internal stream"},
    response=MetadataAnswer,
    path=CLIENT_STREAM_PATH,
)
async def get_metadata(request: Request, query: dict[str, Any]) -> Response:
    """A stream's metadata: max-age (seconds), max-count, truncate-before, tombstone, and user keys ({} when none)."""
    stream = request.path_params["stream"]
    metadata = _store(request).stream_metadata(stream)
    return json_response({"stream-name": stream, "metadata": metadata.to_json()})


@accepts(
    body='{"max-age": seconds, "max-count": n, "truncate-before": version, ...user keys} (replaces the whole metadata)',
    answer='{"stream-name": str, "metadata": {...}}',
    errors={400: "a bad value, an internal stream", 410: "a hard-deleted stream"},
    request=stream_metadata_body(),
    response=MetadataAnswer,
    path=CLIENT_STREAM_PATH,
)
async def put_metadata(request: Request, query: dict[str, Any]) -> Response:
    """Set a stream's metadata; reads of the stream follow it at once (kept in __metadata__)."""
    store = _store(request)
    stream = request.path_params["stream"]
    doc = await _json_body(request)
    metadata = await aio.run_blocking(store, store.set_stream_metadata, stream, doc)
    return json_response({"stream-name": stream, "metadata": metadata.to_json()})


@accepts(answer='{"streams": n, "removed-events": n, "reclaim-steps": n, "seconds": s}', response=ScavengeReport)
async def scavenge(request: Request, query: dict[str, Any]) -> Response:
    """Remove deleted, expired and truncated events, online, and give the space back; answers when done."""
    store = _store(request)
    report = await aio.run_blocking(store, store.scavenge)
    return json_response(report.to_json())


@accepts(
    body='{"stream-name": s} or {"ids": [event ids]}, with an optional "reason"',
    answer='{"redacted-events": n}',
    errors={400: "neither or both of stream-name and ids, an internal stream", 404: "no such stream or event"},
    request=Redaction,
    response=Redacted,
)
async def redact(request: Request, query: dict[str, Any]) -> Response:
    """Replace the payload of a stream's events, or of chosen events, with a redaction marker (erasure)."""
    store = _store(request)
    doc = await _json_body(request)
    if type(doc) is not dict:
        raise RequestError('the body must be {"stream-name": ...} or {"ids": [...]}, with an optional "reason"')
    unknown = sorted(doc.keys() - {"stream-name", "ids", "reason"})
    if unknown:
        raise RequestError(f"unknown field {unknown[0]!r}; the body has the fields stream-name, ids and reason")
    stream, ids, reason = doc.get("stream-name"), doc.get("ids"), doc.get("reason")
    if ids is not None and type(ids) is not list:
        raise RequestError("field 'ids' must be a list of event ids", field="ids")
    count = await aio.run_blocking(store, lambda: store.redact(stream=stream, event_ids=ids, reason=reason))
    return json_response({"redacted-events": count})


def lifetime_routes() -> list[BaseRoute]:
    return [
        Route("/api/stream-metadata/{stream:path}", get_metadata, methods=["GET"]),
        Route("/api/stream-metadata/{stream:path}", put_metadata, methods=["PUT"]),
        Route("/api/admin/scavenge", scavenge, methods=["POST"]),
        Route("/api/redact", redact, methods=["POST"]),
    ]
