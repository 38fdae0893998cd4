"""Every HTTP error is JSON: ``{"error": "<what is wrong>"}`` (plus details), with a 4xx/5xx status.

Photon's core errors map to statuses here, once, for every route (the core's own types are
raised by the store and re-used; no parallel hierarchy).
"""

from __future__ import annotations

import logging
from typing import Any, Final

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from photon.core.errors import (
    EVENT_INDEX,
    AppendConditionFailed,
    BackendError,
    Conflict,
    EventIdConflict,
    EventTooLarge,
    NotAuthorized,
    NotFound,
    NotReady,
    PhotonError,
    ReadOnlyStore,
    StoreClosed,
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


STATUS_OF_ERROR: Final[tuple[tuple[type[PhotonError], int], ...]] = (
    (VersionConflict, 409),
    (EventIdConflict, 409),
    (AppendConditionFailed, 409),
    (Conflict, 409),
    (StreamDeleted, 410),
    (EventTooLarge, 413),
    (ValidationError, 400),
    (NotFound, 404),
    (NotAuthorized, 401),
    (ReadOnlyStore, 403),
    (NotReady, 503),
    (StoreClosed, 503),
    (BackendError, 503),
)
"""The HTTP status of each core error, most specific first: the one table every route answers by.
A backend failure is 503 (the operation was not acknowledged: try again later); an error not in
the table is 500 and logged."""


def status_of(exc: PhotonError) -> int:
    return next((status for kind, status in STATUS_OF_ERROR if isinstance(exc, kind)), 500)


def error_details(exc: PhotonError) -> dict[str, Any] | None:
    """What an error answer carries besides the message."""
    if isinstance(exc, VersionConflict):
        return {"stream-name": exc.stream, "expected-version": exc.expected, "current-version": exc.current}
    if isinstance(exc, EventIdConflict):
        return {"id": exc.event_id, "stream-name": exc.stream, "stored-in": exc.stored_stream}
    if isinstance(exc, AppendConditionFailed):
        return {"condition-failed": True, **exc.fields()}
    if isinstance(exc, StreamDeleted):
        return {"stream-name": exc.stream}
    if isinstance(exc, ValidationError) and (exc.field or exc.index is not None):
        return {
            **({"field": exc.field} if exc.field else {}),
            **({EVENT_INDEX: exc.index} if exc.index is not None else {}),
        }
    return None


def photon_error_response(exc: PhotonError) -> Response:
    status = status_of(exc)
    if status == 500:
        log.error("request failed: %s", exc)
    return error_response(status, str(exc), error_details(exc))


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
