"""Declared query parameters: parsed, type-checked, unknown ones refused, and documented.

A route lists its parameters once with `@accepts(...)`; the same declaration parses the
request and feeds the OpenAPI description, so the two cannot drift apart. Parameters of the
core's request model (replay options, page options) come from the model (`params_of`), and
every value is read by the core's parser (`photon.core.requests`): integers strictly, bounded.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from photon.core.errors import ValidationError
from photon.core.requests import Option, options_of, parse_text, unknown_option
from photon.server.http.errors import RequestError

#: Accepted by every /api route (the token, Photon's way).
ALWAYS_ALLOWED = frozenset({"access_token"})

Param = Option
"""A declared query parameter: the core's `Option` (name, kind, help, bounds, choices)."""


def params_of(model: type[msgspec.Struct], *, help: Mapping[str, str] | None = None) -> tuple[Param, ...]:
    """A request model's fields as query parameters (`help` overrides a field's description)."""
    return tuple(
        dataclasses.replace(option, help=help[option.name]) if help and option.name in help else option
        for option in options_of(model)
    )


@dataclass
class RouteDoc:
    """What the OpenAPI description says about a route beyond its path and method.

    `request` and `response` are the types of the body and of the answer (msgspec types, or a
    JSON schema as a dict; see `photon.server.http.schemas`), or a tuple of them for a body or an
    answer that is any one of them; `status` is the answer's status.
    """

    params: tuple[Param, ...] = ()
    body: str | None = None
    answer: str = ""
    errors: dict[int, str] = field(default_factory=dict)
    auth: bool = True
    streaming: bool = False
    request: Any = None
    response: Any = None
    status: int = 200
    body_required: bool = True
    request_media: tuple[str, ...] = ("application/json",)
    form: dict[str, Any] | None = None
    """The body as a multipart/form-data form too (its JSON schema), when the route takes one."""
    response_media: tuple[str, ...] = ()
    """The answer's media types (default: JSON, or NDJSON and server-sent events when streaming)."""
    path: dict[str, Any] = field(default_factory=dict)
    """Path parameters whose type is narrower than a name (msgspec types, by name)."""
    strict_query: bool = False
    """Whether an unknown query parameter is refused (400), as `@accepts` routes do."""


Endpoint = Callable[[Request], Awaitable[Response]]
QueryEndpoint = Callable[[Request, dict[str, Any]], Awaitable[Response]]


def parse_query(request: Request, params: tuple[Param, ...]) -> dict[str, Any]:
    """The declared parameters' values by name (defaults filled in); 400 naming any bad one."""
    declared = {p.name: p for p in params}
    result: dict[str, Any] = {p.name: p.default for p in params}
    query = request.query_params
    try:
        for name in query:
            if name in ALWAYS_ALLOWED:
                continue
            spec = declared.get(name)
            if spec is None:
                raise unknown_option(name, declared)
            result[name] = parse_text(spec, query.getlist(name))
    except ValidationError as exc:
        raise RequestError(str(exc), parameter=exc.field) from None
    return result


def accepts(
    *params: Param,
    body: str | None = None,
    answer: str = "",
    errors: dict[int, str] | None = None,
    auth: bool = True,
    streaming: bool = False,
    request: Any = None,
    response: Any = None,
    status: int = 200,
    body_required: bool = True,
    path: dict[str, Any] | None = None,
) -> Callable[[QueryEndpoint], Endpoint]:
    """Declare a route's query parameters (and documentation); the route gets them parsed."""
    doc = RouteDoc(
        params,
        body,
        answer,
        errors or {},
        auth,
        streaming,
        request=request,
        response=response,
        status=status,
        body_required=body_required,
        path=path or {},
        strict_query=True,
    )

    def decorate(func: QueryEndpoint) -> Endpoint:
        @functools.wraps(func)
        async def endpoint(request: Request) -> Response:
            return await func(request, parse_query(request, params))

        endpoint.route_doc = doc  # type: ignore[attr-defined]
        return endpoint

    return decorate
