"""Every HTTP error is JSON: ``{"error": "<what is wrong>"}`` (plus details), with a 4xx/5xx status.

Photon's core errors map to statuses here, once, for every route (the core's own types are
raised by the store and re-used; no parallel hierarchy).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from photon.core.errors import (
    AppendConditionFailed,
    BackendUnavailable,
    Conflict,
    EventIdConflict,
    NotFound,
    PhotonError,
    ReadOnlyStore,
    StoreClosed,
    StoreLocked,
    StreamDeleted,
    ValidationError,
    VersionConflict,
)

log = logging.getLogger("photon.http")

JSON = "application/json"


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type=JSON, headers=headers)


def error_response(
    status: int, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Response:
    """``{"error": message, **details}`` with `status`."""
    return json_response({"error": message, **(details or {})}, status, headers)


class RequestError(Exception):
    """A bad request found by a route: answered as `status` with the message."""

    def __init__(self, message: str, status: int = 400, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.details = details


def is_too_large(exc: ValidationError) -> bool:
    return "event too large" in str(exc)


def photon_error_response(exc: PhotonError) -> Response:
    if isinstance(exc, VersionConflict):
        return error_response(
            409,
            str(exc),
            {"stream-name": exc.stream, "expected-version": exc.expected, "current-version": exc.current},
        )
    if isinstance(exc, EventIdConflict):
        return error_response(
            409, str(exc), {"id": exc.event_id, "stream-name": exc.stream, "stored-in": exc.stored_stream}
        )
    if isinstance(exc, AppendConditionFailed):
        return error_response(
            409,
            str(exc),
            {"condition-failed": True, **exc.fields()},
        )
    if isinstance(exc, StreamDeleted):
        return error_response(410, str(exc), {"stream-name": exc.stream})
    if isinstance(exc, ValidationError):
        status = 413 if is_too_large(exc) else 400
        return error_response(status, str(exc), {"field": exc.field} if exc.field else None)
    if isinstance(exc, NotFound):
        return error_response(404, str(exc))
    if isinstance(exc, Conflict):
        return error_response(409, str(exc))
    if isinstance(exc, ReadOnlyStore):
        return error_response(403, str(exc))
    if isinstance(exc, (StoreClosed, BackendUnavailable, StoreLocked)):
        return error_response(503, str(exc))
    log.error("request failed: %s", exc)
    return error_response(500, str(exc))


async def on_photon_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PhotonError)
    return photon_error_response(exc)


async def on_request_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    return error_response(exc.status, str(exc), exc.details)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no such route: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
    else:
        message = exc.detail
    return error_response(exc.status_code, message, headers=dict(exc.headers) if exc.headers else None)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, f"internal error: {type(exc).__name__}: {exc}")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    PhotonError: on_photon_error,
    RequestError: on_request_error,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}
