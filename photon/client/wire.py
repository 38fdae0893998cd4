"""What the blocking and the asyncio clients share: the HTTP API's paths and parameters, the token and
when to renew it, the lines of a streaming answer, the answers as typed values, and the errors as
Photon's own types. Nothing here does I/O: each client only sends and receives (`photon.client.http`
with httpx's blocking client, `photon.client.http_async` with its asyncio one)."""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import httpx
import orjson

from photon.core import append_request
from photon.core.backend import StreamInfo
from photon.core.errors import (
    AppendConditionFailed,
    Conflict,
    NotAuthorized,
    NotFound,
    PhotonError,
    ServerUnreachable,
    StoreClosed,
    StreamDeleted,
    ValidationError,
    VersionConflict,
    event_index,
)
from photon.core.events import ID, RecordedEvent, new_event_id
from photon.core.filters import EventFilter
from photon.core.requests import PageOptions, ReplayOptions, from_json, to_json
from photon.core.subscriptions import CaughtUp

ReplayItem = RecordedEvent | CaughtUp

DEFAULT_URL = "http://localhost:3000"
RETRY_PAUSE = 0.2
"""Seconds before the first re-send of an emit that did not reach the server (doubled each time)."""


TOKEN_PATH = "/auth/token"
RENEWAL_ATTEMPTS = (False, True)
"""A request goes with the token held, then once more with a renewed one if refused with a 401
(the token expired, or the server restarted and forgot it)."""


class Session:
    """A client's login to the HTTP API: the credentials, the token they were given, and the
    headers that carry it. The clients fetch the token (`GET TOKEN_PATH` with `auth`) when
    `needs_token` says so and hand the answer to `take_token`."""

    def __init__(self, url: str, user: str, password: str) -> None:
        # httpx reads `localhost:3000` as the scheme `localhost` and says only that it is unsupported.
        scheme, _, rest = str(url).partition("://")
        if scheme.lower() not in ("http", "https") or not rest.strip("/"):
            raise ValidationError(
                f"the server's URL must be http:// or https:// and a host (http://localhost:3000), got {url!r}", "url"
            )
        self.url = url.rstrip("/")
        self.auth = (user, password)
        self.token: str | None = None

    def needs_token(self, renew: bool) -> bool:
        return self.token is None or renew

    def take_token(self, response: httpx.Response) -> str:
        """The token from `/auth/token`'s answer (a refusal raised as `NotAuthorized`)."""
        if response.status_code in (401, 404) and urlsplit(self.url).path.endswith("/api"):
            # The server guards every /api path, /api/auth/token too: the answer would blame the
            # credentials for a URL that names the API rather than the server.
            raise NotAuthorized(
                f"no token from {self.url}{TOKEN_PATH} (HTTP {response.status_code}): the URL ends in /api; "
                "give the server's own URL (http://localhost:3000), the clients add /api"
            )
        raise_for(response)
        self.token = str(response.json()["token"])
        return self.token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def unreachable(self, exc: httpx.TransportError) -> ServerUnreachable:
        """A failure to reach the server (refused, unknown host, timeout, cut off) as Photon's error."""
        return ServerUnreachable(f"cannot reach the Photon server at {self.url}: {exc}")


def renew_and_resend(response: httpx.Response, renewed: bool) -> bool:
    """Whether an answer calls for the same request again with a new token."""
    return response.status_code == 401 and not renewed


def tls(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    """httpx's `verify` for the clients' option: a string is a CA file (a self-signed server's certificate).

    Raises `ValidationError` (field ``verify``) naming the file when it cannot be read as one."""
    if not isinstance(verify, str):
        return verify
    try:
        return ssl.create_default_context(cafile=verify)
    except OSError as exc:  # a missing or unreadable file, or one holding no certificate (ssl.SSLError)
        reason = exc.strerror or str(exc)
        message = f"cannot use {verify!r} as the CA file to verify the server: {reason}"
        raise ValidationError(message, "verify") from None


def streaming_timeout(timeout: httpx.Timeout) -> httpx.Timeout:
    """A streaming answer's timeout: connecting is bounded, waiting for the next line is not
    (a live replay or a group member may wait for events indefinitely)."""
    return httpx.Timeout(timeout.connect, read=None)


def emit_retry_pause(attempt: int, retries: int) -> float | None:
    """Seconds to wait before re-sending an emit that did not reach the server, None to give up.

    Safe to send again: every event carries its id (`with_ids`), so a request that reached the
    server before the connection failed is answered with the events it stored, not stored twice.
    """
    return None if attempt >= retries else RETRY_PAUSE * 2**attempt


class Page(NamedTuple):
    """One page of a stream's events; `next` is the order-id to read the next page from (None: the end)."""

    events: list[RecordedEvent]
    next: int | None


class ConsumerPosition(NamedTuple):
    """A durable consumer's stream and its last acknowledged order-id (0: nothing acknowledged yet)."""

    name: str
    stream: str | None
    order_id: int


def quote_segment(part: str) -> str:
    """One path segment, every reserved character percent-encoded (a stream name may hold `/?#%`).

    A segment of only dots is encoded too: URL normalisation would otherwise remove it.
    """
    return quote(part, safe="") if part.strip(".") else part.replace(".", "%2E")


def with_ids(events: Any) -> Any:
    """The events, each with an `id` (a new UUIDv7 where the caller gave none).

    The id is given before the first attempt, so that re-sending the same events after a time-out
    or a cut connection stores them once: the server answers a re-sent id with the stored event.
    """
    if isinstance(events, Mapping):
        return events if ID in events else {**events, ID: new_event_id()}
    if isinstance(events, Sequence) and not isinstance(events, (str, bytes)):
        return [with_ids(e) for e in events]
    return events


def emit_body(
    events: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    expected_version: Any,
    expected_versions: Mapping[str, Any] | None = None,
    condition: Any = None,
) -> bytes:
    """An emit request's body as JSON (`append_request.emit_body` decides its shape)."""
    body: Any = events if isinstance(events, Mapping) else list(events)
    return orjson.dumps(append_request.emit_body(body, expected_version, expected_versions, condition))


def as_event(item: Any) -> RecordedEvent:
    """A stored event as `RecordedEvent`, whatever form a transport gave it in."""
    if isinstance(item, RecordedEvent):
        return item
    if isinstance(item, (bytes, bytearray)):
        return RecordedEvent.from_json(bytes(item))
    return RecordedEvent.from_dict(item)


def stored_events(answer: Any) -> RecordedEvent | list[RecordedEvent]:
    """An emit's answer: one event for one event sent, a list for a list."""
    if isinstance(answer, list):
        return [as_event(e) for e in answer]
    return as_event(answer)


def as_item(item: Any) -> ReplayItem:
    return item if isinstance(item, CaughtUp) else as_event(item)


def emit_answer(content: bytes) -> RecordedEvent | list[RecordedEvent]:
    return stored_events(orjson.loads(content))


def page_answer(content: bytes) -> Page:
    doc = orjson.loads(content)
    return Page([RecordedEvent.from_dict(e) for e in doc["results"]], doc.get("next"))


def streams_answer(content: bytes) -> list[StreamInfo]:
    return [StreamInfo(s["stream-name"], s["total-events"]) for s in orjson.loads(content)["streams"]]


def position_answer(name: str, content: bytes) -> ConsumerPosition:
    doc = orjson.loads(content)
    return ConsumerPosition(doc.get("consumer", name), doc.get("stream"), int(doc.get("acked") or 0))


def replay_options(
    stream_type: str,
    from_: int | None,
    from_version: int | None,
    from_time: int | None,
    to: int | None,
    event_types: Sequence[str] | None,
    limit: int | None,
    filter: Mapping[str, Any] | None = None,
) -> ReplayOptions:
    """A replay's options, checked as the server checks them (`ValidationError` naming a bad one).
    `filter` narrows a replay of `__all__` or of a category, with the keys of a consumer group's
    filter (`stream-prefix`, `event-type-prefix`, `stream-regex`, `event-type-regex`, `category`)."""
    return from_json(
        ReplayOptions,
        {
            "stream-type": stream_type,
            "from": from_,
            "from-version": from_version,
            "from-time": from_time,
            "to": to,
            "event-types": list(event_types) if event_types is not None else None,
            "limit": limit,
            **filter_params(filter, event_types),
        },
        what="the replay options",
    )


def filter_params(filter: Mapping[str, Any] | None, event_types: Sequence[str] | None = None) -> dict[str, Any]:
    """A filter's conditions by their wire names, checked as the core checks them (a string where a
    list is taken stands for a list of one)."""
    fields = EventFilter.from_mapping(filter).to_payload()
    if "event-types" in fields and event_types is not None:
        raise ValidationError("event types are given twice: as event_types and in the filter", "event-types")
    return fields


def replay_params(
    stream_type: str,
    from_: int | None,
    from_version: int | None,
    from_time: int | None,
    to: int | None,
    event_types: Sequence[str] | None,
    limit: int | None,
    filter: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A replay's query parameters (`replay_options` by their wire names)."""
    return to_json(replay_options(stream_type, from_, from_version, from_time, to, event_types, limit, filter))


def subscription_params(
    stream: str | None,
    stream_type: str,
    event_types: Sequence[str] | None,
    limit: int | None,
    filter: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A durable subscription's query parameters (the filter checked as `filter_params` does)."""
    return {
        "stream": stream,
        "stream-type": stream_type,
        "event-types": event_types,
        "limit": limit,
        **filter_params(filter, event_types),
    }


def page_params(from_: int | None, from_version: int | None, limit: int | None) -> dict[str, Any]:
    """A page read's query parameters, checked as the server checks them."""
    options = from_json(PageOptions, {"from": from_, "from-version": from_version, "limit": limit}, what="a page read")
    return to_json(options)


def query(params: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters without the unset ones; lists comma-separated."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ",".join(value) if isinstance(value, (list, tuple, set, frozenset)) else value
    return out


def projection_template(name: str, reduction: str, language: str, fields: Mapping[str, Any]) -> bytes:
    template = {"projection-name": name, "language": language, "reduction": reduction}
    template.update({key.replace("_", "-"): value for key, value in fields.items()})
    return orjson.dumps(template)


CLIENT_CLOSED = "the client is closed: make a new one to go on"
"""`StoreClosed`'s message for a call of a closed HTTP client (httpx would raise a RuntimeError)."""


def raise_for(response: httpx.Response) -> None:
    """An error answer as Photon's own error type (the body has been read)."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
        message = body.get("error", response.text) if isinstance(body, dict) else response.text
    except ValueError:
        body, message = {}, response.text
    status = response.status_code
    if status == 401:
        raise NotAuthorized(message)
    if status == 409 and body.get("condition-failed"):
        raise AppendConditionFailed.from_fields(body, message)
    if status == 409 and "current-version" in body:
        raise VersionConflict(body["stream-name"], body["expected-version"], body["current-version"])
    if status == 409:
        raise Conflict(message)  # e.g. a consumer group of that name already exists
    if status == 404:
        raise NotFound(message)
    if status == 410 and "stream-name" in body:
        raise StreamDeleted(body["stream-name"])
    if status in (400, 413):
        raise ValidationError(message, body.get("field"), event_index(body))
    if status == 503:
        raise StoreClosed(message)
    raise PhotonError(f"HTTP {status}: {message}")


class Lines:
    """The lines of a streaming answer from its chunks as they come: `feed` each chunk, `end` at
    the end of the answer (a last line without its newline)."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        lines, self._rest = split_lines([chunk], self._rest)
        return lines

    def end(self) -> list[bytes]:
        rest, self._rest = self._rest, b""
        return [rest] if rest else []


def split_lines(chunks: Iterable[bytes], rest: bytes = b"") -> tuple[list[bytes], bytes]:
    """Complete lines of the chunks, and the unfinished rest to prepend to the next chunks."""
    lines: list[bytes] = []
    for chunk in chunks:
        if rest:
            chunk = rest + chunk
        parts = chunk.split(b"\n")
        rest = parts.pop()
        lines.extend(parts)
    return lines, rest


def line_item(line: bytes) -> ReplayItem | None:
    """One NDJSON replay line: an event, the caught-up marker, or None for a blank line (and for
    the fell-behind notice: the replay goes on from the store, in order, with nothing to do)."""
    if not line.strip() or line.startswith(b'{"fell-behind":'):
        return None
    if line.startswith(b'{"caught-up":'):
        return CaughtUp(orjson.loads(line)["caught-up"])
    return RecordedEvent.from_json(line)
