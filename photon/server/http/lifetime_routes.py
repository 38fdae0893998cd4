"""Routes for streams over their lifetime: metadata, scavenging and redaction (see docs/lifetime.md)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from photon.core.errors import ValidationError
from photon.core.stream_metadata import StreamMetadata
from photon.server.http.errors import RequestError
from photon.server.http.json_calls import answer, json_body, json_object
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


@accepts(
    answer='{"stream-name": str, "metadata": {...}}',
    errors={400: "an internal stream"},
    response=MetadataAnswer,
    path=CLIENT_STREAM_PATH,
)
async def get_metadata(request: Request, query: dict[str, Any]) -> Response:
    """A stream's metadata: max-age (seconds), max-count, truncate-before, tombstone, and user keys ({} when none)."""
    stream = request.path_params["stream"]
    return await answer(request, lambda store: store.stream_metadata(stream), lambda m: _metadata(stream, m))


@accepts(
    body='{"max-age": seconds, "max-count": n, "truncate-before": version, ...user keys} (replaces the whole metadata);'
    ' or {"metadata": {...}} as GET answers it',
    answer='{"stream-name": str, "metadata": {...}}',
    errors={400: "a bad value, an internal stream, a body naming another stream", 410: "a hard-deleted stream"},
    request=stream_metadata_body(),
    response=MetadataAnswer,
    path=CLIENT_STREAM_PATH,
)
async def put_metadata(request: Request, query: dict[str, Any]) -> Response:
    """Set a stream's metadata; reads of the stream follow it at once (kept in __metadata__)."""
    stream = request.path_params["stream"]
    doc = _unwrapped(stream, await json_body(request))
    return await answer(request, lambda store: store.set_stream_metadata(stream, doc), lambda m: _metadata(stream, m))


def _unwrapped(stream: str, doc: Any) -> Any:
    """The metadata in a body shaped as GET answers it (and as AMQP's `stream-metadata` takes it),
    `{"metadata": {...}}` with an optional `stream-name` naming this stream: a client that reads,
    changes and writes back would otherwise store its whole answer as one user key, `metadata`."""
    wrapper = type(doc) is dict and type(doc.get("metadata")) is dict and doc.keys() <= {"metadata", "stream-name"}
    if not wrapper:
        return doc
    named = doc.get("stream-name", stream)
    if named != stream:
        raise ValidationError(
            f"the body names stream {named!r} but the path names {stream!r}: metadata is set on the stream of the path",
            "stream-name",
        )
    return doc["metadata"]


@accepts(answer='{"streams": n, "removed-events": n, "reclaim-steps": n, "seconds": s}', response=ScavengeReport)
async def scavenge(request: Request, query: dict[str, Any]) -> Response:
    """Remove deleted, expired and truncated events, online, and give the space back; answers when done."""
    return await answer(request, lambda store: store.scavenge(), lambda report: report.to_json())


@accepts(
    body='{"stream-name": s} or {"ids": [event ids]}, with an optional "reason"',
    answer='{"redacted-events": n}',
    errors={400: "neither or both of stream-name and ids, an internal stream", 404: "no such stream or event"},
    request=Redaction,
    response=Redacted,
)
async def redact(request: Request, query: dict[str, Any]) -> Response:
    """Replace the payload of a stream's events, or of chosen events, with a redaction marker (erasure)."""
    doc = await json_object(
        request,
        'the body must be {"stream-name": ...} or {"ids": [...]}, with an optional "reason"',
        fields=("stream-name", "ids", "reason"),
    )
    stream, ids, reason = doc.get("stream-name"), doc.get("ids"), doc.get("reason")
    if ids is not None and type(ids) is not list:
        raise RequestError("field 'ids' must be a list of event ids", field="ids")
    return await answer(
        request,
        lambda store: store.redact(stream=stream, event_ids=ids, reason=reason),
        lambda n: {"redacted-events": n},
    )


def _metadata(stream: str, metadata: StreamMetadata) -> dict[str, Any]:
    return {"stream-name": stream, "metadata": metadata.to_json()}


def lifetime_routes() -> list[BaseRoute]:
    return [
        Route("/api/stream-metadata/{stream:path}", get_metadata, methods=["GET"]),
        Route("/api/stream-metadata/{stream:path}", put_metadata, methods=["PUT"]),
        Route("/api/admin/scavenge", scavenge, methods=["POST"]),
        Route("/api/redact", redact, methods=["POST"]),
    ]
