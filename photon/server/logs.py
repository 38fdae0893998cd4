"""The server's logs: `log.format` text (for people) or json (one object a line, for log collectors), at `log.level`.

Both go to standard error through the root logger, and uvicorn's loggers (its access log, when
`log.access` is on, and its errors) propagate there, so every line has the same form. A JSON line
holds ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message``, the request's
fields when it was written while serving one (``method``, ``path``, ``client``, ``request-id``), an
access line's ``status`` and ``http-version``, and ``exception`` with the traceback when there is one.
"""

from __future__ import annotations

import contextvars
import datetime
import logging
import re
import sys
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS_LOGGER = "uvicorn.access"

_ACCESS_TOKEN = re.compile(r"((?:^|[?&])access(?:_|%5[Ff])token=)[^&#]*")
"""A token in a query string (`?access_token=`, which the API accepts): never written to a log."""

request_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "photon_request_fields", default=None
)
"""The fields of the request being served in this task, for log lines written while serving it."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        if record.name == ACCESS_LOGGER and isinstance(record.args, tuple) and len(record.args) == 5:
            # uvicorn's access record: (client, method, path with query, HTTP version, status)
            client, method, path, version, status = record.args
            line["message"] = f"{method} {path} {status}"
            line.update({"method": method, "path": path, "client": client, "http-version": version, "status": status})
        else:
            line["message"] = record.getMessage()
        fields = request_fields.get()
        if fields:
            for key, value in fields.items():
                line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def hide_token(path: str) -> str:
    """`path` (with its query) with the value of an `access_token` parameter replaced by `****`."""
    return _ACCESS_TOKEN.sub(r"\1****", path) if "token" in path.lower() else path


class HideTokenFilter(logging.Filter):
    """Keeps a token given in the query string (`?access_token=`) out of uvicorn's access lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], hide_token(args[2]), args[3], args[4])
        return True


def configure_logging(config: Mapping[str, Any]) -> None:
    """Send every log line (Photon's and uvicorn's) to standard error in `log.format` at `log.level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if config["log.format"] == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config["log.level"])
    # pika logs every step of each broker connection at INFO (socket connected, transport linked
    # up, ...); Photon logs the connection itself ("AMQP connected to ..."). Below DEBUG, only
    # pika's warnings and errors are kept.
    pika_level = logging.NOTSET if root.getEffectiveLevel() <= logging.DEBUG else logging.WARNING
    logging.getLogger("pika").setLevel(pika_level)
    for name in ("uvicorn", "uvicorn.error", ACCESS_LOGGER):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, HideTokenFilter) for f in access.filters):
        access.addFilter(HideTokenFilter())


class RequestFieldsMiddleware:
    """Pure ASGI middleware: the request's method, path, client and id for the log lines written
    while it is served (an `X-Request-Id` header is kept; otherwise one is made)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
                break
        client = scope.get("client")
        token = request_fields.set(
            {
                "method": scope.get("method"),
                "path": scope.get("path"),
                "client": f"{client[0]}:{client[1]}" if client else None,
                "request-id": request_id or uuid.uuid4().hex,
            }
        )
        try:
            await self.app(scope, receive, send)
        finally:
            request_fields.reset(token)
