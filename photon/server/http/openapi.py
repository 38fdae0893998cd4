"""The OpenAPI 3.1 description, generated from the routes and the request model.

Each route declares what it takes and answers once, in its `RouteDoc` (`@accepts(...)`): its
query parameters (the core's request model, `photon.core.requests`), the type of its body and
of its answer (msgspec types: the model's, and `photon.server.http.schemas` for events, pages
and answers). The schemas come from those types through `msgspec.json.schema_components`, so
the description cannot drift from the model. Every operation lists each status it answers:
its own (404, 409, 410, ...), 400 for a bad or unknown query parameter or a bad body, 401 when
it needs a token, 413 when it takes a body, 503 when the store cannot serve it.

Served at ``/openapi.json`` and at Photon's Swagger path ``/api-docs``, without a token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from photon import __version__
from photon.core.requests import MAX_INT64, ErrorAnswer
from photon.server.http.errors import json_response
from photon.server.http.params import Param, RouteDoc
from photon.server.http.schemas import (
    JSON_VALUE,
    LIST_ITEM_TYPES,
    PATH_TYPES,
    QUERY_TYPES,
    ListItem,
    Name,
    NewEvent,
    json_value,
)

_PATH_PARAM = re.compile(r"{([^}:]+)(:[^}]+)?}")
REF_TEMPLATE: Final = "#/components/schemas/{name}"
JSON: Final = "application/json"
NDJSON: Final = "application/x-ndjson"
SSE: Final = "text/event-stream"

#: Path parameters that are not plain names.
PATH_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "order_id": {"type": "integer", "minimum": 0, "maximum": MAX_INT64},
}


def _param_schema(param: Param) -> dict[str, Any]:
    if param.name in QUERY_TYPES:
        return msgspec.json.schema(QUERY_TYPES[param.name])
    if param.kind == "list":
        item = msgspec.json.schema(LIST_ITEM_TYPES.get(param.name, ListItem))
        return {"type": "array", "items": item, "minItems": 1}
    if param.kind == "integer":
        return {
            "type": "integer",
            "minimum": param.minimum if param.minimum is not None else 0,
            "maximum": param.maximum if param.maximum is not None else MAX_INT64,
        }
    if param.kind == "boolean":
        return {"type": "boolean"}
    if param.choices:
        return {"type": "string", "enum": list(param.choices)}
    return {"type": "string"}


def _path_schema(path: str, name: str, doc: RouteDoc) -> dict[str, Any]:
    if name in doc.path:
        return msgspec.json.schema(doc.path[name])
    for start, types in PATH_TYPES.items():
        if path.startswith(start) and name in types:
            return msgspec.json.schema(types[name])
    return PATH_SCHEMAS.get(name, {"type": "string", "minLength": 1})


def operation_id(method: str, path: str) -> str:
    """`get_api_group_name_stream` for GET /api/group/{name}/stream: unique, as OpenAPI asks."""
    return "_".join([method.lower(), *re.findall(r"[A-Za-z0-9]+", _PATH_PARAM.sub(r"\1", path))])


def route_doc(route: Route) -> RouteDoc:
    doc: RouteDoc = getattr(route.endpoint, "route_doc", None) or RouteDoc(auth=not route.path.startswith("/auth"))
    return doc


class _Schemas:
    """The types every route names, turned into schemas at once (shared ones become components)."""

    def __init__(self, docs: Iterable[RouteDoc]) -> None:
        types: list[Any] = [ErrorAnswer]
        for doc in docs:
            for named in (doc.request, doc.response):
                for kind in named if isinstance(named, tuple) else (named,):
                    if kind is not None and not isinstance(kind, dict) and all(kind is not t for t in types):
                        types.append(kind)
        schemas, self.components = msgspec.json.schema_components(types, ref_template=REF_TEMPLATE)
        self._by_type = list(zip(types, schemas, strict=True))
        _refine(self.components)

    def of(self, kind: Any) -> dict[str, Any]:
        """The schema of a type, a JSON schema (as is) or a tuple of either (any one of them)."""
        if isinstance(kind, tuple):
            return {"anyOf": [self.of(one) for one in kind]}
        if isinstance(kind, dict):
            return kind
        return next(schema for known, schema in self._by_type if known is kind)


def _refine(components: dict[str, Any]) -> None:
    """What the core's body types leave open: an envelope's events are `NewEvent`s (one, or a list
    of at least one), its expected-version may be left out but not null (a null is refused: see
    `expected_version_field`); a query item's types and tags are names. And what msgspec types
    cannot say: a group on one stream (not __all__ or a category) filters by event type only."""
    value = REF_TEMPLATE.format(name=JSON_VALUE)
    components[JSON_VALUE] = json_value(value)
    event = components.get(NewEvent.__name__)
    if event is not None:
        event["properties"]["payload"] = {"type": "object", "additionalProperties": {"$ref": value}}
    item = components.get("QueryItemBody")
    if item is not None:
        for key in ("event-types", "tags"):
            item["properties"][key]["items"] = msgspec.json.schema(Name)
    group = components.get("GroupDefinition")
    if group is not None:
        by_type = ["event-types", "event-type-prefix", "event-type-regex"]
        group["if"] = {
            "required": ["stream"],
            "properties": {"stream": {"not": {"pattern": "^(__all__$|__category__:)"}}},
        }
        group["then"] = {
            "properties": {
                "filter": {"anyOf": [{"type": "null"}, {"type": "object", "propertyNames": {"enum": by_type}}]}
            }
        }
    envelope = components.get("EmitEnvelope")
    if envelope is None:
        return
    properties = envelope["properties"]
    # expected-version or expected-versions, not both (a null expected-versions is left out).
    both = {
        "required": ["expected-version", "expected-versions"],
        "properties": {"expected-versions": {"type": "object"}},
    }
    envelope["not"] = both
    event = {"$ref": REF_TEMPLATE.format(name=NewEvent.__name__)}
    properties["events"] = {"anyOf": [event, {"type": "array", "items": event, "minItems": 1}]}
    version = properties.get("expected-version")
    if version is not None:
        version["anyOf"] = [option for option in version["anyOf"] if option != {"type": "null"}]
        version.pop("default", None)


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {JSON: {"schema": {"$ref": REF_TEMPLATE.format(name="ErrorAnswer")}}},
    }


def _operation(route: Route, method: str, doc: RouteDoc, schemas: _Schemas) -> dict[str, Any]:
    endpoint = route.endpoint
    summary = (endpoint.__doc__ or "").strip().splitlines()
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": _path_schema(route.path, name, doc),
        }
        for name, _ in _PATH_PARAM.findall(route.path)
    ]
    for param in doc.params:
        parameters.append(
            {"name": param.name, "in": "query", "description": param.help, "schema": _param_schema(param)}
        )

    media = doc.response_media or ((NDJSON, SSE) if doc.streaming else (JSON,))
    answer: dict[str, Any] = {"description": doc.answer or "OK", "content": {}}
    for kind in media:
        content: dict[str, Any] = {}
        if doc.response is not None and kind == JSON:
            content["schema"] = schemas.of(doc.response)
        elif doc.response is not None and kind == NDJSON:
            # OpenAPI 3.1 has no schema for a sequence of values: the lines are shown as a list.
            line = schemas.of(doc.response)
            content["schema"] = {"type": "array", "items": line, "description": "one JSON value per line"}
        answer["content"][kind] = content
    responses: dict[str, Any] = {str(doc.status): answer}
    declared = doc.strict_query or bool(doc.params)
    if declared or doc.request is not None:
        reasons = ["a bad or unknown query parameter"] if declared else []
        if doc.request is not None:
            reasons.append("a malformed body or a bad field")
        responses["400"] = _error(" or ".join(reasons))
    if doc.auth:
        responses["401"] = _error("Not authorized: no valid token")
    if doc.request is not None:
        responses["413"] = _error("the body is over its limit (rest.body.max.bytes)")
    if doc.auth:
        responses["503"] = _error("the store is closed or its backend does not answer: try again later")
    for status, text in doc.errors.items():
        if str(status) in responses and status != 400:
            continue
        if status == 400 and "400" in responses:
            text = f"{responses['400']['description']}; {text}"
        responses[str(status)] = _error(text)
    operation: dict[str, Any] = {
        "operationId": operation_id(method, route.path),
        "summary": summary[0] if summary else route.path,
        "parameters": parameters,
        "responses": dict(sorted(responses.items())),
    }
    if doc.request is not None:
        content = {kind: {"schema": schemas.of(doc.request)} for kind in doc.request_media}
        if doc.form is not None:
            content["multipart/form-data"] = {"schema": doc.form}
        operation["requestBody"] = {"description": doc.body or "", "required": doc.body_required, "content": content}
    if doc.auth:
        operation["security"] = [{"token": []}, {"bearer": []}, {"access_token": []}]
    return operation


def describe(routes: list[BaseRoute]) -> dict[str, Any]:
    served = [route for route in routes if isinstance(route, Route) and route.methods is not None]
    schemas = _Schemas(route_doc(route) for route in served)
    paths: dict[str, Any] = {}
    for route in served:
        path = _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", route.path)
        assert route.methods is not None
        for method in sorted(route.methods - {"HEAD"}):
            paths.setdefault(path, {})[method.lower()] = _operation(route, method, route_doc(route), schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Photon event store",
            "version": __version__,
            "description": "Get a token with GET /auth/token (HTTP Basic admin.user/admin.pass), "
            "then send it as 'Authorization: Token <t>', 'Authorization: Bearer <t>' or ?access_token=<t>. "
            'Every error answers {"error": "..."}. OPTIONS on any path answers 204 with its methods in Allow. '
            "Integers in JSON bodies are JSON integers (2.0 is refused), within 64 bits. "
            "A request head over 64 KiB or with more than 100 header fields is answered 431.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Token <t>"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "access_token": {"type": "apiKey", "in": "query", "name": "access_token"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }


async def openapi(request: Request) -> Response:
    """This description of the HTTP API (OpenAPI 3.1; no token needed)."""
    spec = getattr(request.app.state, "openapi", None)
    if spec is None:
        spec = request.app.state.openapi = describe(request.app.routes)
    return json_response(spec)


openapi.route_doc = RouteDoc(  # type: ignore[attr-defined]
    auth=False, answer="the OpenAPI document", response={"type": "object"}
)


def openapi_routes() -> list[BaseRoute]:
    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/api-docs", openapi, methods=["GET"]),
    ]
