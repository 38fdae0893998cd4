"""The built-in `__streams__` projection's schemas: what it infers, and that it infers the same as
the rule it states (a field's type taken from the first events of a version and a sample after,
nested objects as maps, fields seen once staying listed, `null` replaced by a later type)."""

from __future__ import annotations

import random
from typing import Any

from photon.projections import builtin_streams as streams


def _fold(events: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for order_id, event in enumerate(events, 1):
        state = streams.reduction(state, {"order-id": order_id, **event})
    return state


def _reference_merge(schema: dict[str, Any], payload: dict[str, Any]) -> None:
    """The rule written plainly: every field's type made, then kept where the schema takes it."""
    for key, value in payload.items():
        found = streams._type_of(value)
        known = schema.get(key)
        if isinstance(known, dict) and isinstance(value, dict):
            _reference_merge(known, value)
        elif known is None or known == "null":
            schema[key] = found


def test_schemas_of_a_stream() -> None:
    events = [
        {"stream-name": "a", "payload": {"n": 1, "s": None, "o": {"x": 1}}},
        {"stream-name": "a", "payload": {"n": "text", "s": "now", "o": {"y": [1]}, "t": True}},
        {"stream-name": "a", "schema": 2, "payload": {"z": {"deep": {"er": 1.5}}}},
        {"stream-name": "b", "payload": []},
    ]
    state = _fold(events)
    assert state["a"]["total-events"] == 3
    assert state["a"]["schemas"] == {
        "__unversioned__": {"n": "number", "s": "string", "o": {"x": "number", "y": "array"}, "t": "boolean"},
        "2": {"z": {"deep": {"er": "number"}}},
    }
    assert state["a"]["schema-events"] == {"__unversioned__": 2, "2": 1}
    assert state["b"]["schemas"] == {"__unversioned__": {}}


def test_only_the_first_events_and_a_sample_after_are_read() -> None:
    events = [{"stream-name": "a", "payload": {f"f{i}": i}} for i in range(1, 201)]
    schema = _fold(events)["a"]["schemas"]["__unversioned__"]
    assert sorted(schema) == sorted([f"f{i}" for i in range(1, 11)] + ["f100", "f200"])


def _random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(7 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([1, 2.5])
    if kind == 3:
        return "s"
    if kind == 4:
        return [1]
    return {rng.choice("abcd"): _random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def test_the_schemas_are_the_rule_s_exactly() -> None:
    rng = random.Random(20)
    for _ in range(200):
        payloads = [_random_value(rng, 1) for _ in range(rng.randrange(1, 8))]
        payloads = [p if isinstance(p, dict) else {"v": p} for p in payloads]
        expected: dict[str, Any] = {}
        for payload in payloads:
            _reference_merge(expected, payload)
        state = _fold([{"stream-name": "s", "payload": p} for p in payloads])
        assert state["s"]["schemas"]["__unversioned__"] == expected


def test_a_known_field_s_type_is_not_made_again(monkeypatch: Any) -> None:
    made: list[Any] = []
    real = streams._type_of

    def counting(value: Any) -> Any:
        made.append(value)
        return real(value)

    monkeypatch.setattr(streams, "_type_of", counting)
    payload = {"originator-version": 1, "state": {"amount": {"_type_": "decimal_str", "_data_": "1.00"}}}
    _fold([{"stream-name": "a", "payload": payload}])
    assert made
    made.clear()
    _fold([{"stream-name": "a", "payload": payload}] * 10)
    assert len(made) == 5  # the first event's: each field and each nested one, once; none after
