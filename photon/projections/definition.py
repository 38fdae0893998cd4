"""Projection definitions: Photon's template fields, read from Hy or Python source.

A definition is what `__config__` records and what a worker needs to rebuild a projection:
its name, its language, its source text, where it came from (a file, the HTTP API, or
built in) and, for templates posted over HTTP, the template fields given beside the code.
`load` compiles the source and checks every field, so a bad definition is caught once, in
the manager, with a message naming the problem; the worker compiles the same text again
(code objects do not travel between processes).

Field names follow Photon's template: ``projection-name``, ``stream-name`` (default
``__all__``), ``language`` (``hy`` or ``python``), ``reduction``, ``initial-value`` and the
optional ``event-types`` filter. In Python source they are module-level names with
underscores (``projection_name``, ``initial_value``, ...); in Hy source ``(setv
projection-name ...)`` names the same thing, since Hy mangles ``-`` to ``_``.
"""

from __future__ import annotations

import hashlib
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from photon.core.errors import ValidationError
from photon.core.events import ALL_STREAM, CATEGORY_SEPARATOR, DOT_SEGMENTS, MAX_NAME_LENGTH, names_no_category

LANGUAGES = ("hy", "python")
EXTENSIONS = {".hy": "hy", ".py": "python"}
ORIGINS = ("file", "api", "builtin")

#: Template fields that may be given beside the code (HTTP) or inside it (files).
TEMPLATE_FIELDS = ("projection-name", "stream-name", "initial-value", "event-types")

Reduction = Callable[[Any, dict[str, Any]], Any]


class DefinitionError(ValidationError):
    """A projection's source or template is unusable; the message says why."""


@dataclass(frozen=True)
class ProjectionSpec:
    """A projection as registered: enough to load it anywhere (it is the `__config__` payload)."""

    name: str
    language: str
    source: str
    origin: str = "api"
    path: str | None = None
    """For files: the file's path, as watched."""
    fields: Mapping[str, Any] = field(default_factory=dict)
    """Template fields given beside the code; they win over the same fields inside it."""

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "projection-name": self.name,
            "language": self.language,
            "source": self.source,
            "origin": self.origin,
            "path": self.path,
        }
        for key, value in self.fields.items():
            if key != "projection-name":
                payload[key] = value
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ProjectionSpec:
        name = payload.get("projection-name")
        if not isinstance(name, str) or not name:
            raise DefinitionError("a projection needs a 'projection-name'", "projection-name")
        fields = {k: payload[k] for k in TEMPLATE_FIELDS if k in payload and k != "projection-name"}
        return cls(
            name=name,
            language=str(payload.get("language") or "python"),
            source=str(payload.get("source") or ""),
            origin=str(payload.get("origin") or "api"),
            path=payload.get("path"),
            fields=fields,
        )

    @property
    def digest(self) -> str:
        """A hash of everything that decides the fold: a checkpoint from another definition is ignored."""
        return hashlib.sha256(orjson.dumps(self.to_payload() | {"path": None}, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class Definition:
    """A compiled projection, ready to fold."""

    spec: ProjectionSpec
    stream_name: str
    initial_value: Any
    event_types: frozenset[str] | None
    reduction: Reduction

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def language(self) -> str:
        return self.spec.language


def spec_from_template(template: Any) -> ProjectionSpec:
    """A spec from Photon's HTTP template (``reduction`` is code text)."""
    if not isinstance(template, Mapping):
        raise DefinitionError("a projection template must be a JSON object")
    known = {*TEMPLATE_FIELDS, "language", "reduction"}
    unknown = sorted(set(template) - known)
    if unknown:
        raise DefinitionError(
            f"unknown field {unknown[0]!r} in the projection template; known fields: {', '.join(sorted(known))}",
            unknown[0],
        )
    name = check_name(template.get("projection-name"))
    language = template.get("language", "python")
    if language not in LANGUAGES:
        raise DefinitionError(f"'language' must be one of {', '.join(LANGUAGES)}, got {language!r}", "language")
    code = template.get("reduction")
    if not isinstance(code, str) or not code.strip():
        raise DefinitionError("'reduction' must be the reduction's code, as text", "reduction")
    fields = {k: template[k] for k in TEMPLATE_FIELDS if k in template and k != "projection-name"}
    return ProjectionSpec(name=name, language=language, source=code, origin="api", fields=fields)


def spec_from_file(path: Path, name: str | None = None) -> ProjectionSpec:
    """A spec from a projection file (its name is decided by `load`, or by the file name)."""
    language = EXTENSIONS.get(path.suffix)
    if language is None:
        raise DefinitionError(f"{path.name}: projection files end in .hy or .py")
    source = path.read_text(encoding="utf-8")
    return ProjectionSpec(name=name or path.stem, language=language, source=source, origin="file", path=str(path))


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise DefinitionError("'projection-name' must be a non-empty string", "projection-name")
    if len(name) > MAX_NAME_LENGTH or not name.isprintable() or "/" in name:
        raise DefinitionError(
            f"'projection-name' must be 1 to {MAX_NAME_LENGTH} printable characters without '/'", "projection-name"
        )
    if name in DOT_SEGMENTS:
        raise DefinitionError(
            f"'projection-name' must not be {name!r}: URLs resolve it as a path segment", "projection-name"
        )
    return name


# -- compiling -------------------------------------------------------------------------------


def _run_python(spec: ProjectionSpec) -> tuple[dict[str, Any], Any]:
    """Run Python source; returns its namespace and, for a lone expression, its value."""
    filename = spec.path or f"<projection {spec.name}>"
    try:
        code = compile(spec.source, filename, "eval")
    except SyntaxError:
        code = None
    namespace: dict[str, Any] = {"__name__": f"photon_projection_{abs(hash(spec.name))}"}
    if code is not None:  # a lone expression such as ``lambda state, event: ...``
        return namespace, eval(code, namespace)
    try:
        module_code = compile(spec.source, filename, "exec")
    except SyntaxError as exc:
        raise DefinitionError(f"syntax error in {_where(spec)}, line {exc.lineno}: {exc.msg}") from None
    exec(module_code, namespace)
    return namespace, None


def _run_hy(spec: ProjectionSpec) -> tuple[dict[str, Any], Any]:
    """Run Hy source form by form; returns its namespace and the last form's value."""
    import hy

    filename = spec.path or f"<projection {spec.name}>"
    module = types.ModuleType(f"photon_projection_{abs(hash(spec.name))}")
    try:
        forms = list(hy.read_many(spec.source, filename=filename))
    except SyntaxError as exc:
        raise DefinitionError(f"syntax error in {_where(spec)}: {_first_line(exc)}") from None
    last: Any = None
    for form in forms:
        form.filename = filename  # what its code is compiled as (else `<string>`): a traceback names the file
        last = hy.eval(form, module.__dict__, module=module)
    return module.__dict__, last


def _keyword_name(key: Any) -> Any:
    # A Hy keyword (`:projection-name`) used as a key of the definition map.
    return getattr(key, "name", key) if type(key).__name__ == "Keyword" else key


def _where(spec: ProjectionSpec) -> str:
    return Path(spec.path).name if spec.path else f"projection {spec.name!r}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


FOREIGN_LANGUAGES = {"clojure": "Clojure", "javascript": "JavaScript", "js-experimental": "JavaScript"}
"""Languages of the Clojure Photon's projections: restored from its backups, they cannot run here."""


def cannot_run(spec: ProjectionSpec) -> str | None:
    """Why a registered projection is kept stopped (None: it can run).

    The Clojure Photon's projections (a backup's `__config__`) are written in Clojure or
    JavaScript; Photon keeps their definition and source, and says so, rather than failing them.
    """
    language = FOREIGN_LANGUAGES.get(spec.language)
    if language is None:
        return None
    return (
        f"written in {language} for the Clojure Photon; Photon runs projections in {' or '.join(LANGUAGES)}: "
        f"its source is kept here (reduction); rewrite it and register it again under the same name"
    )


def load(spec: ProjectionSpec) -> Definition:
    """Compile a spec and check its fields; raises `DefinitionError` with the reason."""
    reason = cannot_run(spec)
    if reason is not None:
        raise DefinitionError(reason, "language")
    if spec.language not in LANGUAGES:
        raise DefinitionError(f"'language' must be one of {', '.join(LANGUAGES)}, got {spec.language!r}", "language")
    try:
        namespace, value = _run_hy(spec) if spec.language == "hy" else _run_python(spec)
    except DefinitionError:
        raise
    except SyntaxError as exc:
        raise DefinitionError(f"syntax error in {_where(spec)}: {_first_line(exc)}") from None
    except Exception as exc:
        raise DefinitionError(f"{_where(spec)} failed to load: {type(exc).__name__}: {_first_line(exc)}") from None

    found: dict[str, Any] = {}
    # A definition map as the source's value (Hy: one `{:projection-name ... :reduction ...}` form).
    if isinstance(value, Mapping):
        found.update({str(_keyword_name(k)).replace("_", "-"): v for k, v in value.items()})
    elif callable(value):
        found["reduction"] = value
    for key in (*TEMPLATE_FIELDS, "reduction"):
        python_name = key.replace("-", "_")
        if python_name in namespace:
            found.setdefault(key, namespace[python_name])
    found.update(spec.fields)

    reduction = found.get("reduction")
    if reduction is None:
        raise DefinitionError(
            f"{_where(spec)} defines no reduction: define `reduction(state, event)` returning the new state",
            "reduction",
        )
    if not callable(reduction):
        raise DefinitionError(f"{_where(spec)}: 'reduction' must be a function of (state, event)", "reduction")

    stream_name = found.get("stream-name") or ALL_STREAM
    if not isinstance(stream_name, str):
        raise DefinitionError(f"{_where(spec)}: 'stream-name' must be a string", "stream-name")
    _check_source(spec, stream_name)

    initial_value = found.get("initial-value")
    try:
        # Round-trip through JSON: checkpoints and updates carry the state as JSON.
        initial_value = orjson.loads(orjson.dumps(initial_value))
    except TypeError as exc:
        raise DefinitionError(
            f"{_where(spec)}: 'initial-value' must be JSON data (objects with string keys, arrays, strings, "
            f"numbers, booleans, null): {exc}",
            "initial-value",
        ) from None

    event_types = found.get("event-types")
    if event_types is not None:
        if isinstance(event_types, str) or not event_types or not all(isinstance(t, str) for t in event_types):
            raise DefinitionError(
                f"{_where(spec)}: 'event-types' must be a non-empty list of strings (leave it out for every type)",
                "event-types",
            )
        event_types = frozenset(event_types)

    return Definition(spec, stream_name, initial_value, event_types, reduction)


def _check_source(spec: ProjectionSpec, stream_name: str) -> None:
    """Refuse a `stream-name` no event can ever be in: a projection over it would be registered
    and never fold anything. A projection folds one stream, `__all__` or a category."""
    problem = None
    if not 0 < len(stream_name) <= MAX_NAME_LENGTH or not stream_name.isprintable():
        problem = f"must be 1 to {MAX_NAME_LENGTH} printable characters"
    elif "*" in stream_name:
        problem = "names one stream, __all__ or a category (__category__:<name>); stream names never hold '*'"
    elif stream_name in DOT_SEGMENTS:
        problem = f"must not be {stream_name!r}, which no stream is named"
    elif names_no_category(stream_name):
        problem = f"names a category as __category__:<name>, <name> without {CATEGORY_SEPARATOR!r}"
    if problem is not None:
        shown = stream_name if len(stream_name) <= 80 else stream_name[:80] + "..."
        raise DefinitionError(f"{_where(spec)}: 'stream-name' {problem}, got {shown!r}", "stream-name")


def declared_name(spec: ProjectionSpec) -> str:
    """The name a file's source gives itself (`projection-name`), else the spec's own name."""
    try:
        namespace, value = _run_hy(spec) if spec.language == "hy" else _run_python(spec)
    except Exception:
        return spec.name
    if isinstance(value, Mapping):
        for key, item in value.items():
            if str(_keyword_name(key)).replace("_", "-") == "projection-name" and isinstance(item, str):
                return item
    name = namespace.get("projection_name")
    return name if isinstance(name, str) and name else spec.name
