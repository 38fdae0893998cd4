"""Client JSON with a repeated key is refused; everything else parses as orjson parses it."""

from __future__ import annotations

import orjson
import pytest

from photon.core import json_input
from photon.core.errors import ValidationError

GOOD = [
    b'{"a": 1, "b": {"a": 2}}',
    b'{"a": "x\\":1, \\"a\\": 2", "b": ["a:", {"a": 1}], "c": "\\\\"}',
    b'[{"k": 1}, {"k": 2}]',
    b'{"": 1, " ": 2, "\\u0041": 3, "A ": 4}',
    b"42",
    b'"a:b"',
    b'{"nested": [[{"x": {"x": {"x": null}}}]]}',
]


@pytest.mark.parametrize("text", GOOD)
def test_json_without_repeated_keys_parses_as_orjson_does(text: bytes) -> None:
    assert json_input.loads(text) == orjson.loads(text)
    assert json_input.loads(text.decode()) == orjson.loads(text)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (b'{"a": 1, "a": 2}', "a"),
        (b'{"a": 1, "b": {"c": 1, "c" : 1}}', "c"),
        (b'[{"x": 1}, {"y": 1, "y": 1}]', "y"),
        (b'{"a": "\\"b\\":", "b": 1, "b": 2}', "b"),
        # Escapes spell the same key differently: still one key.
        (b'{"A": 1, "\\u0041": 2}', "A"),
    ],
)
def test_a_repeated_key_is_refused_by_name(text: bytes, key: str) -> None:
    with pytest.raises(ValidationError, match=f"duplicate key {key!r}") as refused:
        json_input.loads(text)
    assert refused.value.field == key


def test_malformed_json_raises_as_orjson_does() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        json_input.loads(b'{"a": ')


@pytest.mark.parametrize(
    "text",
    [
        b"18446744073709551616",
        b"[18446744073709551616]",
        b'{"a": {"b": [1, -9223372036854775809]}}',
        b'{"payload": {"n": 1180591620717411303424}, "x": 1}',
        b"[1" + b"0" * 300 + b"]",
    ],
)
def test_integers_beyond_64_bits_are_refused_naming_them(text: bytes) -> None:
    with pytest.raises(ValidationError, match="beyond 64 bits"):
        json_input.loads(text)


def test_what_64_bits_hold_and_float_literals_are_kept() -> None:
    assert json_input.loads(b"[18446744073709551615, -9223372036854775808]") == [(1 << 64) - 1, -(1 << 63)]
    assert json_input.loads(b'{"a": 1e19, "b": -1.5e300, "c": "123456789012345678901234"}') == {
        "a": 1e19,
        "b": -1.5e300,
        "c": "123456789012345678901234",
    }


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        # Compact texts, as orjson writes them, but for what they repeat or hold.
        (b'{"a":1,"a":1}', "duplicate key 'a'"),
        (b'{"events":[{"k":"v","k":"v"}],"x":1}', "duplicate key 'k'"),
        (b'{"A":1,"\\u0041":1}', "duplicate key 'A'"),
        (b'{"n":18446744073709551616}', "beyond 64 bits"),
        (b'[{"n":-9223372036854775809}]', "beyond 64 bits"),
    ],
)
def test_compact_json_is_checked_as_any_other(text: bytes, refused: str) -> None:
    with pytest.raises(ValidationError, match=refused):
        json_input.loads(text)


def test_a_text_orjson_wrote_needs_no_walk_of_its_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    """A body exactly as orjson writes it (Photon's clients, the eventsourcing recorder) is
    accepted from one serialization of its value; any other text is still walked."""
    walked: list[object] = []
    real = json_input._count_keys

    def counting(value: object) -> tuple[int, bool]:
        walked.append(value)
        return real(value)

    monkeypatch.setattr(json_input, "_count_keys", counting)
    doc = {"events": [{"stream-name": "a-1", "payload": {"n": i, "s": 'x"y\\', "f": 1.5}} for i in range(3)]}
    assert json_input.loads(orjson.dumps(doc)) == doc
    assert json_input.loads(orjson.dumps(doc).decode()) == doc
    assert walked == []
    spaced = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    assert json_input.loads(spaced) == doc
    assert len(walked) == 1
    deep = b"[" * 300 + b"]" * 300  # deeper than orjson writes: checked the other way
    assert json_input.loads(deep) == orjson.loads(deep)


def test_compact_lines_parse_together_and_anything_else_is_left_to_loads() -> None:
    from photon.core.json_input import loads_compact_lines

    lines = [orjson.dumps({"n": i, "s": "x\\"}) for i in range(20)]
    assert loads_compact_lines(lines) == [{"n": i, "s": "x\\"} for i in range(20)]
    for odd in (
        b'{"n": 1}',  # spaced
        b'{"n":1,"n":2}',  # a repeated key
        b'{"n":18446744073709551616}',  # beyond 64 bits
        b"",  # blank
        b"{oops",
        b'{"n":1},{"n":2}',  # two values on one line
    ):
        assert loads_compact_lines([*lines[:5], odd, *lines[5:]]) is None, odd
    # Each line alone malformed, together a valid array of as many values as lines.
    assert loads_compact_lines([b'{"a":[{}', b'{}]},{"b":{}}']) is None
