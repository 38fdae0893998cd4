"""The OpenAPI 3 description, built from the routes themselves (path, method, docstring, `@accepts`).

Served at ``/openapi.json`` and at Photon's Swagger path ``/api-docs``, without a token.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from photon import __version__
from photon.server.http.errors import json_response
from photon.server.http.params import RouteDoc

_PATH_PARAM = re.compile(r"{([^}:]+)(:[^}]+)?}")
_SCHEMA = {"integer": {"type": "integer"}, "string": {"type": "string"}, "boolean": {"type": "boolean"}}
_ERROR = {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}


def _operation(route: Route, method: str) -> dict[str, Any]:
    endpoint = route.endpoint
    doc: RouteDoc = getattr(endpoint, "route_doc", RouteDoc(auth=not route.path.startswith("/auth")))
    summary = (endpoint.__doc__ or "").strip().splitlines()
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name, _ in _PATH_PARAM.findall(route.path)
    ]
    for param in doc.params:
        schema: dict[str, Any] = (
            {"type": "array", "items": {"type": "string"}} if param.kind == "list" else dict(_SCHEMA[param.kind])
        )
        if param.choices:
            schema["enum"] = list(param.choices)
        if param.minimum is not None:
            schema["minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
        parameters.append({"name": param.name, "in": "query", "description": param.help, "schema": schema})
    ok_type = "application/x-ndjson" if doc.streaming else "application/json"
    responses: dict[str, Any] = {"200": {"description": doc.answer or "OK", "content": {ok_type: {}}}}
    if doc.streaming:
        responses["200"]["content"]["text/event-stream"] = {}
    for status, text in sorted(doc.errors.items()):
        responses[str(status)] = {"description": text, "content": _ERROR}
    if doc.auth:
        responses["401"] = {"description": "Not authorized: no valid token", "content": _ERROR}
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}_{endpoint.__name__}",
        "summary": summary[0] if summary else route.path,
        "parameters": parameters,
        "responses": responses,
    }
    if doc.body:
        operation["requestBody"] = {"description": doc.body, "content": {"application/json": {}}}
    if doc.auth:
        operation["security"] = [{"token": []}, {"bearer": []}, {"access_token": []}]
    return operation


def describe(routes: list[BaseRoute]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in routes:
        if not isinstance(route, Route) or route.methods is None:
            continue
        path = _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", route.path)
        for method in sorted(route.methods - {"HEAD"}):
            paths.setdefault(path, {})[method.lower()] = _operation(route, method)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Photon event store",
            "version": __version__,
            "description": "Get a token with GET /auth/token (HTTP Basic admin.user/admin.pass), "
            "then send it as 'Authorization: Token <t>', 'Authorization: Bearer <t>' or ?access_token=<t>. "
            'Every error answers {"error": "..."}.',
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Token <t>"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "access_token": {"type": "apiKey", "in": "query", "name": "access_token"},
                "basic": {"type": "http", "scheme": "basic"},
            }
        },
    }


async def openapi(request: Request) -> Response:
    """This description of the HTTP API (OpenAPI 3.1; no token needed)."""
    spec = getattr(request.app.state, "openapi", None)
    if spec is None:
        spec = request.app.state.openapi = describe(request.app.routes)
    return json_response(spec)


openapi.route_doc = RouteDoc(auth=False, answer="the OpenAPI document")  # type: ignore[attr-defined]


def openapi_routes() -> list[BaseRoute]:
    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/api-docs", openapi, methods=["GET"]),
    ]
