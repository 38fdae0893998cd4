"""Reading projection definitions: Python and Hy sources, templates, and loud errors."""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import pytest

from photon.core.errors import NotFound
from photon.projections.definition import (
    DefinitionError,
    ProjectionSpec,
    declared_name,
    load,
    spec_from_file,
    spec_from_template,
)
from photon.projections.offline import key_of

EVENT = {"stream-name": "s", "event-type": "t", "payload": {"n": 2}, "order-id": 1}


def spec(source: str, language: str = "python", **fields: object) -> ProjectionSpec:
    return ProjectionSpec("p", language, source, fields=fields)


def test_python_module_fields() -> None:
    definition = load(
        spec(
            "projection_name = 'x'\nstream_name = 'orders'\ninitial_value = {'total': 0}\n"
            "event_types = ['placed']\n"
            "def reduction(state, event):\n    state['total'] += event['payload']['n']\n    return state\n"
        )
    )
    assert definition.stream_name == "orders"
    assert definition.event_types == frozenset({"placed"})
    assert definition.initial_value == {"total": 0}
    assert definition.reduction({"total": 1}, EVENT) == {"total": 3}


def test_python_lambda_expression_and_defaults() -> None:
    definition = load(spec("lambda state, event: state + event['payload']['n']", **{"initial-value": 10}))
    assert definition.stream_name == "__all__"
    assert definition.event_types is None
    assert definition.reduction(definition.initial_value, EVENT) == 12


def test_hy_top_level_forms() -> None:
    source = """
(setv projection-name "hy-sum" stream-name "s" initial-value 0 event-types ["t"])
(defn reduction [state event] (+ state (get event "payload" "n")))
"""
    definition = load(spec(source, "hy"))
    assert definition.stream_name == "s"
    assert definition.event_types == frozenset({"t"})
    assert definition.reduction(1, EVENT) == 3
    assert declared_name(spec(source, "hy")) == "hy-sum"


def test_hy_single_map_form() -> None:
    source = '{:projection-name "m" :initial-value [] :reduction (fn [s e] (+ s [(get e "event-type")]))}'
    definition = load(spec(source, "hy"))
    assert definition.initial_value == []
    assert definition.reduction([], EVENT) == ["t"]
    assert declared_name(spec(source, "hy")) == "m"


def test_hy_fn_expression_from_a_template() -> None:
    template = {"projection-name": "c", "language": "hy", "reduction": "(fn [s e] (+ s 1))", "initial-value": 0}
    definition = load(spec_from_template(template))
    assert definition.reduction(0, EVENT) == 1


def test_template_fields_win_over_the_source() -> None:
    source = "stream_name = 'a'\ninitial_value = 1\ndef reduction(s, e):\n    return s\n"
    definition = load(spec(source, **{"stream-name": "b", "initial-value": 5}))
    assert (definition.stream_name, definition.initial_value) == ("b", 5)


@pytest.mark.parametrize(
    ("source", "language", "message"),
    [
        ("def reduction(s, e)\n    return s\n", "python", "syntax error"),
        ("(defn reduction [s e] (+ s 1)", "hy", "syntax error"),
        ("x = 1\n", "python", "defines no reduction"),
        ("(setv x 1)", "hy", "defines no reduction"),
        ("initial_value = {1, 2}\ndef reduction(s, e):\n    return s\n", "python", "'initial-value' must be JSON"),
        ("(setv initial-value {:a 1})\n(defn reduction [s e] s)", "hy", "'initial-value' must be JSON"),
        ("reduction = 5\n", "python", "must be a function"),
        ("event_types = 'x'\ndef reduction(s, e):\n    return s\n", "python", "'event-types' must be a non-empty list"),
        ("raise RuntimeError('boom at load')\n", "python", "boom at load"),
    ],
)
def test_bad_sources_are_refused_with_the_reason(source: str, language: str, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        load(spec(source, language))


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"language": "python", "reduction": "lambda s, e: s"}, "projection-name"),
        ({"projection-name": "x", "language": "clojure", "reduction": "(fn [s e] s)"}, "language"),
        ({"projection-name": "x", "language": "python"}, "reduction"),
        ({"projection-name": "x", "reduction": "lambda s, e: s", "colour": "red"}, "unknown field 'colour'"),
        ({"projection-name": "a/b", "reduction": "lambda s, e: s"}, "without '/'"),
        ({"projection-name": "..", "reduction": "lambda s, e: s"}, "must not be '..': URLs resolve it"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_templates(template: object, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        spec_from_template(template)


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ("orders*", "never hold '\\*'"),
        ("orders-**", "never hold '\\*'"),
        ("__category__:", "a category"),
        ("__category__:order-1", "a category"),
        ("..", "'..'"),
        ("x" * 257, "1 to 256 printable characters"),
        ("tab\there", "1 to 256 printable characters"),
    ],
)
def test_a_source_no_event_could_ever_be_in_is_refused(stream: str, message: str) -> None:
    """A projection over a name no stream can have would be registered and never fold an event."""
    spec = spec_from_template({"projection-name": "x", "stream-name": stream, "reduction": "lambda s, e: s"})
    with pytest.raises(DefinitionError, match=message) as refused:
        load(spec)
    assert refused.value.field == "stream-name"


@pytest.mark.parametrize("event_types", [[], "placed", ["placed", 1]])
def test_event_types_are_a_non_empty_list_of_strings(event_types: object) -> None:
    """An empty list would fold no event at all (a filter of none): refused, as an empty
    `event-types` of a read is."""
    spec = spec_from_template({"projection-name": "x", "event-types": event_types, "reduction": "lambda s, e: s"})
    with pytest.raises(DefinitionError, match="'event-types' must be a non-empty list of strings") as refused:
        load(spec)
    assert refused.value.field == "event-types"


@pytest.mark.parametrize("stream", ["orders", "__all__", "__category__:order", "__config__", "order-1"])
def test_the_sources_a_projection_folds(stream: str) -> None:
    spec = spec_from_template({"projection-name": "x", "stream-name": stream, "reduction": "lambda s, e: s"})
    assert load(spec).stream_name == stream


def test_file_spec_and_digest(tmp_path: Path) -> None:
    path = tmp_path / "counter.py"
    path.write_text("def reduction(s, e):\n    return s + 1\ninitial_value = 0\n")
    first = spec_from_file(path)
    assert (first.name, first.language, first.origin) == ("counter", "python", "file")
    assert ProjectionSpec.from_payload(first.to_payload()) == first
    path.write_text("def reduction(s, e):\n    return s + 2\ninitial_value = 0\n")
    assert spec_from_file(path).digest != first.digest
    with pytest.raises(DefinitionError, match=r"\.hy or \.py"):
        spec_from_file(tmp_path / "notes.txt")


@pytest.mark.parametrize(("key", "want"), [("0", "a"), ("2", "c"), ("-1", "c"), ("-0", "a")])
def test_a_key_of_an_array_value_is_an_index(key: str, want: str) -> None:
    assert key_of("p", ["a", "b", "c"], key) == want


@pytest.mark.parametrize("key", ["3", "-4", "²", "\u0661", "1_0", "+1", " 1", "x", ""])
def test_a_key_that_is_no_index_of_the_array_is_not_found(key: str) -> None:
    """Indexes are ASCII digits only, as every integer of a request is (a superscript two was
    an internal error, an Arabic-Indic one the index 1)."""
    with pytest.raises(NotFound, match=re.escape(f"projection 'p' has no key {key!r}")):
        key_of("p", ["a", "b", "c"], key)


@pytest.mark.parametrize(("path", "shown"), [("boom.hy", "boom.hy"), (None, "<projection p>")])
def test_a_hy_reduction_that_raises_is_placed_in_its_file_and_line(path: str | None, shown: str) -> None:
    """What `last-error` names (as for Python: `(at boom.py, line 5)`), not Hy's `<string>`."""
    source = ";; the fourth line raises\n(setv initial-value 0)\n(defn reduction [s e]\n  (/ 1 0))\n"
    reduction = load(ProjectionSpec("p", "hy", source, origin="file" if path else "api", path=path)).reduction
    with pytest.raises(ZeroDivisionError) as raised:
        reduction(0, EVENT)
    frame = traceback.extract_tb(raised.value.__traceback__)[-1]
    assert (frame.filename, frame.lineno) == (shown, 4)
