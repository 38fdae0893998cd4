"""Schemathesis hooks for the run against a live server (tests/test_schemathesis.py).

- ``format: printable`` (names: streams, event types, tags, groups, consumers) is generated as
  text Python's `str.isprintable` accepts: letters, marks, numbers, punctuation, symbols and the
  ASCII space. JSON Schema's regular expressions cannot say "printable", so the description
  names the format and this hook gives its values.
- Integers in JSON bodies are sent as JSON integers: Photon reads integers strictly (``2.0`` is
  refused, as the description says), while JSON Schema counts ``2.0`` as an integer, so
  schemathesis would otherwise also send whole numbers written as floats.
- NDJSON answers (replays, exports) are read as the list of their lines, as the description
  shows them, so that their events are checked against its schema too.
- A replay and a durable subscription are made cold (history, then end): a hot one never ends,
  which a request-and-answer test cannot wait for.
- Rules that tie values together in ways OpenAPI and JSON Schema have no words for (the
  description says them in prose): `from-version` reads one stream, not `__all__`, a category or
  a `**` wildcard; `expected-version` is given in the query or in the body's envelope, not both;
  a batch with an expected-version (other than any) is of one stream. A case that breaks one is
  mended before it is sent: the query parameter dropped, the batch's events put in one stream.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from hypothesis import strategies as st

from photon.core.events import is_one_stream

PRINTABLE = st.text(
    alphabet=st.characters(categories=["L", "M", "N", "P", "S"]) | st.just(" "), min_size=1, max_size=40
)
schemathesis.openapi.format("printable", PRINTABLE)

ENDLESS = {"/api/replay/{stream}", "/api/subscription/{name}"}


def as_integers(value: Any) -> Any:
    """`value` with every float that is a whole number written as an integer."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:  # as schemathesis makes them
        return int(value)
    if isinstance(value, list):
        return [as_integers(item) for item in value]
    if isinstance(value, dict):
        return {key: as_integers(item) for key, item in value.items()}
    return value


def one_rule_broken(case: Any) -> str | None:
    """The query parameter that breaks a rule tying it to the path or the body, if any."""
    query = case.query or {}
    stream = (case.path_parameters or {}).get("stream")
    if "from-version" in query and isinstance(stream, str) and not is_one_stream(stream):
        return "from-version"
    if "expected-version" in query and isinstance(case.body, dict) and "expected-version" in case.body:
        return "expected-version"
    return None


@schemathesis.deserializer("application/x-ndjson")
def ndjson_lines(context: Any, response: Any) -> list[Any]:
    return [json.loads(line) for line in response.content.splitlines() if line.strip()]


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.operation.method.upper() == "GET" and case.operation.path in ENDLESS:
        case.query = {**(case.query or {}), "stream-type": "cold"}
    if isinstance(case.body, dict | list):
        case.body = as_integers(case.body)
    broken = one_rule_broken(case)
    if broken is not None:
        case.query = {name: value for name, value in case.query.items() if name != broken}
    one_stream_batch(case)


def one_stream_batch(case: Any) -> None:
    """Put a batch's events in the first one's stream when an expected-version applies to it."""
    body, query = case.body, case.query or {}
    envelope = isinstance(body, dict) and "events" in body
    version = body.get("expected-version") if envelope else query.get("expected-version")
    events = body.get("events") if envelope else body
    if version in (None, "any") or not isinstance(events, list) or not events:
        return
    first = events[0].get("stream-name") if isinstance(events[0], dict) else None
    for event in events:
        if isinstance(event, dict) and first is not None:
            event["stream-name"] = first
