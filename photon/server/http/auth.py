"""Photon's auth: a token from ``GET /auth/token`` (HTTP Basic), then ``Authorization: Token <t>``.

Every ``/api`` route except ``/api/ping`` needs a valid token, given as ``Authorization: Token
<t>``, ``Authorization: Bearer <t>`` or ``?access_token=<t>``; anything else is answered 401
``{"error": "Not authorized"}``. OPTIONS requests skip the check, as in Photon. Routes added
outside ``/api`` protect themselves with `require_admin`.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from photon.server.http.errors import RequestError, error_response, json_response
from photon.server.http.login_throttle import LoginThrottle
from photon.server.tokens import TokenSigner

log = logging.getLogger("photon.http")

NOT_AUTHORIZED = "Not authorized"
PUBLIC_API_PATHS = frozenset({"/api/ping"})


def token_from(headers: Mapping[str, str], query_string: bytes) -> str | None:
    """The token a request carries, if any."""
    header = headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip():
            return value.strip()
    if b"access_token=" in query_string:
        for key, value in parse_qsl(query_string.decode("latin-1")):
            if key == "access_token":
                return value
    return None


def is_authorized(request: Request) -> bool:
    signer: TokenSigner = request.app.state.tokens
    return signer.verify(token_from(request.headers, request.scope.get("query_string", b"")))


def require_admin(request: Request) -> None:
    """Raise a 401 unless the request carries a valid admin token (for routes outside /api)."""
    if not is_authorized(request):
        raise RequestError(NOT_AUTHORIZED, 401)


def unauthorized() -> Response:
    """The answer to an /api request without a valid token."""
    return error_response(401, NOT_AUTHORIZED, None, {"WWW-Authenticate": 'Token realm="photon"'})


def scope_token(scope: Scope) -> str | None:
    """The token an ASGI request carries, read from its raw header fields and query string."""
    headers = {}
    for key, value in scope["headers"]:
        if key == b"authorization":
            headers["authorization"] = value.decode("latin-1")
    return token_from(headers, scope.get("query_string", b""))


class TokenAuthMiddleware:
    """Checks the token on every /api request but the public ones, before any routing."""

    def __init__(self, app: ASGIApp, signer: TokenSigner) -> None:
        self.app = app
        self.signer = signer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if (
                (path == "/api" or path.startswith("/api/"))
                and path not in PUBLIC_API_PATHS
                and scope["method"] != "OPTIONS"
                and not self.signer.verify(scope_token(scope))
            ):
                await unauthorized()(scope, receive, send)
                return
        await self.app(scope, receive, send)


def basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


async def auth_token(request: Request) -> Response:
    """Exchange the admin's user name and password (HTTP Basic) for an API token."""
    if request.query_params:
        name = next(iter(request.query_params))
        raise RequestError(f"unknown query parameter {name!r} (accepted: none)", parameter=name)
    config: Mapping[str, Any] = request.app.state.config
    signer: TokenSigner = request.app.state.tokens
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client else "?"
    wait = throttle.retry_after(address)
    if wait:
        return error_response(
            429,
            f"too many failed logins from {address}; try again in {wait} s",
            {"retry-after": wait},
            {"Retry-After": str(wait)},
        )
    credentials = basic_credentials(request)
    if credentials is None or not signer.check_credentials(*credentials, str(config["admin.pass"])):
        throttle.failed(address)
        log.warning("failed login on /auth/token from %s", address)
        return error_response(401, NOT_AUTHORIZED, None, {"WWW-Authenticate": 'Basic realm="photon"'})
    throttle.succeeded(address)
    return json_response({"token": signer.issue(), "expires-in": signer.ttl})
