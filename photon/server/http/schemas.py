"""The JSON the HTTP API takes and answers, as msgspec types: the OpenAPI description's schemas.

The request options and envelopes are the core's request model (`photon.core.requests`); this
module adds what only the HTTP API shows: events as a client sends them and as the store keeps
them, pages, and each route's answer. Routes do not decode or encode through these types
(events go out as the stored bytes): they describe, and `openapi.py` turns them into schemas
with `msgspec.json.schema_components`.

A name (stream, event type, tag, group, consumer) is 1 to 256 characters that Python's
`str.isprintable` accepts; JSON Schema's regular expressions cannot say "printable", so such
strings carry ``format: printable`` (a format validators skip and generators may honour).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from msgspec import UNSET, Meta, Struct, UnsetType, field

from photon.core.events import MAX_ID_LENGTH, MAX_NAME_LENGTH, MAX_TAGS
from photon.core.json_input import INT_MAX, INT_MIN
from photon.core.requests import MAX_INT64, ExpectedVersion

PRINTABLE: Final = {"format": "printable"}

Name = Annotated[str, Meta(min_length=1, max_length=MAX_NAME_LENGTH, extra_json_schema=PRINTABLE)]
ClientStream = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=r"^(?!__)(?!\.\.?$)[^*]*$",
        description="A client stream: printable, not starting with '__' (internal), without '*', not '.' or '..'.",
        extra_json_schema=PRINTABLE,
    ),
]
OrderId = Annotated[int, Meta(ge=1, le=MAX_INT64, description="The event's position in __all__.")]
Count = Annotated[int, Meta(ge=0, le=MAX_INT64)]
Millis = Annotated[int, Meta(ge=0, le=MAX_INT64, description="Epoch milliseconds.")]
Integer64 = Annotated[int, Meta(ge=-MAX_INT64 - 1, le=MAX_INT64)]
Tags = Annotated[list[Name], Meta(max_length=MAX_TAGS)]
EventId = Annotated[str, Meta(min_length=1, max_length=MAX_ID_LENGTH)]


# -- events ------------------------------------------------------------------------------------


class NewEvent(Struct, kw_only=True, forbid_unknown_fields=True):
    """An event as a client sends it; the store fills in id and event-time when left out."""

    stream_name: ClientStream = field(name="stream-name")
    event_type: Name = field(name="event-type")
    payload: dict[str, Any]
    id: EventId | None = None
    event_time: Millis | None = field(default=None, name="event-time")
    service_id: str | None = field(default=None, name="service-id")
    caused_by: str | None = field(default=None, name="caused-by")
    caused_by_relation: str | None = field(default=None, name="caused-by-relation")
    schema: str | Integer64 | None = None
    tags: Tags | None = None


class StoredEvent(Struct, kw_only=True):
    """An event as the store keeps it, with its order-id (position in __all__) and stream-version."""

    stream_name: str = field(name="stream-name")
    event_type: str = field(name="event-type")
    payload: dict[str, Any]
    id: str
    event_time: int = field(name="event-time")
    order_id: OrderId = field(name="order-id")
    stream_version: Annotated[int, Meta(ge=1)] = field(name="stream-version")
    service_id: str | UnsetType | None = field(default=UNSET, name="service-id")
    caused_by: str | UnsetType | None = field(default=UNSET, name="caused-by")
    caused_by_relation: str | UnsetType | None = field(default=UNSET, name="caused-by-relation")
    schema: str | int | UnsetType | None = UNSET
    tags: list[str] | UnsetType | None = UNSET


class CaughtUp(Struct, forbid_unknown_fields=True):
    """A replay's marker line: every event up to this order-id has been sent; what follows is live."""

    caught_up: Count = field(name="caught-up")


class FellBehind(Struct, forbid_unknown_fields=True):
    """A replay's marker line: the client read too slowly; events come from the store again."""

    fell_behind: Count = field(name="fell-behind")


ReplayLine: Final = (StoredEvent, CaughtUp, FellBehind)
"""One line of a replay: an event or a marker."""


class DeliveryLine(Struct):
    """One line of a consumer group member's stream."""

    attempt: Annotated[int, Meta(ge=1)]
    event: StoredEvent


class Joined(Struct):
    """The first line of a consumer group member's stream."""

    group: str
    member: str


# -- pages and answers ---------------------------------------------------------------------------


class EventPage(Struct):
    """One page of events; `next` is the order-id to pass as `from` for the next page."""

    results: list[StoredEvent]
    next: OrderId | None


class MatchingPage(Struct):
    """Events matching a query; `next` is the `after` of the next page, `head` the last order-id."""

    results: list[StoredEvent]
    next: OrderId | None
    head: Count


class StreamInfo(Struct):
    stream_name: str = field(name="stream-name")
    total_events: Count = field(name="total-events")


class Streams(Struct):
    """The streams holding events; `next` (with paging parameters) is the `after` of the next page."""

    streams: list[StreamInfo]
    next: str | UnsetType | None = UNSET


class Categories(Struct):
    categories: list[str]
    next: str | None


class Ping(Struct):
    auth: Literal["ok"]


class Token(Struct):
    token: str
    expires_in: Annotated[int, Meta(ge=1)] = field(name="expires-in")


class Done(Struct):
    correct: Literal[True]


class Deleted(Struct):
    correct: Literal[True]
    deleted_events: Count = field(name="deleted-events")


class Uploaded(Struct):
    correct: Literal[True]
    stream_name: str = field(name="stream-name")
    events: Count


class Live(Struct):
    status: Literal["live"]


class Ready(Struct):
    status: Literal["ready"]


class NotReady(Struct):
    status: Literal["not ready"]
    reasons: list[str]


class ServerInfo(Struct):
    version: str
    backend: str
    db_backend: str | None = field(name="db-backend")
    started_at: Millis = field(name="started-at")
    uptime_seconds: float = field(name="uptime-seconds")
    last_order_id: Count = field(name="last-order-id")
    now: Millis
    events_appended: Count = field(name="events-appended")
    appends: Count
    events_replayed: Count = field(name="events-replayed")
    subscribers: Count
    tcp_connections: Count = field(name="tcp-connections")
    settings: dict[str, Any]


class ConsumerPosition(Struct):
    consumer: str
    stream: str
    acked: Count


class ConsumerState(Struct):
    consumer: str
    stream: str
    acked: Count
    behind: int


class Consumers(Struct):
    subscriptions: list[ConsumerState]


class StreamMetadataAnswer(Struct):
    stream_name: str = field(name="stream-name")
    metadata: dict[str, Any]


class ScavengeReport(Struct):
    streams: Count
    removed_events: Count = field(name="removed-events")
    reclaim_steps: Count = field(name="reclaim-steps")
    seconds: float


class Redacted(Struct):
    redacted_events: Count = field(name="redacted-events")


class GroupOutcome(Struct):
    done: Count
    unknown: list[int]


class Replayed(Struct):
    replayed: Count


class ProjectionCreated(Struct):
    correct: Literal[True]
    projection: dict[str, Any]


class ProjectionKeys(Struct):
    projection_keys: list[str] = field(name="projection-keys")


class StreamSchemas(Struct):
    stream_name: str = field(name="stream-name")
    schemas: dict[str, Any]


GroupName = Annotated[
    str, Meta(min_length=1, max_length=200, pattern=r"^(?!\.\.?$)[^/*]*$", extra_json_schema=PRINTABLE)
]
Names = Annotated[list[Name], Meta(min_length=1)]
Regex = Annotated[str, Meta(min_length=1, max_length=1000, extra_json_schema={"format": "regex"})]
Category = Annotated[
    str, Meta(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"^[^-]*$", extra_json_schema=PRINTABLE)
]


class EventFilterBody(Struct, forbid_unknown_fields=True):
    """Which events of `__all__` or a category a group delivers (all conditions must hold); a
    group on one stream may filter by event type only. A list of names may be one name."""

    stream_prefix: Names | Name | None = field(default=None, name="stream-prefix")
    event_type_prefix: Names | Name | None = field(default=None, name="event-type-prefix")
    stream_regex: Regex | None = field(default=None, name="stream-regex")
    event_type_regex: Regex | None = field(default=None, name="event-type-regex")
    category: Annotated[list[Category], Meta(min_length=1)] | Category | None = None
    event_types: Names | Name | None = field(default=None, name="event-types")


class GroupChanges(Struct, forbid_unknown_fields=True):
    """A consumer group's settings (each optional: the defaults, or the present ones on a change)."""

    stream: Name | UnsetType = UNSET
    filter: EventFilterBody | UnsetType | None = UNSET
    strategy: Literal["round-robin", "pinned"] | UnsetType = UNSET
    max_in_flight: Annotated[int, Meta(ge=1, le=100_000)] | UnsetType = field(default=UNSET, name="max-in-flight")
    ack_timeout_ms: Annotated[int, Meta(ge=10, le=24 * 3600 * 1000)] | UnsetType = field(
        default=UNSET, name="ack-timeout-ms"
    )
    max_retries: Annotated[int, Meta(ge=0, le=1_000_000)] | UnsetType = field(default=UNSET, name="max-retries")
    serial: bool | UnsetType = UNSET


class GroupDefinition(GroupChanges, kw_only=True, forbid_unknown_fields=True):
    """A new consumer group: its name, what it reads (a stream, __all__ or __category__:<name>), where it
    starts (begin, end or an order-id) and how it hands events out."""

    group_name: GroupName = field(name="group-name")
    start: Literal["begin", "end"] | OrderId | UnsetType = UNSET


class GroupMember(Struct):
    member: str
    in_flight: Count = field(name="in-flight")
    max_in_flight: Count = field(name="max-in-flight")
    joined: Millis


class GroupDescription(Struct, kw_only=True):
    """A consumer group: its definition, position, members and counters."""

    group_name: str = field(name="group-name")
    stream: str
    filter: dict[str, Any] | UnsetType = UNSET
    start: Count
    strategy: Literal["round-robin", "pinned"]
    max_in_flight: Count = field(name="max-in-flight")
    ack_timeout_ms: Count = field(name="ack-timeout-ms")
    max_retries: Count = field(name="max-retries")
    serial: bool
    checkpoint: Count
    read_position: Count = field(name="read-position")
    waiting: Count
    in_flight: Count = field(name="in-flight")
    acked_above_checkpoint: Count = field(name="acked-above-checkpoint")
    replaying_parked: Count = field(name="replaying-parked")
    parked_stream: str = field(name="parked-stream")
    members: list[GroupMember]
    delivered: Count
    redelivered: Count
    acked: Count
    skipped: Count
    parked: Count
    retried: Count


class Groups(Struct):
    groups: list[GroupDescription]


def stream_metadata_body() -> dict[str, Any]:
    """A stream's metadata as a client sets it (JSON Schema: user keys are free)."""
    limit = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_INT64}, {"type": "null"}]}
    return {
        "type": "object",
        "description": "max-age (seconds), max-count and truncate-before (each 1 or more, or null to clear it), "
        "and any other keys (user metadata, at most 64 KiB); tombstone is set by a hard delete only.",
        "properties": {"max-age": limit, "max-count": limit, "truncate-before": limit},
        "additionalProperties": {"$ref": "#/components/schemas/" + JSON_VALUE},
        "propertyNames": {"minLength": 1, "maxLength": 256, "not": {"const": "tombstone"}},
    }


# -- request bodies the core's model does not type -------------------------------------------------


class StreamRedaction(Struct, forbid_unknown_fields=True):
    """Redact every event of a stream."""

    stream_name: ClientStream = field(name="stream-name")
    reason: Annotated[str, Meta(max_length=1000)] | None = None


class EventsRedaction(Struct, forbid_unknown_fields=True):
    """Redact chosen events, by id."""

    ids: Annotated[list[str], Meta(min_length=1)]
    reason: Annotated[str, Meta(max_length=1000)] | None = None


Redaction: Final = (StreamRedaction, EventsRedaction)
"""Which events to redact: a stream's or chosen ones, not both."""

ListItem = Annotated[
    str, Meta(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"[^\s,]", extra_json_schema=PRINTABLE)
]
"""One item of a list query parameter (items are split at commas and trimmed: one must be left)."""
CategoryItem = Annotated[
    str, Meta(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"^[^-]*[^\s,-][^-]*$", extra_json_schema=PRINTABLE)
]
ConsumerName = Annotated[str, Meta(min_length=1, max_length=200, extra_json_schema=PRINTABLE)]
MemberId = Annotated[str, Meta(min_length=1, max_length=200, extra_json_schema=PRINTABLE)]

QUERY_TYPES: Final[dict[str, Any]] = {
    "expected-version": ExpectedVersion,
    "member": MemberId,
    "stream-regex": Regex,
    "event-type-regex": Regex,
}
"""Query parameters whose type says more than their kind (integer, string, list, boolean)."""
LIST_ITEM_TYPES: Final[dict[str, Any]] = {"category": CategoryItem}
"""Items of list parameters that are not plain names."""
PATH_TYPES: Final[dict[str, dict[str, Any]]] = {
    "/api/subscription/": {"name": ConsumerName},
    "/api/group/": {"name": GroupName},
}
"""Path parameters narrower than a name, by the start of the route's path."""
CLIENT_STREAM_PATH: Final = {"stream": ClientStream}
"""The path parameter of routes that write a stream: a client stream, not an internal one."""


class GroupReset(Struct, forbid_unknown_fields=True):
    from_: OrderId = field(name="from")


class GroupAck(Struct, forbid_unknown_fields=True):
    order_ids: Annotated[list[OrderId], Meta(min_length=1)] = field(name="order-ids")


class GroupNack(Struct, forbid_unknown_fields=True):
    order_ids: Annotated[list[OrderId], Meta(min_length=1)] = field(name="order-ids")
    action: Literal["retry", "park", "skip"] = "retry"
    reason: Annotated[str, Meta(max_length=2000)] = ""


JSON_VALUE: Final = "JsonValue"
"""The component name of `json_value()`."""


def json_value(ref: str) -> dict[str, Any]:
    """Any JSON value whose integers are within 64 bits (-2^63 to 2^64-1): a larger one is refused, as it
    would not be stored exactly. `ref` is where this schema itself is (it is recursive)."""
    return {
        "description": "Any JSON value; integers from -2^63 to 2^64-1 (send larger numbers as strings).",
        "anyOf": [
            {"type": ["string", "boolean", "null"]},
            {"type": "number", "not": {"type": "integer"}},
            {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX},
            {"type": "array", "items": {"$ref": ref}},
            {"type": "object", "additionalProperties": {"$ref": ref}},
        ],
    }


def upload_form() -> dict[str, Any]:
    """The multipart form of a stream upload (JSON Schema: no msgspec type for a file)."""
    return {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "The stream file (NDJSON)."},
            "name": {"type": "string", "description": "The name to give the stream."},
        },
    }


def ndjson_lines() -> dict[str, Any]:
    """An NDJSON body, described as text."""
    return {"type": "string", "description": "JSON lines: one event per line."}
