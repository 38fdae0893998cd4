"""Backups of the Clojure Photon (``muon replay __all__ > file``), made into Photon backups.

Such a file holds one event a line in the original Photon's shape, in `__all__` order. Its
order-ids are ``event-time*1000 + counter``: large, with gaps, and not strictly increasing past
1000 events a millisecond; its events have no stream-version. `convert` writes what
``photon restore`` loads:

- order-ids renumbered in file order (from `first_order_id`, 1 for an empty store), each event
  keeping its old one as ``original-order-id``;
- stream-versions derived (1, 2, 3... per stream, in file order);
- the original fields mapped as for any event (`photon.core.original_shape`: ``local-id`` gives the
  ``id``, ``server-timestamp`` the ``event-time``, ``provenance`` the causation); an event
  without an id gets one derived from its old order-id and line (the same file gives the same
  ids), and a ``local-id`` seen before (a re-sent event the Clojure Photon stored twice) too;
- its ``__config__`` projection registrations (``post-projection!``, payload ``{"request":
  template}``) become Photon's (``projection-registered``), keeping their language, code,
  stream and initial value: Clojure and JavaScript projections come back *stopped*, saying why
  (Photon runs hy and python); ``delete-projection!`` becomes ``projection-deleted``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Final

import orjson

from photon.core.errors import ValidationError
from photon.core.events import ALL_STREAM, CONFIG_STREAM, EVENT_TIME, ID, ORDER_ID, STREAM_NAME, STREAM_VERSION
from photon.core.original_shape import to_photon
from photon.core.positioned import BackupFormatError
from photon.projections.registry import DELETED, REGISTERED

ORIGINAL_ORDER_ID: Final = "original-order-id"
"""The field that keeps a restored event's order-id in the Clojure Photon."""
ORIGIN: Final = "clojure-photon"
ID_NAMESPACE: Final = uuid.UUID("0d3c9a51-6f7e-4f86-a8c2-3e1b7c9f5a20")
_POST_PROJECTION: Final = frozenset({"post-projection!", "post-projection", "register-query!"})
_DELETE_PROJECTION: Final = frozenset({"delete-projection!", "delete-projection", "unregister-query!"})


def _error(line: int, message: str, field_name: str | None = None) -> ValidationError:
    return BackupFormatError(line, message, field_name)


def first_event(stream: IO[bytes]) -> dict[str, Any] | None:
    """The first event of an open backup (the stream is rewound after), or None."""
    try:
        for raw in stream:
            if raw.strip():
                try:
                    value = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    return None
                return value if isinstance(value, dict) else None
        return None
    finally:
        stream.seek(0)


def is_clojure_backup(event: dict[str, Any] | None) -> bool:
    """A Clojure Photon backup's events have no stream-version (every Photon backup event has one)."""
    return event is not None and STREAM_NAME in event and STREAM_VERSION not in event


@dataclass
class Conversion:
    """What a conversion did, for the restore's report."""

    events: int = 0
    projections: list[str] = field(default_factory=list)
    first_order_id: int = 0
    last_order_id: int = 0


def _projection_template(payload: Any, line: int) -> dict[str, Any]:
    template = payload.get("request", payload) if isinstance(payload, dict) else None
    if not isinstance(template, dict) or not isinstance(template.get("projection-name"), str):
        raise _error(line, "a __config__ projection registration needs a template with a 'projection-name'")
    return template


def _config_event(event: dict[str, Any], line: int, conversion: Conversion) -> dict[str, Any]:
    """A `__config__` event of the Clojure Photon as Photon's own."""
    event_type = event.get("event-type")
    if event_type in _POST_PROJECTION:
        template = _projection_template(event.get("payload"), line)
        name = template["projection-name"]
        conversion.projections.append(name)
        payload = {
            "projection-name": name,
            "language": str(template.get("language") or "clojure"),
            "source": str(template.get("reduction") or ""),
            "origin": ORIGIN,
            "path": None,
            "stream-name": template.get("stream-name") or ALL_STREAM,
            "initial-value": template.get("initial-value"),
        }
        return {**event, "event-type": REGISTERED, "payload": payload}
    if event_type in _DELETE_PROJECTION:
        deletion = event.get("payload")
        name = deletion.get("projection-name") if isinstance(deletion, dict) else None
        if not isinstance(name, str):
            raise _error(line, "a __config__ projection deletion needs payload.projection-name")
        return {**event, "event-type": DELETED, "payload": {"projection-name": name}}
    return event


def convert(
    lines: Iterable[bytes], *, first_order_id: int = 1, conversion: Conversion | None = None
) -> Iterator[bytes]:
    """The lines of a Photon backup holding the Clojure Photon backup's events (see the module)."""
    conversion = conversion if conversion is not None else Conversion()
    versions: dict[str, int] = {}
    seen_ids: set[str] = set()
    order_id = first_order_id - 1
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _error(number, f"not valid JSON ({exc})") from None
        if not isinstance(event, dict):
            raise _error(number, "expected a JSON object (an event)")
        stream = event.get(STREAM_NAME)
        if not isinstance(stream, str) or not stream or stream == ALL_STREAM:
            raise _error(number, "missing or bad field 'stream-name'", STREAM_NAME)
        old = event.pop(ORDER_ID, None)
        event.pop(STREAM_VERSION, None)
        if stream == CONFIG_STREAM:
            event = _config_event(event, number, conversion)
        try:
            mapped = to_photon(event)
        except ValidationError as exc:
            raise _error(number, str(exc), exc.field) from None
        old_id = old if type(old) is int else None
        if mapped.get(EVENT_TIME) is None:
            if old_id is None:
                raise _error(number, "an event needs an event-time, a server-timestamp or an order-id", EVENT_TIME)
            mapped[EVENT_TIME] = old_id // 1000
        event_id = mapped.get(ID)
        if not isinstance(event_id, str) or event_id in seen_ids:
            mapped[ID] = str(uuid.uuid5(ID_NAMESPACE, f"{old}/{number}"))
        seen_ids.add(mapped[ID])
        order_id += 1
        version = versions.get(stream, 0) + 1
        versions[stream] = version
        record = {ORDER_ID: order_id, STREAM_VERSION: version, **mapped}
        if old is not None:
            record[ORIGINAL_ORDER_ID] = old
        conversion.events += 1
        conversion.first_order_id = conversion.first_order_id or order_id
        conversion.last_order_id = order_id
        yield orjson.dumps(record) + b"\n"
