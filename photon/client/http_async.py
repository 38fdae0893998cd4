"""The asyncio HTTP transport: `HttpTransport`'s calls on httpx's async client.

`AsyncTransport` is what `AsyncPhotonClient` needs from a way of reaching the server;
`AsyncHttpTransport` is the default, `photon.client.amqp_async.AsyncAmqpTransport` the other one
shipped. What is sent and how answers are read is in `photon.client.wire`, shared with the
blocking transport; only the sending and receiving is here.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
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


class AsyncTransport(Protocol):
    """What the asyncio client needs from a way of reaching the server."""

    async def emit(
        self,
        events: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        expected_version: Any,
        expected_versions: Mapping[str, Any] | None = None,
        condition: Any = None,
    ) -> Any:
        """Store one event (answer: the stored event) or a list (answer: the stored events)."""

    def replay(self, stream: str, params: dict[str, Any]) -> AsyncIterator[Any]:
        """Replay items: stored events (`RecordedEvent` or dicts), and `CaughtUp` between history and live."""

    def subscribe(self, name: str, params: dict[str, Any]) -> AsyncIterator[Any]:
        """A durable consumer's items, starting after its last acknowledged event."""

    async def ack(self, name: str, order_id: int) -> dict[str, Any]: ...

    async def streams(self) -> list[Any]: ...

    async def close(self) -> None: ...


class AsyncHttpTransport:
    """The HTTP API on httpx's async client: a token from /auth/token (renewed when refused), then /api routes."""

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
        self.http = httpx.AsyncClient(base_url=self.url, verify=tls(verify), timeout=timeout)
        """The HTTP connection pool, for callers that read a streaming answer of their own."""

    async def token(self, renew: bool = False) -> str:
        if self.http.is_closed:
            raise StoreClosed(CLIENT_CLOSED)  # not httpx's RuntimeError
        if self.session.needs_token(renew):
            try:
                response = await self.http.get(TOKEN_PATH, auth=self.session.auth)
            except httpx.TransportError as exc:
                raise self.session.unreachable(exc) from exc
            return self.session.take_token(response)
        return str(self.session.token)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            for renew in RENEWAL_ATTEMPTS:
                await self.token(renew)
                response = await self.http.request(method, path, headers=self.session.headers(), **kwargs)
                if not renew_and_resend(response, renew):
                    break
        except httpx.TransportError as exc:
            raise self.session.unreachable(exc) from exc
        raise_for(response)
        return response

    async def stream_lines(self, path: str, params: dict[str, Any]) -> AsyncIterator[bytes]:
        """The lines of a streaming answer, as they come (a consumer group member's deliveries)."""
        timeout = streaming_timeout(self.http.timeout)
        try:
            for renew in RENEWAL_ATTEMPTS:
                await self.token(renew)
                headers = self.session.headers()
                async with self.http.stream(
                    "GET", path, params=query(params), headers=headers, timeout=timeout
                ) as response:
                    if renew_and_resend(response, renew):
                        continue
                    if response.status_code >= 400:
                        await response.aread()
                        raise_for(response)
                    lines = Lines()
                    async for chunk in response.aiter_bytes():
                        for line in lines.feed(chunk):
                            yield line
                    for line in lines.end():
                        yield line
                    return
        except httpx.TransportError as exc:
            raise self.session.unreachable(exc) from exc

    async def call(self, call: HttpCall) -> Any:
        """Send one of the API's calls (`photon.client.http_calls`) and read its answer."""
        return call.answer(await self.request(call.method, call.path, **call.options))

    async def _stream(self, path: str, params: dict[str, Any]) -> AsyncIterator[ReplayItem]:
        lines = self.stream_lines(path, params)
        try:
            async for line in lines:
                item = line_item(line)
                if item is not None:
                    yield item
        finally:
            await lines.aclose()  # type: ignore[attr-defined]

    async def emit(
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
                return emit_answer((await self.request("POST", "/api/event", content=content)).content)
            except ServerUnreachable:
                pause = emit_retry_pause(attempt, self.retries)
                if pause is None:
                    raise
                await asyncio.sleep(pause)
                attempt += 1

    async def read_matching(self, body: dict[str, Any]) -> dict[str, Any]:
        page: dict[str, Any] = await self.call(http_calls.read_matching(body))
        return page

    def replay(self, stream: str, params: dict[str, Any]) -> AsyncIterator[ReplayItem]:
        return self._stream(f"/api/replay/{_quote(stream)}", params)

    def subscribe(self, name: str, params: dict[str, Any]) -> AsyncIterator[ReplayItem]:
        return self._stream(f"/api/subscription/{_quote(name)}", params)

    async def ack(self, name: str, order_id: int) -> dict[str, Any]:
        acked: dict[str, Any] = await self.call(http_calls.ack(name, order_id))
        return acked

    async def streams(self) -> list[StreamInfo]:
        listed: list[StreamInfo] = await self.call(http_calls.streams())
        return listed

    async def close(self) -> None:
        await self.http.aclose()
