"""Declared query parameters: parsed, type-checked, unknown ones refused, and documented.

A route lists its parameters once with `@accepts(...)`; the same declaration parses the
request and feeds the OpenAPI description, so the two cannot drift apart.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from photon.server.http.errors import RequestError

Kind = Literal["integer", "string", "list", "boolean"]

#: Accepted by every /api route (the token, Photon's way).
ALWAYS_ALLOWED = frozenset({"access_token"})


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind
    help: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    default: Any = None


@dataclass
class RouteDoc:
    """What the OpenAPI description says about a route beyond its path and method."""

    params: tuple[Param, ...] = ()
    body: str | None = None
    answer: str = ""
    errors: dict[int, str] = field(default_factory=dict)
    auth: bool = True
    streaming: bool = False


Endpoint = Callable[[Request], Awaitable[Response]]
QueryEndpoint = Callable[[Request, dict[str, Any]], Awaitable[Response]]


def parse_query(request: Request, params: tuple[Param, ...]) -> dict[str, Any]:
    """The declared parameters' values by name (defaults filled in); 400 naming any bad one."""
    declared = {p.name: p for p in params}
    result: dict[str, Any] = {p.name: p.default for p in params}
    query = request.query_params
    for name in query:
        if name in ALWAYS_ALLOWED:
            continue
        spec = declared.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, list(declared), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(declared)) or "none"
            raise RequestError(f"unknown query parameter {name!r}{hint} (accepted: {known})", parameter=name)
        values = query.getlist(name)
        if spec.kind == "list":
            items = [item.strip() for value in values for item in value.split(",") if item.strip()]
            if not items:
                raise RequestError(f"query parameter {name!r} is empty", parameter=name)
            result[name] = items
            continue
        if len(values) > 1:
            raise RequestError(f"query parameter {name!r} given {len(values)} times", parameter=name)
        result[name] = _parse_one(spec, values[0])
    return result


def _parse_one(spec: Param, text: str) -> Any:
    name = spec.name
    if spec.kind == "integer":
        try:
            value = int(text)
        except ValueError:
            raise RequestError(
                f"query parameter {name!r} must be a whole number, got {text!r}", parameter=name
            ) from None
        if spec.minimum is not None and value < spec.minimum:
            raise RequestError(f"query parameter {name!r} must be at least {spec.minimum}, got {value}", parameter=name)
        if spec.maximum is not None and value > spec.maximum:
            raise RequestError(f"query parameter {name!r} must be at most {spec.maximum}, got {value}", parameter=name)
        return value
    if spec.kind == "boolean":
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise RequestError(f"query parameter {name!r} must be true or false, got {text!r}", parameter=name)
    if spec.choices and text not in spec.choices:
        raise RequestError(
            f"query parameter {name!r} must be one of {', '.join(spec.choices)}, got {text!r}", parameter=name
        )
    return text


def accepts(
    *params: Param,
    body: str | None = None,
    answer: str = "",
    errors: dict[int, str] | None = None,
    auth: bool = True,
    streaming: bool = False,
) -> Callable[[QueryEndpoint], Endpoint]:
    """Declare a route's query parameters (and documentation); the route gets them parsed."""
    doc = RouteDoc(params, body, answer, errors or {}, auth, streaming)

    def decorate(func: QueryEndpoint) -> Endpoint:
        @functools.wraps(func)
        async def endpoint(request: Request) -> Response:
            return await func(request, parse_query(request, params))

        endpoint.route_doc = doc  # type: ignore[attr-defined]
        return endpoint

    return decorate
