"""The built-in `__streams__` projection: per stream, its event count and the payload schemas seen.

Like Photon's: `schemas` is keyed by the events' `schema` version (``__unversioned__`` when an
event has none); a schema maps each payload field to its JSON type, nested objects as maps.
Schemas are inferred from the first events of each version and from a sample after
(every 100th event), and fields seen once stay listed. This file's text is the projection's
source: it runs in the worker pool like any user projection.
"""

from typing import Any

projection_name = "__streams__"
stream_name = "__all__"
initial_value: dict[str, Any] = {}

FIRST_EVENTS = 10
SAMPLE_EVERY = 100


def _type_of(value: Any) -> Any:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return {key: _type_of(item) for key, item in value.items()}
    return type(value).__name__


def _merge(schema: dict[str, Any], payload: dict[str, Any]) -> None:
    # A field's type is made only where the schema takes it: after a stream's first event most
    # fields are known, and making each one's type (a map, for an object) to drop it was most
    # of what this projection cost an event.
    for key, value in payload.items():
        known = schema.get(key)
        if isinstance(known, dict) and isinstance(value, dict):
            _merge(known, value)
        elif known is None or known == "null":
            schema[key] = _type_of(value)


def reduction(state: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    name = event["stream-name"]
    entry = state.get(name)
    if entry is None:
        entry = state[name] = {"stream-name": name, "total-events": 0, "schemas": {}}
    entry["total-events"] += 1
    version = event.get("schema")
    version = "__unversioned__" if version is None else str(version)
    schemas = entry["schemas"]
    schema = schemas.get(version)
    if schema is None:
        schema = schemas[version] = {}
    seen = entry.setdefault("schema-events", {})
    count = seen[version] = seen.get(version, 0) + 1
    payload = event.get("payload")
    if isinstance(payload, dict) and (count <= FIRST_EVENTS or count % SAMPLE_EVERY == 0):
        _merge(schema, payload)
    return state
