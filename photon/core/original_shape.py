"""The Clojure Photon's own event shape, accepted wherever events come in.

The original Photon's events (its ``doc/schemas.md``, and what Muon applications still send)
carry fields of their own beside Photon's: ``local-id``, ``server-timestamp``,
``photon-timestamp``, ``provenance`` (``service-id``, ``local-id``, ``relationship-type``) and
``encoding``. They are kept in the stored event as they came, and give Photon's fields their
meaning:

| original field | Photon field it gives (when the event does not carry that one itself) |
|---|---|
| ``local-id`` | ``id``: a re-sent event with the same ``local-id`` is stored once |
| ``server-timestamp`` (else ``photon-timestamp``) | ``event-time`` |
| ``provenance.local-id`` | ``caused-by`` (the causing event's ``local-id``, which is its ``id``) |
| ``provenance.relationship-type`` | ``caused-by-relation`` |
| ``encoding`` | nothing: it must be ``application/json`` (payloads are JSON) |

``schema`` (a version, or a schema URL) and ``service-id`` are Photon fields already. An event in
the original shape may have a ``payload`` of null, read as ``{}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from photon.core.errors import ValidationError
from photon.core.limits import MAX_INT64

LOCAL_ID: Final = "local-id"
SERVER_TIMESTAMP: Final = "server-timestamp"
PHOTON_TIMESTAMP: Final = "photon-timestamp"
PROVENANCE: Final = "provenance"
ENCODING: Final = "encoding"
ORIGINAL_FIELDS: Final = frozenset({LOCAL_ID, SERVER_TIMESTAMP, PHOTON_TIMESTAMP, PROVENANCE, ENCODING})
JSON_ENCODING: Final = "application/json"
MAX_ID_LENGTH: Final = 128


def _local_id(value: Any, field: str) -> str:
    """A local-id as an event id: a string (a number is taken as its text)."""
    if type(value) is int:
        value = str(value)
    if type(value) is not str or not value or len(value) > MAX_ID_LENGTH:
        raise ValidationError(f"field {field!r} must be a string of 1 to {MAX_ID_LENGTH} characters", field)
    return value


def _timestamp(value: Any, field: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_INT64:
        raise ValidationError(
            f"field {field!r} must be a non-negative integer (epoch milliseconds) of at most {MAX_INT64}", field
        )
    return value


def has_original_fields(event: Mapping[str, Any]) -> bool:
    return not ORIGINAL_FIELDS.isdisjoint(event)


def to_photon(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event with Photon's fields derived from its original ones (which it keeps).

    Raises `ValidationError` naming the field when an original field is malformed or
    contradicts the Photon field it maps onto.
    """
    out = dict(event)
    local = event.get(LOCAL_ID)
    if local is not None:
        local_id = _local_id(local, LOCAL_ID)
        if out.get("id") is None:
            out["id"] = local_id
        elif out["id"] != local_id:
            raise ValidationError(
                f"fields 'id' ({out['id']!r}) and 'local-id' ({local_id!r}) differ: an event has one identity", LOCAL_ID
            )
    for field in (SERVER_TIMESTAMP, PHOTON_TIMESTAMP):
        value = event.get(field)
        if value is not None:
            stamp = _timestamp(value, field)
            if out.get("event-time") is None:
                out["event-time"] = stamp
    provenance = event.get(PROVENANCE)
    if provenance is not None:
        if not isinstance(provenance, Mapping):
            raise ValidationError("field 'provenance' must be a JSON object", PROVENANCE)
        cause = provenance.get(LOCAL_ID)
        if cause is not None and out.get("caused-by") is None:
            out["caused-by"] = _local_id(cause, "provenance.local-id")
        relation = provenance.get("relationship-type")
        if relation is not None:
            if type(relation) is not str:
                raise ValidationError("field 'provenance.relationship-type' must be a string", "provenance")
            if out.get("caused-by-relation") is None:
                out["caused-by-relation"] = relation
        service = provenance.get("service-id")
        if service is not None and type(service) is not str:
            raise ValidationError("field 'provenance.service-id' must be a string", "provenance")
    encoding = event.get(ENCODING)
    if encoding is not None and encoding != JSON_ENCODING:
        raise ValidationError(
            f"field 'encoding' must be {JSON_ENCODING!r} (payloads are JSON), got {encoding!r}", ENCODING
        )
    if "payload" in out and out["payload"] is None:
        out["payload"] = {}
    return out
