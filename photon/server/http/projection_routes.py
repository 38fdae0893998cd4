"""HTTP routes for projections (Photon's `/api/projection...` family), to be mounted by the server.

``projection_routes(manager, admin)`` returns starlette routes. `admin` guards the routes that
change projections (they run code): it is called with the request and may be sync or async;
it denies by raising (e.g. starlette's ``HTTPException(401)``) or by returning a `Response`,
and allows by returning anything else. `reader`, when given, guards the read routes the same way.

| method | path | answer |
|---|---|---|
| POST | /api/projection | Photon's template -> ``{"correct": true, "projection": descriptor}`` |
| GET | /api/projections | descriptors without `current-value` |
| GET | /api/projection-keys | ``{"projection-keys": [names]}`` |
| GET | /api/projection/{name} | the full descriptor |
| GET | /api/projection/{name}/updates | server-sent events: the current state, then each new one |
| GET | /api/projection/{name}/{key} | one key of the current value |
| DELETE | /api/projection/{name} | ``{"correct": true}`` |
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from photon.core.errors import NotFound, ValidationError
from photon.projections import STREAMS_PROJECTION
from photon.projections.manager import ProjectionManager
from photon.server.http.errors import photon_error_response
from photon.server.http.limits import body_limit, read_body
from photon.server.http.params import RouteDoc
from photon.server.http.schemas import Done, ProjectionCreated, ProjectionKeys, StreamSchemas

Guard = Callable[[Request], Any | Awaitable[Any]]
Endpoint = Callable[[Request], Awaitable[Response]]


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _guarded(guard: Guard | None, endpoint: Endpoint, doc: RouteDoc) -> Endpoint:
    async def run(request: Request) -> Response:
        if guard is not None:
            verdict = guard(request)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if isinstance(verdict, Response):
                return verdict
        try:
            return await endpoint(request)
        except (NotFound, ValidationError) as exc:
            return photon_error_response(exc)

    run.__name__ = endpoint.__name__
    run.__doc__ = endpoint.__doc__
    run.route_doc = doc  # type: ignore[attr-defined]
    return run


NO_PROJECTION = {404: "no such projection"}
SCHEMA_DOC = RouteDoc(
    answer='{"stream-name": str, "schemas": {schema-version: JSON schema}}',
    errors={404: "the __streams__ projection has seen no event of the stream"},
    response=StreamSchemas,
)
CREATE_DOC = RouteDoc(
    body="Photon's projection template: name, language, stream, reduction code, initial value, ...",
    answer='{"correct": true, "projection": descriptor}',
    errors={400: "a bad template (the field is named)"},
    request={"type": "object"},
    response=ProjectionCreated,
)
LIST_DOC = RouteDoc(answer="the projections' descriptors, without current-value", response=list[dict[str, Any]])
KEYS_DOC = RouteDoc(answer='{"projection-keys": [names]}', response=ProjectionKeys)
GET_DOC = RouteDoc(
    answer="the projection's descriptor with its current-value", errors=NO_PROJECTION, response=dict[str, Any]
)
DELETE_DOC = RouteDoc(answer='{"correct": true}', errors=NO_PROJECTION, response=Done)
UPDATES_DOC = RouteDoc(
    answer="server-sent events (event: update): the current state, then each new one",
    errors=NO_PROJECTION,
    response_media=("text/event-stream",),
)
KEY_DOC = RouteDoc(answer="one key of the current value", errors={404: "no such projection or key"}, response={})


def projection_routes(manager: ProjectionManager, admin: Guard, reader: Guard | None = None) -> list[Route]:
    """The projection routes over `manager`; `admin` guards POST and DELETE, `reader` the GETs."""

    async def create(request: Request) -> Response:
        try:
            template = orjson.loads(await read_body(request, body_limit(request)))
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"the request body is not valid JSON: {exc}") from None
        descriptor = await manager.create(template)
        return JSONResponse({"correct": True, "projection": descriptor})

    async def list_projections(request: Request) -> Response:
        return JSONResponse(manager.list())

    async def keys(request: Request) -> Response:
        return JSONResponse({"projection-keys": manager.names()})

    async def get(request: Request) -> Response:
        return JSONResponse(manager.get(request.path_params["name"]))

    async def get_key(request: Request) -> Response:
        return JSONResponse(manager.get_key(request.path_params["name"], request.path_params["key"]))

    async def delete(request: Request) -> Response:
        await manager.delete(request.path_params["name"])
        return JSONResponse({"correct": True})

    async def updates(request: Request) -> Response:
        name = request.path_params["name"]
        manager.get(name)  # 404 before the stream starts

        async def events() -> AsyncIterator[bytes]:
            async for message in manager.follow_raw(name):
                yield b"event: update\ndata: " + message + b"\n\n"

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    async def schema(request: Request) -> Response:
        """The payload schemas the built-in __streams__ projection inferred for a stream, per schema version."""
        stream = request.path_params["stream"]
        entry = manager.value(STREAMS_PROJECTION).get(stream)
        if not isinstance(entry, dict):
            raise NotFound(f"no schema known for stream {stream!r} ({STREAMS_PROJECTION} has seen no event of it)")
        return JSONResponse({"stream-name": stream, "schemas": entry.get("schemas", {})})

    return [
        Route("/api/schema/{stream:path}", _guarded(reader, schema, SCHEMA_DOC), methods=["GET"]),
        Route("/api/projection", _guarded(admin, create, CREATE_DOC), methods=["POST"]),
        Route("/api/projections", _guarded(reader, list_projections, LIST_DOC), methods=["GET"]),
        Route("/api/projection-keys", _guarded(reader, keys, KEYS_DOC), methods=["GET"]),
        Route("/api/projection/{name}", _guarded(reader, get, GET_DOC), methods=["GET"]),
        Route("/api/projection/{name}", _guarded(admin, delete, DELETE_DOC), methods=["DELETE"]),
        Route("/api/projection/{name}/updates", _guarded(reader, updates, UPDATES_DOC), methods=["GET"]),
        # A key may hold "/" (the built-in __streams__ is keyed by stream name): sent percent-encoded,
        # it arrives decoded, so the key is the whole rest of the path. A projection's name never holds "/".
        Route("/api/projection/{name}/{key:path}", _guarded(reader, get_key, KEY_DOC), methods=["GET"]),
    ]
