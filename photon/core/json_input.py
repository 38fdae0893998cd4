"""Client JSON, parsed strictly: an object that repeats a key is refused.

JSON parsers keep one of the repeated values (orjson the last, others the first), so two
readers of the same stored bytes could see different events. Every front end that takes
events (HTTP, TCP, AMQP) parses them here, so the rule lives in one place.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from photon.core.errors import ValidationError

# In valid JSON every `"` outside a string opens one, so scanning string by string stays in
# step; a string followed by `:` is an object key.
_SPACED_COLON = re.compile(rb'"[ \t\r\n]+:')
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"(\s*:)?', re.S)


def loads(data: bytes | str) -> Any:
    """`orjson.loads`, refusing an object with a repeated key (`ValidationError` naming it).

    Raises `orjson.JSONDecodeError` for malformed JSON, as `orjson.loads` does.
    """
    value = orjson.loads(data)
    if type(value) is not dict and type(value) is not list:
        return value
    raw = data.encode() if isinstance(data, str) else data
    if raw.count(b":") <= 1:
        return value  # at most one key: nothing can repeat
    if raw.find(b"\\") < 0 and _SPACED_COLON.search(raw) is None:
        # No escapes (so no string holds a quote) and no key spaced from its colon: each `":` ends a key.
        keys_in_text = raw.count(b'":')
    else:
        groups = _STRING.findall(raw)
        keys_in_text = len(groups) - groups.count(b"")
    if keys_in_text != _count_keys(value):
        _name_repeated_key(raw)
    return value


def _count_keys(value: Any) -> int:
    count = 0
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        item = pop()
        if type(item) is dict:
            count += len(item)
            item = item.values()
        for child in item:
            kind = type(child)
            if kind is dict or kind is list:
                push(child)
    return count


def _name_repeated_key(raw: bytes) -> None:
    def check(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValidationError(f"duplicate key {key!r} in a JSON object: each key may appear once", key)
            seen.add(key)
        return dict(pairs)

    json.loads(raw, object_pairs_hook=check)
    raise ValidationError("duplicate key in a JSON object: each key may appear once")
