"""Streams over their lifetime in Photon's AMQP protocol: message types (docs/amqp.md).

Requests on `<service>.commands`, each answered once with a `done` reply holding what the HTTP
route answers, or an `error`. `stream-metadata` and `delete-stream` are in `photon.wire.amqp`;
multi-stream and conditional (DCB) appends are emits (`expected-versions`, `condition`). Shared by
the service (`photon.server.amqp.lifetime_messages` reads the bodies) and the Python clients.
"""

from __future__ import annotations

from typing import Final

from photon.wire.amqp import DELETE_STREAM, STREAM_METADATA

SCAVENGE: Final = "scavenge"
"""Empty body (or ``{}``): remove deleted, expired and truncated events; answers the report when done."""
REDACT: Final = "redact"
"""``{"stream-name": s}`` or ``{"ids": [...]}``, with an optional ``"reason"``: answers ``{"redacted-events": n}``."""
READ_MATCHING: Final = "read-matching"
"""``{"query": [...], "after": order-id, "limit": n}`` (all optional): a page of matching events,
``{"results": [...], "next": order-id or null, "head": order-id}``."""

#: Every request about streams over their lifetime, each answered once with `done` or `error`.
LIFETIME_CALLS: Final = (STREAM_METADATA, DELETE_STREAM, SCAVENGE, REDACT, READ_MATCHING)
