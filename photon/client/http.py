"""The HTTP transport of the Python clients: a token from `/auth/token`, renewed when refused,
then the `/api` routes, with retries of emits that are safe to send again.

`Transport` is what `PhotonClient` needs from a way of reaching the server; `HttpTransport` is the
default, `photon.client.amqp.AmqpTransport` the other one shipped.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import orjson

from photon.client.wire import (
    DEFAULT_URL,
    RETRY_PAUSE,
    ReplayItem,
    emit_answer,
    emit_body,
    line_item,
    query,
    raise_for,
    split_lines,
    streams_answer,
)
from photon.client.wire import quote_segment as _quote
from photon.core.backend import StreamInfo
from photon.core.errors import ServerUnreachable

if TYPE_CHECKING:
    pass


class Transport(Protocol):
    """What a client needs from a way of reaching the server."""

    def emit(
        self,
        events: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        expected_version: Any,
        expected_versions: Mapping[str, Any] | None = None,
        condition: Any = None,
    ) -> Any:
        """Store one event (answer: the stored event) or a list (answer: the stored events)."""

    def replay(self, stream: str, params: dict[str, Any]) -> Iterator[Any]:
        """Replay items: stored events (`RecordedEvent` or dicts), and `CaughtUp` between history and live."""

    def subscribe(self, name: str, params: dict[str, Any]) -> Iterator[Any]:
        """A durable consumer's items, starting after its last acknowledged event."""

    def ack(self, name: str, order_id: int) -> dict[str, Any]: ...

    def streams(self) -> list[Any]: ...

    def close(self) -> None: ...


class HttpTransport:
    """The HTTP API: a token from /auth/token (renewed when refused), then /api routes."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        user: str = "admin",
        password: str = "p4010n",
        *,
        verify: bool | str | ssl.SSLContext = True,
        timeout: float = 30.0,
        retries: int = 2,
    ) -> None:
        self.url = url.rstrip("/")
        self.retries = retries
        self._auth = (user, password)
        if isinstance(verify, str):  # a CA file, such as a self-signed server certificate
            verify = ssl.create_default_context(cafile=verify)
        self.http = httpx.Client(base_url=self.url, verify=verify, timeout=timeout)
        """The HTTP connection pool, for callers that read a streaming answer of their own."""
        self._token: str | None = None

    def token(self, renew: bool = False) -> str:
        if self._token is None or renew:
            with self._reaching():
                response = self.http.get("/auth/token", auth=self._auth)
            raise_for(response)
            self._token = str(response.json()["token"])
        return self._token

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """A failure to reach the server (refused, unknown host, timeout, cut off) as a PhotonError."""
        try:
            yield
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"cannot reach the Photon server at {self.url}: {exc}") from exc

    def _headers(self, renew: bool = False) -> dict[str, str]:
        return {"Authorization": f"Token {self.token(renew)}"}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._reaching():
            response = self.http.request(method, path, headers=self._headers(), **kwargs)
            if response.status_code == 401:  # expired: renew once
                response = self.http.request(method, path, headers=self._headers(renew=True), **kwargs)
        raise_for(response)
        return response

    def _stream(self, path: str, params: dict[str, Any]) -> Iterator[ReplayItem]:
        for line in self.stream_lines(path, params):
            item = line_item(line)
            if item is not None:
                yield item

    def stream_lines(self, path: str, params: dict[str, Any]) -> Iterator[bytes]:
        """The lines of a streaming answer, as they come (a consumer group member's deliveries)."""
        with self._reaching():
            for attempt in (0, 1):
                with self.http.stream(
                    "GET",
                    path,
                    params=query(params),
                    headers=self._headers(renew=attempt == 1),
                    timeout=httpx.Timeout(self.http.timeout.connect, read=None),
                ) as response:
                    if response.status_code == 401 and attempt == 0:
                        continue
                    if response.status_code >= 400:
                        response.read()
                        raise_for(response)
                    rest = b""
                    for chunk in response.iter_bytes():
                        lines, rest = split_lines([chunk], rest)
                        yield from lines
                    if rest:
                        yield rest
                    return

    def emit(
        self,
        events: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        expected_version: Any,
        expected_versions: Mapping[str, Any] | None = None,
        condition: Any = None,
    ) -> Any:
        content = emit_body(events, expected_version, expected_versions, condition)
        # Safe to send again: every event carries its id (`with_ids`), so a request that reached the
        # server before the connection failed is answered with the events it stored, not stored twice.
        for attempt in range(self.retries + 1):
            try:
                return emit_answer(self.request("POST", "/api/event", content=content).content)
            except ServerUnreachable:
                if attempt == self.retries:
                    raise
                time.sleep(RETRY_PAUSE * 2**attempt)
        raise AssertionError("not reached")

    def read_matching(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(
            self.request("POST", "/api/read-matching", content=orjson.dumps(body)).content
        )
        return result

    def replay(self, stream: str, params: dict[str, Any]) -> Iterator[ReplayItem]:
        return self._stream(f"/api/replay/{_quote(stream)}", params)

    def subscribe(self, name: str, params: dict[str, Any]) -> Iterator[ReplayItem]:
        return self._stream(f"/api/subscription/{_quote(name)}", params)

    def ack(self, name: str, order_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/api/subscription/{_quote(name)}/ack", json={"order-id": order_id}
        ).json()
        return result

    def streams(self) -> list[StreamInfo]:
        return streams_answer(self.request("GET", "/api/streams").content)

    def close(self) -> None:
        self.http.close()
