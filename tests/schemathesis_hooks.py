"""Schemathesis hooks for the run against a live server (tests/test_schemathesis.py).

- ``format: printable`` (names: streams, event types, tags, groups, consumers) is generated as
  text Python's `str.isprintable` accepts: letters, marks, numbers, punctuation, symbols and the
  ASCII space. JSON Schema's regular expressions cannot say this, so the description names the
  format and this hook gives its values.
- A replay and a durable subscription are made cold (history, then end): a hot one never ends,
  which a request-and-answer test cannot wait for.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st

PRINTABLE = st.text(
    alphabet=st.characters(categories=["L", "M", "N", "P", "S"]) | st.just(" "), min_size=1, max_size=40
)
schemathesis.openapi.format("printable", PRINTABLE)

ENDLESS = {"/api/replay/{stream}", "/api/subscription/{name}"}


@schemathesis.hook
def map_query(context: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    operation = context.operation
    if operation is not None and operation.method.upper() == "GET" and operation.path in ENDLESS:
        query = dict(query or {})
        query["stream-type"] = "cold"
    return query
