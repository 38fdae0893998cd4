"""The request model: what a client may ask of the store, parsed and bounded once for every way in.

A request's options are declared here as `msgspec.Struct` types (their fields' wire names,
types, bounds and help), and read by one parser whether they come as query parameters (HTTP),
as JSON fields (AMQP, Muon) or as arguments (the CLI and the Python clients build the same
types). Adding a replay option means adding a field to `ReplayOptions` and teaching the store
and the backends' query about it; no front end parses it on its own. The same types give the
JSON schemas of the HTTP API (`msgspec.json.schema_components`).

Integers are read strictly: a JSON integer (not a boolean, not a float) or, where text is
allowed (query parameters, Muon args), ASCII digits only (no sign, no `_`, no `²` or other
Unicode digits), and bounded to a signed 64-bit number, which every backend stores.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec
import msgspec.inspect as mi

from photon.core.errors import ValidationError
from photon.core.filters import EventFilter
from photon.core.limits import MAX_INT64 as MAX_INT64

_MAX_DIGITS: Final = len(str(MAX_INT64))

Kind = Literal["integer", "string", "list", "boolean"]


# -- integers ----------------------------------------------------------------------------------


def _what(name: str, where: str) -> str:
    return f"{where} {name!r}" if where else repr(name)


def parse_integer(
    value: Any,
    name: str,
    *,
    minimum: int = 0,
    maximum: int = MAX_INT64,
    text: bool = False,
    where: str = "field",
) -> int:
    """A whole number in `minimum..maximum`, or `ValidationError` naming `name`.

    `value` is a JSON integer, or with `text` a string of ASCII digits (what a query parameter,
    a path segment or a header holds). `where` says what `name` is ("field", "query parameter").
    """
    what = _what(name, where)
    if type(value) is int:
        number = value
    elif text and type(value) is str:
        if not (value.isascii() and value.isdigit()):
            raise ValidationError(f"{what} must be a whole number (ASCII digits only), got {value!r}", name)
        digits = value.lstrip("0") or "0"
        if len(digits) > _MAX_DIGITS:  # int() of a long text is slow, and it is over any bound anyway
            raise ValidationError(f"{what} must be at most {maximum}, got {value[:40]!r}...", name)
        number = int(digits)
    else:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "..."
        raise ValidationError(f"{what} must be a whole number, got {shown}", name)
    if number < minimum:
        raise ValidationError(f"{what} must be a whole number of at least {minimum}, got {number}", name)
    if number > maximum:
        beyond = " (a signed 64-bit number)" if maximum == MAX_INT64 else ""
        raise ValidationError(f"{what} must be at most {maximum}{beyond}, got {number}", name)
    return number


def is_digits(text: str) -> bool:
    """Whether `text` is ASCII digits only (what `str.isdigit` says of `²` and `٣` too)."""
    return text.isascii() and text.isdigit()


# -- declared options ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One option of a request as a front end sees it: its wire name, kind, bounds and help."""

    name: str
    kind: Kind
    help: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    default: Any = None
    attribute: str = ""
    """The model's attribute for this option (its name with `_` for `-` when not given)."""

    @property
    def attr(self) -> str:
        return self.attribute or self.name.replace("-", "_")


def parse_text(option: Option, texts: Sequence[str], where: str = "query parameter") -> Any:
    """An option's value from its text(s) (a query parameter, possibly repeated)."""
    name = option.name
    if option.kind == "list":
        items = [item.strip() for text in texts for item in text.split(",") if item.strip()]
        if not items:
            raise ValidationError(f"{where} {name!r} is empty", name)
        return items
    if len(texts) > 1:
        raise ValidationError(f"{where} {name!r} given {len(texts)} times", name)
    text = texts[0]
    if option.kind == "integer":
        return parse_integer(
            text,
            name,
            minimum=option.minimum if option.minimum is not None else 0,
            maximum=option.maximum if option.maximum is not None else MAX_INT64,
            text=True,
            where=where,
        )
    if option.kind == "boolean":
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValidationError(f"{where} {name!r} must be true or false, got {text!r}", name)
    if option.choices and text not in option.choices:
        raise ValidationError(f"{where} {name!r} must be one of {', '.join(option.choices)}, got {text!r}", name)
    return text


def parse_json_value(option: Option, value: Any, *, numbers_as_text: bool = False, where: str = "field") -> Any:
    """An option's value from a JSON field (None: not given)."""
    name = option.name
    if value is None:
        return None
    if option.kind == "integer":
        return parse_integer(
            value,
            name,
            minimum=option.minimum if option.minimum is not None else 0,
            maximum=option.maximum if option.maximum is not None else MAX_INT64,
            text=numbers_as_text,
            where=where,
        )
    if option.kind == "list":
        if type(value) is str:
            value = [item for item in value.split(",") if item]
        if type(value) is not list or not all(type(item) is str for item in value):
            raise ValidationError(f"{where} {name!r} must be a list of strings", name)
        return value
    if option.kind == "boolean":
        if type(value) is not bool:
            raise ValidationError(f"{where} {name!r} must be true or false", name)
        return value
    if type(value) is not str:
        raise ValidationError(f"{where} {name!r} must be a string", name)
    if option.choices and value not in option.choices:
        raise ValidationError(f"{where} {name!r} must be one of {', '.join(option.choices)}, got {value!r}", name)
    return value


def unknown_option(name: str, known: Iterable[str], where: str = "query parameter") -> ValidationError:
    """The error for an option no one declared, with the closest known name as a hint."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ValidationError(f"unknown {where} {name!r}{hint} (accepted: {', '.join(names) or 'none'})", name)


# -- the model's options, from its fields ---------------------------------------------------------


def _unwrap(info: mi.Type) -> tuple[mi.Type, str]:
    """The field's type without `| None` and `Annotated` metadata, and its description."""
    description = ""
    if isinstance(info, mi.UnionType):
        kinds = [t for t in info.types if not isinstance(t, mi.NoneType)]
        if len(kinds) == 1:
            info = kinds[0]
    if isinstance(info, mi.Metadata):
        description = str((info.extra_json_schema or {}).get("description", ""))
        info = info.type
    return info, description


@functools.cache
def options_of(model: type[msgspec.Struct]) -> tuple[Option, ...]:
    """A model's fields as the options a front end declares (wire name, kind, bounds, help)."""
    found = []
    info = mi.type_info(model)
    assert isinstance(info, mi.StructType)
    for field in info.fields:
        kind_info, help_text = _unwrap(field.type)
        default = None if field.default is msgspec.NODEFAULT else field.default
        name = field.encode_name
        default = None if field.default is msgspec.NODEFAULT else field.default
        if isinstance(kind_info, mi.IntType):
            minimum = kind_info.ge if kind_info.ge is not None else 0
            maximum = kind_info.le if kind_info.le is not None else MAX_INT64
            option = Option(name, "integer", help_text, minimum, maximum, default=default, attribute=field.name)
        elif isinstance(kind_info, mi.LiteralType):
            choices = tuple(str(v) for v in kind_info.values)
            option = Option(name, "string", help_text, choices=choices, default=default, attribute=field.name)
        elif isinstance(kind_info, mi.BoolType):
            option = Option(name, "boolean", help_text, default=default, attribute=field.name)
        elif isinstance(kind_info, mi.VarTupleType | mi.ListType):
            option = Option(name, "list", help_text, default=default, attribute=field.name)
        else:
            option = Option(name, "string", help_text, default=default, attribute=field.name)
        found.append(option)
    return tuple(found)


Model = TypeVar("Model", bound=msgspec.Struct)


def build(model: type[Model], values: Mapping[str, Any]) -> Model:
    """The model from values already parsed, by wire name (missing or None: the default)."""
    given = {}
    for option in options_of(model):
        value = values.get(option.name)
        if value is not None:
            given[option.attr] = tuple(value) if option.kind == "list" else value
    result = model(**given)
    check = getattr(result, "check", None)
    if check is not None:
        check()
    return result


def from_query(
    model: type[Model], query: Mapping[str, Sequence[str]], *, also: Iterable[str] = (), where: str = "query parameter"
) -> Model:
    """The model from query parameters (each name with its texts); names in `also` are skipped."""
    declared = {option.name: option for option in options_of(model)}
    skipped = set(also)
    values: dict[str, Any] = {}
    for name, texts in query.items():
        if name in skipped:
            continue
        option = declared.get(name)
        if option is None:
            raise unknown_option(name, declared, where)
        values[name] = parse_text(option, texts, where)
    return build(model, values)


def from_json(
    model: type[Model],
    value: Any,
    *,
    also: Iterable[str] = (),
    numbers_as_text: bool = False,
    what: str = "a request",
) -> Model:
    """The model from a JSON object's fields; fields in `also` (read by the caller) are skipped."""
    if value is None:
        value = {}
    if type(value) is not dict:
        raise ValidationError(f"{what} must be a JSON object")
    options = options_of(model)
    skipped = set(also)
    known = {option.name for option in options} | skipped
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]!r} in {what}; known: {', '.join(sorted(known))}", unknown[0])
    values = {
        option.name: parse_json_value(option, value.get(option.name), numbers_as_text=numbers_as_text)
        for option in options
    }
    return build(model, values)


def to_json(request: msgspec.Struct) -> dict[str, Any]:
    """The fields that are set, by wire name (what a client sends; None fields left out)."""
    return {
        option.name: list(value) if isinstance(value, tuple) else value
        for option in options_of(type(request))
        if (value := getattr(request, option.attr)) is not None
    }


# -- the model ---------------------------------------------------------------------------------


def _meta(description: str, minimum: int = 0, maximum: int = MAX_INT64) -> msgspec.Meta:
    return msgspec.Meta(ge=minimum, le=maximum, description=description)


StreamTypeName = Literal["cold", "hot", "hot-cold"]
OrderId = Annotated[int, _meta("An order-id: 0 or more (events are numbered from 1).")]
FromOrderId = Annotated[int, _meta("First order-id (inclusive; 0 and 1 both mean from the first event).")]
ToOrderId = Annotated[int, _meta("Last order-id (inclusive); the replay ends there.")]
FromVersion = Annotated[int, _meta("First stream-version (inclusive; not for __all__, a category or a wildcard).")]
FromTime = Annotated[int, _meta("Only events whose event-time (epoch ms) is at least this.")]
Limit = Annotated[int, _meta("Stop after this many events.", minimum=1)]
EventTypes = Annotated[tuple[str, ...], msgspec.Meta(description="Only these event types.")]
Names = Annotated[tuple[str, ...], msgspec.Meta(description="One or more names.")]

FILTER_OPTION_NAMES: Final = ("stream-prefix", "event-type-prefix", "stream-regex", "event-type-regex", "category")


class ReplayOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which events a replay (or a subscription) delivers, and how: the same options over HTTP
    (query parameters), AMQP and Muon (JSON fields), the CLI and the Python clients."""

    stream_type: Annotated[
        StreamTypeName,
        msgspec.Meta(description="cold (history, then end), hot (live only) or hot-cold (history, then live)."),
    ] = msgspec.field(default="hot-cold", name="stream-type")
    from_order_id: FromOrderId | None = msgspec.field(default=None, name="from")
    from_version: FromVersion | None = msgspec.field(default=None, name="from-version")
    from_time: FromTime | None = msgspec.field(default=None, name="from-time")
    to_order_id: ToOrderId | None = msgspec.field(default=None, name="to")
    event_types: EventTypes | None = msgspec.field(default=None, name="event-types")
    limit: Limit | None = None
    stream_prefix: (
        Annotated[
            tuple[str, ...],
            msgspec.Meta(description="__all__ or a category: only streams whose name starts with one of these."),
        ]
        | None
    ) = msgspec.field(default=None, name="stream-prefix")
    event_type_prefix: (
        Annotated[tuple[str, ...], msgspec.Meta(description="Only event types starting with one of these.")] | None
    ) = msgspec.field(default=None, name="event-type-prefix")
    stream_regex: (
        Annotated[str, msgspec.Meta(description="__all__ or a category: only stream names this regex finds.")] | None
    ) = msgspec.field(default=None, name="stream-regex")
    event_type_regex: Annotated[str, msgspec.Meta(description="Only event types this regex finds.")] | None = (
        msgspec.field(default=None, name="event-type-regex")
    )
    category: (
        Annotated[
            tuple[str, ...],
            msgspec.Meta(description="__all__: only streams of these categories (a name's part before its first '-')."),
        ]
        | None
    ) = None

    def check(self) -> None:
        """Refuse a bad filter (a regex that does not compile, a category with '-', ...)."""
        self.event_filter()

    def event_filter(self) -> EventFilter | None:
        """The filter the options give for `__all__` and categories (None when they give none)."""
        found = EventFilter.from_mapping(
            {
                "stream-prefix": list(self.stream_prefix) if self.stream_prefix else None,
                "event-type-prefix": list(self.event_type_prefix) if self.event_type_prefix else None,
                "stream-regex": self.stream_regex,
                "event-type-regex": self.event_type_regex,
                "category": list(self.category) if self.category else None,
            }
        )
        return None if found.empty else found

    def subscribe_args(self) -> dict[str, Any]:
        """Keyword arguments of `EventStore.subscribe` (after its stream and stream type)."""
        return {
            "from_order_id": self.from_order_id,
            "from_version": self.from_version,
            "from_time": self.from_time,
            "to_order_id": self.to_order_id,
            "event_types": list(self.event_types) if self.event_types is not None else None,
            "limit": self.limit,
            "event_filter": self.event_filter(),
        }


MAX_PAGE: Final = 1000
"""Most events (or streams, categories) in one page of a paging read."""
DEFAULT_PAGE: Final = 50
"""Events in a page when the request says nothing (Photon's page size)."""


class PageOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One page of a stream's events (or `__all__`'s), oldest or newest first."""

    from_order_id: Annotated[int, _meta("First order-id (inclusive; with direction=backward, the newest).")] | None = (
        msgspec.field(default=None, name="from")
    )
    from_version: (
        Annotated[
            int,
            _meta("First stream-version (inclusive; with direction=backward, the newest; not for __all__)."),
        ]
        | None
    ) = msgspec.field(default=None, name="from-version")
    limit: (
        Annotated[int, _meta(f"Most events in the page (default {DEFAULT_PAGE}).", minimum=1, maximum=MAX_PAGE)] | None
    ) = None
    direction: (
        Annotated[
            Literal["forward", "backward"],
            msgspec.Meta(
                description="forward (oldest first, the default) or backward (newest first, from the newest event "
                "or from from/from-version)"
            ),
        ]
        | None
    ) = None
    event_types: (
        Annotated[tuple[str, ...], msgspec.Meta(description="Only events of these types (comma-separated).")] | None
    ) = msgspec.field(default=None, name="event-types")


# -- bodies (JSON), for the schemas of the HTTP API and the clients ---------------------------------


class QueryItemBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Events of one of `event-types` (any type when empty) carrying every one of `tags`."""

    event_types: list[str] = msgspec.field(default_factory=list, name="event-types")
    tags: list[str] = msgspec.field(default_factory=list)


class ConditionBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Store only if no event matching `query` was stored after `after` (an order-id; 0: at all)."""

    query: list[QueryItemBody] = msgspec.field(default_factory=list)
    after: OrderId | None = None


ExpectedVersion = (
    Annotated[int, _meta("The stream's version (0: the stream must not exist).")] | Literal["any", "no-stream"]
)


class EmitEnvelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An emit request's wrapper: the events and what the append checks before storing them
    (read by `photon.core.append_request.parse_emit`, for HTTP, AMQP and the clients alike)."""

    events: list[dict[str, Any]]
    expected_version: ExpectedVersion | None = msgspec.field(default=None, name="expected-version")
    expected_versions: dict[str, ExpectedVersion] | None = msgspec.field(default=None, name="expected-versions")
    condition: ConditionBody | None = None


class ReadMatchingRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Events of client streams matching a query, after a position (what a conditional append checks)."""

    query: list[QueryItemBody] = msgspec.field(default_factory=list)
    after: OrderId | None = None
    limit: Annotated[int, _meta("Most events in the page.", minimum=1, maximum=MAX_PAGE)] = DEFAULT_PAGE


class AckRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A durable consumer's acknowledgement: the last event it has processed."""

    order_id: OrderId = msgspec.field(name="order-id")


class ErrorAnswer(msgspec.Struct, frozen=True):
    """Every error answer: what is wrong, and the field or parameter at fault when there is one."""

    error: str
    field: str | None = None
    parameter: str | None = None


def field_names(model: type[msgspec.Struct]) -> tuple[str, ...]:
    """A body type's fields by their wire names, in order (what its parser accepts)."""
    return tuple(field.encode_name for field in msgspec.structs.fields(model))


REQUEST_TYPES: Final = (
    ReplayOptions,
    PageOptions,
    EmitEnvelope,
    ConditionBody,
    QueryItemBody,
    ReadMatchingRequest,
    AckRequest,
    ErrorAnswer,
)
"""The model's types, for `msgspec.json.schema_components`."""
