"""The asyncio client: `PhotonClient`'s calls on httpx's async client.

from photon.client.blocking import AsyncPhotonClient

async with AsyncPhotonClient("http://localhost:3000") as photon:
    await photon.emit({"stream-name": "orders", "event-type": "placed", "payload": {"id": 7}})
    async for event in photon.replay("orders", stream_type="cold"):
        print(event.order_id, event.payload)
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx
import orjson

from photon.client.groups import GroupDelivery, ack_body, delivery_line, group_settings, nack_body
from photon.client.wire import (
    DEFAULT_URL,
    RETRY_PAUSE,
    ConsumerPosition,
    Page,
    ReplayItem,
    emit_answer,
    emit_body,
    line_item,
    page_answer,
    page_params,
    position_answer,
    projection_template,
    query,
    raise_for,
    replay_params,
    split_lines,
    streams_answer,
    with_ids,
)
from photon.client.wire import quote_segment as _quote
from photon.core.append_request import AppendCondition
from photon.core.backend import StreamInfo
from photon.core.errors import ServerUnreachable, ValidationError
from photon.core.events import RecordedEvent
from photon.core.subscriptions import CaughtUp


class AsyncPhotonClient:
    """A Photon server's asyncio client over HTTP: the same calls as `PhotonClient`, awaited."""

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
        if isinstance(verify, str):
            verify = ssl.create_default_context(cafile=verify)
        self._http = httpx.AsyncClient(base_url=self.url, verify=verify, timeout=timeout)
        self._token: str | None = None

    def _unreachable(self, exc: httpx.TransportError) -> ServerUnreachable:
        return ServerUnreachable(f"cannot reach the Photon server at {self.url}: {exc}")

    async def token(self, renew: bool = False) -> str:
        if self._token is None or renew:
            try:
                response = await self._http.get("/auth/token", auth=self._auth)
            except httpx.TransportError as exc:
                raise self._unreachable(exc) from exc
            raise_for(response)
            self._token = str(response.json()["token"])
        return self._token

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            headers = {"Authorization": f"Token {await self.token()}"}
            response = await self._http.request(method, path, headers=headers, **kwargs)
            if response.status_code == 401:  # expired: renew once
                headers = {"Authorization": f"Token {await self.token(renew=True)}"}
                response = await self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        raise_for(response)
        return response

    async def emit(
        self,
        events: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        expected_version: int | str | None = None,
        expected_versions: Mapping[str, int | str] | None = None,
        condition: AppendCondition | Mapping[str, Any] | None = None,
    ) -> Any:
        """Store one event (returns the stored `RecordedEvent`) or a list atomically (returns the list).

        Events get their ids before the first attempt, so the re-sends after a lost answer store them once.
        """
        content = emit_body(with_ids(events), expected_version, expected_versions, condition)
        for attempt in range(self.retries + 1):
            try:
                return emit_answer((await self.request("POST", "/api/event", content=content)).content)
            except ServerUnreachable:
                if attempt == self.retries:
                    raise
                await asyncio.sleep(RETRY_PAUSE * 2**attempt)
        raise AssertionError("not reached")

    async def read_matching(
        self, query: Sequence[Mapping[str, Any]] = (), *, after: int = 0, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Events of client streams matching a query after a position (see `EventStore.read_matching`)."""
        remaining = limit
        while remaining is None or remaining > 0:
            page = 1000 if remaining is None else min(1000, remaining)
            body = {"query": [dict(item) for item in query], "after": after, "limit": page}
            answer = orjson.loads(
                (await self.request("POST", "/api/read-matching", content=orjson.dumps(body))).content
            )
            for event in answer["results"]:
                yield RecordedEvent.from_dict(event)
            if answer["next"] is None:
                return
            after = answer["next"]
            if remaining is not None:
                remaining -= len(answer["results"])

    async def _stream(self, path: str, params: dict[str, Any]) -> AsyncIterator[ReplayItem]:
        async for line in self._stream_lines(path, params):
            item = line_item(line)
            if item is not None:
                yield item

    def replay(
        self,
        stream: str = "__all__",
        *,
        stream_type: str = "hot-cold",
        from_: int | None = None,
        from_version: int | None = None,
        from_time: int | None = None,
        to: int | None = None,
        event_types: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[ReplayItem]:
        """An async iterator of `RecordedEvent`s; with hot-cold, one `CaughtUp` between history and live."""
        params = replay_params(stream_type, from_, from_version, from_time, to, event_types, limit)
        return self._stream(f"/api/replay/{_quote(stream)}", params)

    def subscribe(
        self,
        name: str,
        stream: str | None = None,
        *,
        stream_type: str = "hot-cold",
        event_types: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> AsyncDurableSubscription:
        """Follow `stream` as the durable consumer `name`, from just after its last acknowledged event."""
        params = {"stream": stream, "stream-type": stream_type, "event-types": event_types, "limit": limit}
        return AsyncDurableSubscription(self, name, self._stream(f"/api/subscription/{_quote(name)}", params))

    async def ack(self, name: str, order_id: int) -> dict[str, Any]:
        response = await self.request("POST", f"/api/subscription/{_quote(name)}/ack", json={"order-id": order_id})
        result: dict[str, Any] = response.json()
        return result

    async def streams(self) -> list[StreamInfo]:
        return streams_answer((await self.request("GET", "/api/streams")).content)

    async def read(
        self,
        stream: str = "__all__",
        *,
        from_: int | None = None,
        from_version: int | None = None,
        limit: int | None = None,
    ) -> Page:
        """One page of a stream's stored events (`Page.next` is the `from_` of the next page, None at the end)."""
        params = page_params(from_, from_version, limit)
        response = await self.request("GET", f"/api/stream-contents/{_quote(stream)}", params=params)
        return page_answer(response.content)

    async def event(self, stream: str, order_id: int) -> RecordedEvent:
        response = await self.request("GET", f"/api/event/{_quote(stream)}/{order_id}")
        return RecordedEvent.from_json(response.content)

    async def delete_stream(self, stream: str) -> int:
        answer = orjson.loads((await self.request("DELETE", f"/api/stream/{_quote(stream)}")).content)
        return int(answer.get("deleted-events", 0))

    async def position(self, consumer: str) -> ConsumerPosition:
        response = await self.request("GET", f"/api/subscription/{_quote(consumer)}/position")
        return position_answer(consumer, response.content)

    async def forget_consumer(self, consumer: str) -> None:
        await self.request("DELETE", f"/api/subscription/{_quote(consumer)}")

    async def projections(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await self.request("GET", "/api/projections")).json()
        return result

    async def projection_value(self, name: str, key: str | None = None) -> Any:
        if key is not None:
            return (await self.request("GET", f"/api/projection/{_quote(name)}/{_quote(key)}")).json()
        return (await self.request("GET", f"/api/projection/{_quote(name)}")).json()["current-value"]

    async def add_projection(
        self, name: str, reduction: str, language: str = "python", **fields: Any
    ) -> dict[str, Any]:
        content = projection_template(name, reduction, language, fields)
        descriptor: dict[str, Any] = (await self.request("POST", "/api/projection", content=content)).json()[
            "projection"
        ]
        return descriptor

    async def remove_projection(self, name: str) -> None:
        await self.request("DELETE", f"/api/projection/{_quote(name)}")

    # -- consumer groups ----------------------------------------------------------------------

    async def create_group(self, name: str, **settings: Any) -> dict[str, Any]:
        """Create consumer group `name` (settings as in `PhotonClient.create_group`)."""
        body = {"group-name": name, **group_settings(settings)}
        result: dict[str, Any] = (await self.request("POST", "/api/groups", json=body)).json()
        return result

    async def update_group(self, name: str, **changes: Any) -> dict[str, Any]:
        path = f"/api/group/{_quote(name)}"
        result: dict[str, Any] = (await self.request("PUT", path, json=group_settings(changes))).json()
        return result

    async def delete_group(self, name: str) -> None:
        await self.request("DELETE", f"/api/group/{_quote(name)}")

    async def groups(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await self.request("GET", "/api/groups")).json()["groups"]
        return result

    async def group(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = (await self.request("GET", f"/api/group/{_quote(name)}")).json()
        return result

    async def reset_group(self, name: str, from_: int) -> dict[str, Any]:
        path = f"/api/group/{_quote(name)}/reset"
        result: dict[str, Any] = (await self.request("POST", path, json={"from": from_})).json()
        return result

    async def replay_parked(self, name: str) -> int:
        answer = await self.request("POST", f"/api/group/{_quote(name)}/replay-parked")
        return int(answer.json()["replayed"])

    def join_group(self, name: str, member: str | None = None, *, max_in_flight: int | None = None) -> AsyncGroupMember:
        """Join group `name`: ``async for delivery in member``, then ``await member.ack(...)``.
        `max_in_flight` lowers the group's limit of unacknowledged deliveries for this member."""
        return AsyncGroupMember(self, name, member, max_in_flight)

    async def _stream_lines(self, path: str, params: dict[str, Any]) -> AsyncIterator[bytes]:
        try:
            for attempt in (0, 1):
                headers = {"Authorization": f"Token {await self.token(renew=attempt == 1)}"}
                timeout = httpx.Timeout(self._http.timeout.connect, read=None)
                async with self._http.stream(
                    "GET", path, params=query(params), headers=headers, timeout=timeout
                ) as response:
                    if response.status_code == 401 and attempt == 0:
                        continue
                    if response.status_code >= 400:
                        await response.aread()
                        raise_for(response)
                    rest = b""
                    async for chunk in response.aiter_bytes():
                        lines, rest = split_lines([chunk], rest)
                        for line in lines:
                            yield line
                    if rest:
                        yield rest
                    return
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncPhotonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncGroupMember:
    """A consumer group member: ``async for delivery in member`` (`GroupDelivery`), `await ack(...)`."""

    def __init__(
        self, client: AsyncPhotonClient, group: str, member: str | None, max_in_flight: int | None = None
    ) -> None:
        self.client = client
        self.group = group
        self.id = member
        self._path = f"/api/group/{_quote(group)}"
        params = {"member": member, "max-in-flight": max_in_flight}
        self._lines = client._stream_lines(f"{self._path}/stream", params)

    def __aiter__(self) -> AsyncGroupMember:
        return self

    async def __anext__(self) -> GroupDelivery:
        async for line in self._lines:
            item = delivery_line(line)
            if isinstance(item, GroupDelivery):
                return item
            if item is not None:
                self.id = item
        raise StopAsyncIteration

    async def ack(self, order_ids: int | Sequence[int]) -> dict[str, Any]:
        ids = [order_ids] if isinstance(order_ids, int) else list(order_ids)
        result: dict[str, Any] = (await self.client.request("POST", f"{self._path}/ack", json=ack_body(ids))).json()
        return result

    async def nack(self, order_ids: int | Sequence[int], action: str = "retry", reason: str = "") -> dict[str, Any]:
        ids = [order_ids] if isinstance(order_ids, int) else list(order_ids)
        body = nack_body(ids, action, reason)
        result: dict[str, Any] = (await self.client.request("POST", f"{self._path}/nack", json=body)).json()
        return result

    async def close(self) -> None:
        await self._lines.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> AsyncGroupMember:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncDurableSubscription:
    """A named consumer's items as an async iterator; `await ack()` records what has been processed."""

    def __init__(self, client: AsyncPhotonClient, name: str, items: AsyncIterator[ReplayItem]) -> None:
        self.client = client
        self.name = name
        self._items = items
        self.last_order_id: int | None = None

    def __aiter__(self) -> AsyncIterator[ReplayItem]:
        return self._follow()

    async def _follow(self) -> AsyncIterator[ReplayItem]:
        async for item in self._items:
            if not isinstance(item, CaughtUp):
                self.last_order_id = item.order_id
            yield item

    async def ack(self, order_id: int | None = None) -> dict[str, Any]:
        """Acknowledge up to `order_id` (default: the last event delivered)."""
        target = self.last_order_id if order_id is None else order_id
        if target is None:
            raise ValidationError("nothing delivered yet to acknowledge", "order-id")
        return await self.client.ack(self.name, target)

    async def close(self) -> None:
        aclose = getattr(self._items, "aclose", None)
        if aclose is not None:
            await aclose()
