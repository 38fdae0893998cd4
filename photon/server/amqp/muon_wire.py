"""The Muon wire format: Muon messages, the shared-channel frame, compression, keep-alives.

What the Muon clients (``muon-core`` for node, muon-java, muon-clojure) put on the wire:

- every AMQP body is the JSON of a *Muon message*: ``id``, ``created``, ``target_service``,
  ``origin_service``, ``protocol``, ``step``, ``content_type``, ``payload``, ``channel_op``
  (``normal`` or ``closed``), and optionally ``status``, ``provenance_id``, ``event_source``;
- a message's ``payload`` is the JSON of its content written as an array of byte values;
- a *shared channel* carries many logical channels over one transport channel: an outer
  message of protocol ``shared-channel`` whose payload is ``{"channelId", "message"}``,
  the inner message being the protocol's own (event, reactive-stream, rpc);
- the outer payload is zlib-deflated when its ``content_type`` is ``application/json+DEFLATE``;
- ``step: keep-alive`` messages keep an idle transport channel open.
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from photon.core.errors import ValidationError

JSON: Final = "application/json"
JSON_DEFLATE: Final = "application/json+DEFLATE"
SHARED_CHANNEL: Final = "shared-channel"
KEEP_ALIVE: Final = "keep-alive"
CHANNEL_SHUTDOWN: Final = "ChannelShutdown"
NORMAL: Final = "normal"
CLOSED: Final = "closed"

# AMQP headers of the transport (the only ones the node client's schema check accepts).
HANDSHAKE: Final = "handshake"
HANDSHAKE_INITIATED: Final = "initiated"
HANDSHAKE_ACCEPTED: Final = "accepted"
PROTOCOL: Final = "protocol"
LISTEN_QUEUE: Final = "server_listen_q"
REPLY_QUEUE: Final = "server_reply_q"
CONTENT_TYPE_HEADER: Final = "content_type"

COMPRESS_LEVEL: Final = 1
"""zlib level for outgoing frames: the byte-array JSON shrinks several times even at level 1."""

EVENT_SOURCE: Final = "photon"


def encode_payload(value: Any) -> list[int]:
    """Content as Muon carries it: the JSON of `value` as a list of byte values."""
    return list(orjson.dumps(value))


def payload_bytes(payload: Any) -> bytes:
    """The raw bytes of a Muon payload (a list of byte values; also a string or nothing)."""
    if payload is None:
        return b""
    if isinstance(payload, list):
        try:
            return bytes(payload)
        except (ValueError, TypeError):
            raise ValidationError("a Muon payload must be a list of byte values", "payload") from None
    if isinstance(payload, str):
        return payload.encode()
    if isinstance(payload, dict) and not payload:
        return b""  # muon-core writes an empty payload as {}
    raise ValidationError("a Muon payload must be a list of byte values", "payload")


def decode_payload(payload: Any) -> Any:
    """The content of a Muon payload, parsed as JSON (``{}`` when empty)."""
    raw = payload_bytes(payload)
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationError("a Muon payload is not valid JSON", "payload") from None


def message(
    content: Any,
    *,
    protocol: str,
    step: str,
    origin: str,
    target: str | None,
    channel_op: str = NORMAL,
    status: str | None = None,
    provenance_id: str | None = None,
    encoded: list[int] | None = None,
) -> dict[str, Any]:
    """A Muon message carrying `content` (or the already `encoded` payload)."""
    result: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "created": time.time_ns() // 1_000_000,
        "origin_service": origin,
        "protocol": protocol,
        "step": step,
        "content_type": JSON,
        "payload": encoded if encoded is not None else encode_payload(content),
        "channel_op": channel_op,
        "event_source": EVENT_SOURCE,
    }
    if target:
        result["target_service"] = target
    if status is not None:
        result["status"] = status
    if provenance_id is not None:
        result["provenance_id"] = provenance_id
    return result


def keep_alive(origin: str) -> bytes:
    """The body of a keep-alive ping (protocol ``muon``, as the clients send theirs)."""
    return orjson.dumps(message({}, protocol="muon", step=KEEP_ALIVE, origin=origin, target="n/a"))


def parse_body(body: bytes) -> dict[str, Any]:
    """A transport message body: a Muon message (a JSON object with a `step`)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValidationError("a Muon message is not valid JSON") from None
    if not isinstance(value, dict) or not isinstance(value.get("step"), str):
        raise ValidationError("a Muon message must be a JSON object with a 'step'", "step")
    return value


@dataclass(frozen=True)
class Frame:
    """One logical channel's message taken out of a shared-channel frame."""

    channel_id: str
    inner: dict[str, Any]


def open_frame(outer: Mapping[str, Any]) -> Frame:
    """The inner message of a shared-channel frame (inflated when deflated)."""
    raw = payload_bytes(outer.get("payload"))
    if outer.get("content_type") == JSON_DEFLATE:
        try:
            raw = zlib.decompress(raw)
        except zlib.error:
            raise ValidationError("a deflated Muon frame cannot be inflated", "payload") from None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationError("a shared-channel frame is not valid JSON", "payload") from None
    if not isinstance(value, dict):
        raise ValidationError("a shared-channel frame must be a JSON object", "payload")
    channel_id, inner = value.get("channelId"), value.get("message")
    if not isinstance(channel_id, str) or not isinstance(inner, dict) or not isinstance(inner.get("step"), str):
        raise ValidationError("a shared-channel frame needs a 'channelId' and a 'message' with a 'step'", "payload")
    return Frame(channel_id, inner)


def shared_frame(channel_id: str, inner: Mapping[str, Any], *, origin: str, target: str | None) -> bytes:
    """The AMQP body carrying `inner` on logical channel `channel_id`, deflated."""
    framed = orjson.dumps({"channelId": channel_id, "message": inner})
    outer: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "created": time.time_ns() // 1_000_000,
        "origin_service": origin,
        "protocol": SHARED_CHANNEL,
        "step": "message",
        "content_type": JSON_DEFLATE,
        "payload": list(zlib.compress(framed, COMPRESS_LEVEL)),
        "channel_op": NORMAL,
        "event_source": EVENT_SOURCE,
    }
    if target:
        outer["target_service"] = target
    return orjson.dumps(outer)


def direct_frame(inner: Mapping[str, Any]) -> bytes:
    """The AMQP body of a protocol message on a transport channel of its own (no sharing)."""
    return orjson.dumps(inner)
