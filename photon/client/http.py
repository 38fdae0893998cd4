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
from typing import Any, Protocol

import httpx

from photon.client import http_calls
from photon.client.http_calls import HttpCall
from photon.client.wire import (
    CLIENT_CLOSED,
    DEFAULT_URL,
    RENEWAL_ATTEMPTS,
    TOKEN_PATH,
    Lines,
    ReplayItem,
    Session,
    emit_answer,
    emit_body,
    emit_retry_pause,
    line_item,
    query,
    raise_for,
    renew_and_resend,
    streaming_timeout,
    tls,
)
from photon.client.wire import quote_segment as _quote
from photon.core.backend import StreamInfo
from photon.core.errors import ServerUnreachable, StoreClosed


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
        self.session = Session(url, user, password)
        self.url = self.session.url
        self.retries = retries
        self.http = httpx.Client(base_url=self.url, verify=tls(verify), timeout=timeout)
        """The HTTP connection pool, for callers that read a streaming answer of their own."""

    def token(self, renew: bool = False) -> str:
        if self.session.needs_token(renew):
            with self._reaching():
                return self.session.take_token(self.http.get(TOKEN_PATH, auth=self.session.auth))
        return str(self.session.token)

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        if self.http.is_closed:
            raise StoreClosed(CLIENT_CLOSED)  # not httpx's RuntimeError
        try:
            yield
        except httpx.TransportError as exc:
            raise self.session.unreachable(exc) from exc

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._reaching():
            for renew in RENEWAL_ATTEMPTS:
                self.token(renew)
                response = self.http.request(method, path, headers=self.session.headers(), **kwargs)
                if not renew_and_resend(response, renew):
                    break
        raise_for(response)
        return response

    def call(self, call: HttpCall) -> Any:
        """Send one of the API's calls (`photon.client.http_calls`) and read its answer."""
        return call.answer(self.request(call.method, call.path, **call.options))

    def _stream(self, path: str, params: dict[str, Any]) -> Iterator[ReplayItem]:
        for line in self.stream_lines(path, params):
            item = line_item(line)
            if item is not None:
                yield item

    def stream_lines(self, path: str, params: dict[str, Any]) -> Iterator[bytes]:
        """The lines of a streaming answer, as they come (a consumer group member's deliveries)."""
        timeout = streaming_timeout(self.http.timeout)
        with self._reaching():
            for renew in RENEWAL_ATTEMPTS:
                self.token(renew)
                headers = self.session.headers()
                with self.http.stream("GET", path, params=query(params), headers=headers, timeout=timeout) as response:
                    if renew_and_resend(response, renew):
                        continue
                    if response.status_code >= 400:
                        response.read()
                        raise_for(response)
                    lines = Lines()
                    for chunk in response.iter_bytes():
                        yield from lines.feed(chunk)
                    yield from lines.end()
                    return

    def emit(
        self,
        events: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        expected_version: Any,
        expected_versions: Mapping[str, Any] | None = None,
        condition: Any = None,
    ) -> Any:
        content = emit_body(events, expected_version, expected_versions, condition)
        attempt = 0
        while True:
            try:
                return emit_answer(self.request("POST", "/api/event", content=content).content)
            except ServerUnreachable:
                pause = emit_retry_pause(attempt, self.retries)
                if pause is None:
                    raise
                time.sleep(pause)
                attempt += 1

    def read_matching(self, body: dict[str, Any]) -> dict[str, Any]:
        page: dict[str, Any] = self.call(http_calls.read_matching(body))
        return page

    def replay(self, stream: str, params: dict[str, Any]) -> Iterator[ReplayItem]:
        return self._stream(f"/api/replay/{_quote(stream)}", params)

    def subscribe(self, name: str, params: dict[str, Any]) -> Iterator[ReplayItem]:
        return self._stream(f"/api/subscription/{_quote(name)}", params)

    def ack(self, name: str, order_id: int) -> dict[str, Any]:
        acked: dict[str, Any] = self.call(http_calls.ack(name, order_id))
        return acked

    def streams(self) -> list[StreamInfo]:
        listed: list[StreamInfo] = self.call(http_calls.streams())
        return listed

    def close(self) -> None:
        self.http.close()
