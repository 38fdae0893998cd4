"""Backup from a running server over HTTP: the server's cold replay of `__all__`, as NDJSON.

The server's interface used here:

- ``GET /auth/token`` with HTTP Basic (`admin.user`/`admin.pass`) answers ``{"token": ...}``;
- ``GET /api/replay/__all__?stream-type=cold&from=N`` with ``Authorization: Token <token>``
  streams one stored event JSON per line (the events' stored bytes), then ends.

Lines pass through as the server sends them; lines that are not events (markers, blank
lines) are left out so the file holds events only.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx

from photon.core.errors import BackendUnavailable, PhotonError

TIMEOUT = httpx.Timeout(30.0, read=300.0)
CHUNK_EVENTS = 10_000


class RemoteError(PhotonError):
    """The server refused a request or answered something unexpected."""


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code == 401:
        raise RemoteError(f"{what}: not authorized (check -admin.user and -admin.pass)")
    if response.status_code >= 400:
        response.read()
        raise RemoteError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")


def get_token(client: httpx.Client, user: str, password: str) -> str:
    response = client.get("/auth/token", auth=(user, password))
    _check(response, "GET /auth/token")
    token = response.json().get("token")
    if not isinstance(token, str):
        raise RemoteError("GET /auth/token answered without a token")
    return token


def _is_event(line: bytes) -> bool:
    # An event line always carries "stream-name"; a marker never does.
    return b'"stream-name"' in line


def remote_chunks(
    url: str, user: str, password: str, *, from_order_id: int = 1, stream: str = "__all__"
) -> Iterator[tuple[bytes, int]]:
    """The server's cold replay of `stream` as (bytes of whole lines, number of events) chunks."""
    try:
        with httpx.Client(base_url=url.rstrip("/"), timeout=TIMEOUT) as client:
            token = get_token(client, user, password)
            params = {"stream-type": "cold", "from": str(max(from_order_id, 1))}
            path = f"/api/replay/{quote(stream, safe='')}"
            with client.stream("GET", path, params=params, headers={"Authorization": f"Token {token}"}) as response:
                _check(response, f"GET {path}")
                lines: list[bytes] = []
                pending = b""
                for data in response.iter_bytes():
                    parts = (pending + data).split(b"\n")
                    pending = parts.pop()
                    lines.extend(line for line in parts if _is_event(line))
                    if len(lines) >= CHUNK_EVENTS:
                        yield b"\n".join(lines) + b"\n", len(lines)
                        lines = []
                if pending.strip():
                    raise RemoteError("the server's replay ended inside a line (connection cut?)")
                if lines:
                    yield b"\n".join(lines) + b"\n", len(lines)
    except httpx.TransportError as exc:
        raise BackendUnavailable(f"cannot reach the server at {url}: {exc}") from exc
