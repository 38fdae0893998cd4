"""Stream download and upload over HTTP: thin routes over `photon.ops.transfer`.

- ``GET /export/stream/{name}``: the stream as NDJSON, as an attachment (``<name>.ndjson``);
  404 ``{"error": ...}`` when the stream does not exist.
- ``POST /api/new-stream``: a stream file, either as the request body (NDJSON) or as the
  ``file`` field of a ``multipart/form-data`` upload; ``?name=`` (or a ``name`` form field)
  renames the stream. The body is read a chunk at a time into a temporary file (413 past
  `rest.body.max.bytes`). Answers 201 ``{"correct": true, "stream-name": ..., "events": n}``, with
  the stream renamed ``name-0``, ``name-1``... when its name is taken; 400 ``{"error": ...}``
  for a bad file, nothing stored.

`auth` is called with each request first: it returns None to let the request through, or a
response to send instead (401); it may be a coroutine function. Raising an HTTPException works too.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import IO
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from photon.core.errors import BackendError, NotFound, ValidationError
from photon.core.store import EventStore
from photon.ops.transfer import export_stream, import_stream
from photon.server.http.errors import RequestError, photon_error_response
from photon.server.http.limits import body_limit, bounded, spool_body
from photon.server.http.params import Param, RouteDoc, parse_query
from photon.server.http.schemas import StoredEvent, Uploaded, ndjson_lines, upload_form

AuthCheck = Callable[[Request], Awaitable[Response | None] | Response | None]
NDJSON = "application/x-ndjson"


async def _denied(auth: AuthCheck, request: Request) -> Response | None:
    answer = auth(request)
    if inspect.isawaitable(answer):
        answer = await answer
    return answer


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _query_error(request: Request, params: tuple[Param, ...]) -> JSONResponse | None:
    """A 400 naming an unknown or bad query parameter, or None when the query is good."""
    try:
        parse_query(request, params)
    except RequestError as exc:
        return JSONResponse({"error": str(exc), **exc.details}, status_code=exc.status)
    return None


def _attachment(name: str) -> str:
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\/' else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}.ndjson\"; filename*=UTF-8''{quote(name + '.ndjson', safe='')}"


EXPORT_DOC = RouteDoc(
    answer="the stream as NDJSON (an attachment named <name>.ndjson)",
    errors={400: "an unknown query parameter", 404: "no such stream"},
    response=StoredEvent,
    response_media=(NDJSON,),
)
UPLOAD_DOC = RouteDoc(
    params=(Param("name", "string", "The name to give the stream (default: the name its events carry)."),),
    body="a stream file (NDJSON, one event per line), as the body or as the file field of a form",
    answer='{"correct": true, "stream-name": name, "events": n}: the stream renamed name-0, name-1... when taken',
    errors={400: "a bad stream file or an unknown query parameter: nothing stored"},
    request=ndjson_lines(),
    request_media=(NDJSON,),
    form=upload_form(),
    response=Uploaded,
    status=201,
)


def transfer_routes(store: EventStore, auth: AuthCheck) -> list[Route]:
    """The export and upload routes for `store`, each checked by `auth`."""

    async def export(request: Request) -> Response:
        denied = await _denied(auth, request)
        if denied is not None:
            return denied
        refused = _query_error(request, EXPORT_DOC.params)
        if refused is not None:
            return refused
        name = request.path_params["name"]
        try:
            chunks = await run_in_threadpool(export_stream, store, name)
        except (NotFound, BackendError) as exc:
            return photon_error_response(exc)
        # A sync iterator: starlette reads it in a worker thread, a page at a time.
        return StreamingResponse(chunks, media_type=NDJSON, headers={"Content-Disposition": _attachment(name)})

    async def new_stream(request: Request) -> Response:
        denied = await _denied(auth, request)
        if denied is not None:
            return denied
        refused = _query_error(request, UPLOAD_DOC.params)
        if refused is not None:
            return refused
        name = request.query_params.get("name") or None
        limit = body_limit(request)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            # The form parser spools the file part to a temporary file as it arrives.
            async with bounded(request, limit).form() as form:
                upload = form.get("file")
                if upload is None or isinstance(upload, str):
                    return _error(400, "the upload needs a 'file' field holding the stream file")
                field = form.get("name")
                if isinstance(field, str) and field:
                    name = field
                return await _import(upload.file, name)
        with await spool_body(request, limit) as spool:
            return await _import(spool, name)

    async def _import(source: IO[bytes], name: str | None) -> Response:
        # Lines as bytes.splitlines gives them (a lone CR ends a line too), read from the file.
        lines = (part for line in source for part in line.splitlines())
        try:
            final, count = await run_in_threadpool(import_stream, store, lines, name)
        except (ValidationError, BackendError) as exc:
            return photon_error_response(exc)
        return JSONResponse({"correct": True, "stream-name": final, "events": count}, status_code=201)

    export.route_doc = EXPORT_DOC  # type: ignore[attr-defined]
    new_stream.route_doc = UPLOAD_DOC  # type: ignore[attr-defined]
    return [
        Route("/export/stream/{name:path}", export, methods=["GET"]),
        Route("/api/new-stream", new_stream, methods=["POST"]),
    ]
