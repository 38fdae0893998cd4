"""Client JSON, parsed strictly: an object that repeats a key is refused, and so is an integer
beyond 64 bits.

JSON parsers keep one of the repeated values (orjson the last, others the first), so two
readers of the same stored bytes could see different events. orjson reads an integer outside
-2^63..2^64-1 as a float (2^64 became 1.8446744073709552e+19), which would store another number
than the one sent: such an integer is refused, naming it (send it as a string). Every front end
that takes events (HTTP, TCP, AMQP) parses them here, so the rules live in one place.
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
    """`orjson.loads`, refusing an object with a repeated key and an integer beyond 64 bits
    (`ValidationError` naming it).

    Raises `orjson.JSONDecodeError` for malformed JSON, as `orjson.loads` does.
    """
    value = orjson.loads(data)
    kind = type(value)
    if kind is not dict and kind is not list:
        if kind is float and not -_WIDE < value < _WIDE:
            _refuse_wide_integers(data.encode() if isinstance(data, str) else data)
        return value
    raw = data.encode() if isinstance(data, str) else data
    if _as_written(value, raw):
        return value
    keys, wide = _count_keys(value)
    if wide:
        _refuse_wide_integers(raw)
    if raw.count(b":") <= 1:
        return value  # at most one key: nothing can repeat
    if raw.find(b"\\") < 0 and _SPACED_COLON.search(raw) is None:
        # No escapes (so no string holds a quote) and no key spaced from its colon: each `":` ends a key.
        keys_in_text = raw.count(b'":')
    else:
        groups = _STRING.findall(raw)
        keys_in_text = len(groups) - groups.count(b"")
    if keys_in_text != keys:
        _name_repeated_key(raw)
    return value


def loads_compact_lines(lines: list[bytes]) -> list[Any] | None:
    """Each line's value, parsed in one call as a JSON array, when every line is exactly what
    orjson writes for its value (compact JSON, as Photon's clients write it): such a line holds
    neither a repeated key nor an integer beyond 64 bits, and `loads` would give the same value.
    None when any line is not (malformed, spaced, blank, ...): the caller then parses line by
    line with `loads`, which names the fault of each.

    Comparing each value's serialization with its own line also keeps the lines' boundaries: a
    line that is not JSON on its own (``{"a":[1`` then ``2]}``) could join its neighbour into
    a valid array, never into the same text line by line."""
    if len(lines) > 1:
        # The brackets joined to the first and last line: the read's text is copied once.
        text = b",".join([b"[" + lines[0], *lines[1:-1], lines[-1] + b"]"])
    else:
        text = b"[" + b"".join(lines) + b"]"
    try:
        values = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(values) is not list or len(values) != len(lines):
        return None
    try:
        if list(map(orjson.dumps, values)) != lines:
            return None
    except orjson.JSONEncodeError:  # nested deeper than orjson writes
        return None
    return values


def _as_written(value: Any, raw: bytes) -> bool:
    """Whether `raw` is exactly what orjson writes for `value`, its parse: then it holds neither
    a repeated key nor an integer beyond 64 bits, and no other check is needed.

    orjson writes each object of `value` with one member per key, so a text that repeated a key
    (one member fewer in `value` than in the text) is never what it writes; an integer beyond 64 bits was
    read as a float, which orjson writes with a `.` or an exponent, never as the digits sent.
    Compact JSON (what orjson, and Photon's own clients, write) passes in one serialization of
    the value, a few µs for a batch of events, instead of a walk of every object in Python
    (30 µs and more); other texts take the checks below."""
    try:
        return orjson.dumps(value) == raw
    except orjson.JSONEncodeError:  # nested deeper than orjson writes
        return False


_WIDE = float(1 << 63)
"""orjson reads an integer outside -2^63..2^64-1 as a float, so only a float this large (in
size) may have been such an integer; the exact check below runs only then."""
INT_MIN = -(1 << 63)
INT_MAX = (1 << 64) - 1
"""The integers orjson reads exactly (signed and unsigned 64-bit)."""


def _refuse_wide_integers(raw: bytes) -> None:
    def check(text: str) -> int:
        # 21 characters hold every 64-bit integer with its sign; int() of a longer text is not needed.
        number = int(text) if len(text) <= 21 else INT_MAX + 1
        if not INT_MIN <= number <= INT_MAX:
            shown = text if len(text) <= 40 else text[:40] + "..."
            raise ValidationError(
                f"the JSON holds the integer {shown}, beyond 64 bits: it would not be stored exactly; "
                "send numbers that large as strings"
            )
        return number

    try:
        json.loads(raw, parse_int=check)
    except RecursionError:
        raise ValidationError("the JSON is nested too deeply") from None


def _count_keys(value: Any) -> tuple[int, bool]:
    """The keys of every object in `value`, and whether it holds a float of 2^63 or more in size."""
    count = 0
    wide = False
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
            elif kind is float and not -_WIDE < child < _WIDE:
                wide = True
    return count, wide


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
