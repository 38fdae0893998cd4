"""How the service reads and answers the requests about streams over their lifetime (docs/amqp.md).

The message types are in `photon.wire.amqp_lifetime`, which the Python client shares:
`stream-metadata`, `delete-stream`, `scavenge`, `redact` and `read-matching` (the read a
conditional append is decided on), each answered once with a `done` reply holding what the HTTP
route answers. Only the shape of a body is checked here; what a stream name, a query or a reason
may be is the core's to decide (`photon.core.stream_admin`, `photon.core.redaction`,
`photon.core.append_request`), and its errors go back as replies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from photon.core.append_request import QueryItem, parse_after, parse_query
from photon.core.errors import ValidationError
from photon.core.requests import DEFAULT_PAGE, MAX_PAGE, ReadMatchingRequest, field_names, parse_integer
from photon.server.amqp.protocol import parse_body, parse_stream_request
from photon.wire.amqp import DELETE_STREAM, STREAM_METADATA, dumps
from photon.wire.amqp_lifetime import READ_MATCHING, REDACT, SCAVENGE

if TYPE_CHECKING:
    from photon.core.store import EventStore

REDACT_FIELDS: Final = frozenset({"stream-name", "ids", "reason"})


@dataclass(frozen=True)
class RedactRequest:
    stream: Any
    """As sent (the core checks it); None: by ids."""
    ids: list[Any] | None
    reason: Any


@dataclass(frozen=True)
class ReadMatching:
    query: tuple[QueryItem, ...]
    after: int
    limit: int


def _object(body: bytes, kind: str, allowed: frozenset[str] | tuple[str, ...], shape: str) -> dict[str, Any]:
    value = parse_body(body) if body.strip() else {}
    if not isinstance(value, dict):
        raise ValidationError(f"a {kind} request is a JSON object {shape}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValidationError(
            f"unknown field {unknown[0]!r} in a {kind} request; it has the fields {', '.join(sorted(allowed))}",
            unknown[0],
        )
    return value


def parse_scavenge(body: bytes) -> None:
    _object(body, SCAVENGE, frozenset(), "with no fields")


def parse_redact(body: bytes) -> RedactRequest:
    value = _object(body, REDACT, REDACT_FIELDS, '{"stream-name": ...} or {"ids": [...]}')
    ids = value.get("ids")
    if ids is not None and type(ids) is not list:
        raise ValidationError("field 'ids' must be a list of event ids", "ids")
    return RedactRequest(value.get("stream-name"), ids, value.get("reason"))


def parse_read_matching(body: bytes) -> ReadMatching:
    """The HTTP route's body (`ReadMatchingRequest`), read by the core's parsers with its bounds."""
    value = _object(body, READ_MATCHING, field_names(ReadMatchingRequest), '{"query": [...], "after": n}')
    return ReadMatching(
        parse_query(value.get("query", [])),
        parse_after(value.get("after")),
        parse_integer(value.get("limit", DEFAULT_PAGE), "limit", minimum=1, maximum=MAX_PAGE),
    )


def answer(store: EventStore, kind: str, body: bytes) -> bytes:
    """Carry out a request of `LIFETIME_CALLS` on the store; the `done` reply's body (as HTTP answers)."""
    return _ANSWERS[kind](store, body)


def _stream_request(store: EventStore, body: bytes, kind: str) -> bytes:
    request = parse_stream_request(body, kind)
    stream = request["stream-name"]
    if kind == DELETE_STREAM:
        removed = store.delete_stream(stream, hard=request.get("hard", False))
        return dumps({"correct": True, "deleted-events": removed})
    metadata = (
        store.set_stream_metadata(stream, request["metadata"])
        if "metadata" in request
        else store.stream_metadata(stream)
    )
    return dumps({"stream-name": stream, "metadata": metadata.to_json()})


def _scavenge(store: EventStore, body: bytes) -> bytes:
    parse_scavenge(body)
    return dumps(store.scavenge().to_json())


def _redact(store: EventStore, body: bytes) -> bytes:
    request = parse_redact(body)
    count = store.redact(stream=request.stream, event_ids=request.ids, reason=request.reason)
    return dumps({"redacted-events": count})


def _read_matching(store: EventStore, body: bytes) -> bytes:
    request = parse_read_matching(body)
    head = store.last_order_id()
    events = list(store.read_matching(request.query, after=request.after, limit=request.limit))
    following = events[-1].order_id if len(events) == request.limit else None
    return (
        b'{"results":['
        + b",".join([e.data for e in events])
        + b'],"next":'
        + orjson.dumps(following)
        + b',"head":%d}' % head
    )


_ANSWERS: Final[dict[str, Callable[[EventStore, bytes], bytes]]] = {
    STREAM_METADATA: lambda store, body: _stream_request(store, body, STREAM_METADATA),
    DELETE_STREAM: lambda store, body: _stream_request(store, body, DELETE_STREAM),
    SCAVENGE: _scavenge,
    REDACT: _redact,
    READ_MATCHING: _read_matching,
}
