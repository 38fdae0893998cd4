"""The asyncio client: `PhotonClient`'s calls, awaited, over HTTP (httpx's async client) or AMQP.

    from photon.client import AsyncPhotonClient

    async with AsyncPhotonClient("http://localhost:3000") as photon:
        await photon.emit({"stream-name": "orders", "event-type": "placed", "payload": {"id": 7}})
        async for event in photon.replay("orders", stream_type="cold"):
            print(event.order_id, event.payload)

Like `PhotonClient` it speaks through a transport: `AsyncHttpTransport` by default, or
``AsyncPhotonClient(transport=AsyncAmqpTransport("amqp://..."))`` (`photon.client.amqp_async`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from photon.client import http_calls
from photon.client.groups import GroupDelivery, delivery_line
from photon.client.http_async import AsyncHttpTransport, AsyncTransport
from photon.client.wire import (
    DEFAULT_URL,
    ConsumerPosition,
    Page,
    ReplayItem,
    as_event,
    as_item,
    replay_params,
    stored_events,
    subscription_params,
    with_ids,
)
from photon.core.append_request import AppendCondition
from photon.core.backend import StreamInfo
from photon.core.errors import PhotonError, ValidationError
from photon.core.events import RecordedEvent
from photon.core.subscriptions import CaughtUp

if TYPE_CHECKING:
    import ssl

    from photon.client.amqp_async import AsyncAmqpClient
    from photon.client.amqp_async_groups import AsyncAmqpGroupMember


class AsyncPhotonClient:
    """A Photon server's asyncio client: the same calls as `PhotonClient`, awaited."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        user: str = "admin",
        password: str = "p4010n",
        *,
        transport: AsyncTransport | None = None,
        verify: bool | str | ssl.SSLContext = True,
        timeout: float = 30.0,
        retries: int = 2,
    ) -> None:
        self.transport: AsyncTransport = transport or AsyncHttpTransport(
            url, user, password, verify=verify, timeout=timeout, retries=retries
        )
        self.url: str = getattr(self.transport, "url", url)
        self.retries = retries

    def _http(self) -> AsyncHttpTransport:
        if not isinstance(self.transport, AsyncHttpTransport):
            raise PhotonError(
                "projections, durable subscriptions and reads of stored pages are served over HTTP: "
                "use a client with the HTTP transport"
            )
        return self.transport

    def _amqp(self) -> AsyncAmqpClient | None:
        """The AMQP client behind an AMQP transport, for consumer groups; None: HTTP."""
        return None if isinstance(self.transport, AsyncHttpTransport) else getattr(self.transport, "group_calls", None)

    def _lifetime(self) -> AsyncAmqpClient | None:
        """The AMQP client for stream metadata, deletes, scavenging and redaction; None: HTTP."""
        if isinstance(self.transport, AsyncHttpTransport):
            return None
        return getattr(self.transport, "lifetime_calls", None)

    async def token(self, renew: bool = False) -> str:
        """The HTTP API's token (fetched, or renewed, if need be)."""
        return await self._http().token(renew)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An HTTP API request with the client's token (renewed once if refused); errors raised as Photon's."""
        return await self._http().request(method, path, **kwargs)

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
        events = with_ids(events)
        return stored_events(await self.transport.emit(events, expected_version, expected_versions, condition))

    async def read_matching(
        self, query: Sequence[Mapping[str, Any]] = (), *, after: int = 0, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Events of client streams matching a query after a position (see `EventStore.read_matching`)."""
        read = getattr(self.transport, "read_matching", None)
        if read is None:
            raise NotImplementedError("reads by query are served over HTTP and AMQP; use one of those transports")
        remaining = limit
        while remaining is None or remaining > 0:
            page = 1000 if remaining is None else min(1000, remaining)
            answer = await read({"query": [dict(item) for item in query], "after": after, "limit": page})
            for event in answer["results"]:
                yield as_event(event)
            if answer["next"] is None:
                return
            after = answer["next"]
            if remaining is not None:
                remaining -= len(answer["results"])

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
        filter: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[ReplayItem]:
        """An async iterator of `RecordedEvent`s; with hot-cold, one `CaughtUp` between history and live.
        `aclose()` it to stop a live replay. `filter` as in `PhotonClient.replay`."""
        params = replay_params(stream_type, from_, from_version, from_time, to, event_types, limit, filter)
        return _typed(self.transport.replay(stream, params))

    def subscribe(
        self,
        name: str,
        stream: str | None = None,
        *,
        stream_type: str = "hot-cold",
        event_types: Sequence[str] | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> AsyncDurableSubscription:
        """Follow `stream` as the durable consumer `name`, from just after its last acknowledged event.
        `filter` narrows a subscription to `__all__` or a category, with the keys `replay` takes."""
        params = subscription_params(stream, stream_type, event_types, limit, filter)
        return AsyncDurableSubscription(self.transport, name, params)

    async def ack(self, name: str, order_id: int) -> dict[str, Any]:
        """Acknowledge durable consumer `name`'s events up to `order_id`."""
        return await self.transport.ack(name, order_id)

    async def streams(self) -> list[StreamInfo]:
        return [
            s if isinstance(s, StreamInfo) else StreamInfo(s["stream-name"], s["total-events"])
            for s in await self.transport.streams()
        ]

    # -- streams over their lifetime (HTTP, or the AMQP transport's own) ------------------------

    async def stream_metadata(self, stream: str) -> dict[str, Any]:
        """A stream's metadata (`max-age`, `max-count`, `truncate-before`, `tombstone`, user keys)."""
        if (amqp := self._lifetime()) is not None:
            return await amqp.stream_metadata(stream)
        metadata: dict[str, Any] = await self._http().call(http_calls.stream_metadata(stream))
        return metadata

    async def set_stream_metadata(self, stream: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """Replace a stream's metadata; returns it as stored."""
        if (amqp := self._lifetime()) is not None:
            return await amqp.stream_metadata(stream, metadata)
        stored: dict[str, Any] = await self._http().call(http_calls.set_stream_metadata(stream, metadata))
        return stored

    async def delete_stream(self, stream: str, *, hard: bool = False) -> int:
        """Soft delete a stream (or hard: a tombstone); returns its version when deleted."""
        if (amqp := self._lifetime()) is not None:
            return await amqp.delete_stream(stream, hard=hard)
        return int(await self._http().call(http_calls.delete_stream(stream, hard)))

    async def scavenge(self) -> dict[str, Any]:
        """Run a scavenge on the server; returns its report."""
        if (amqp := self._lifetime()) is not None:
            return await amqp.scavenge()
        report: dict[str, Any] = await self._http().call(http_calls.scavenge())
        return report

    async def redact(
        self, *, stream: str | None = None, event_ids: Sequence[str] | None = None, reason: str | None = None
    ) -> int:
        """Redact a stream's events or chosen events; returns how many."""
        if (amqp := self._lifetime()) is not None:
            return await amqp.redact(stream=stream, event_ids=event_ids, reason=reason)
        return int(await self._http().call(http_calls.redact(stream, event_ids, reason)))

    # -- served over HTTP only ------------------------------------------------------------------

    async def read(
        self,
        stream: str = "__all__",
        *,
        from_: int | None = None,
        from_version: int | None = None,
        limit: int | None = None,
    ) -> Page:
        """One page of a stream's stored events (`Page.next` is the `from_` of the next page, None at the end)."""
        page: Page = await self._http().call(http_calls.read(stream, from_, from_version, limit))
        return page

    async def event(self, stream: str, order_id: int) -> RecordedEvent:
        """The event at `order_id` in `stream` (any stream for `__all__`); `NotFound` otherwise."""
        found: RecordedEvent = await self._http().call(http_calls.event(stream, order_id))
        return found

    async def position(self, consumer: str) -> ConsumerPosition:
        """A durable consumer's stream and last acknowledged order-id."""
        at: ConsumerPosition = await self._http().call(http_calls.position(consumer))
        return at

    async def forget_consumer(self, consumer: str) -> None:
        """Delete a durable consumer and its position."""
        await self._http().call(http_calls.forget_consumer(consumer))

    async def projections(self) -> list[dict[str, Any]]:
        """Every projection's descriptor (name, stream, status, position...), without its value."""
        listed: list[dict[str, Any]] = await self._http().call(http_calls.projections())
        return listed

    async def projection_value(self, name: str, key: str | None = None) -> Any:
        """A projection's current value, or one key (an index for an array) of it."""
        return await self._http().call(http_calls.projection_value(name, key))

    async def add_projection(
        self, name: str, reduction: str, language: str = "python", **fields: Any
    ) -> dict[str, Any]:
        """Register (or replace) projection `name` (as `PhotonClient.add_projection`)."""
        call = http_calls.add_projection(name, reduction, language, fields)
        descriptor: dict[str, Any] = await self._http().call(call)
        return descriptor

    async def remove_projection(self, name: str) -> None:
        await self._http().call(http_calls.remove_projection(name))

    # -- consumer groups (HTTP, or the AMQP transport's own) ------------------------------------

    async def create_group(self, name: str, **settings: Any) -> dict[str, Any]:
        """Create consumer group `name` (settings as in `PhotonClient.create_group`)."""
        if (amqp := self._amqp()) is not None:
            return await amqp.create_group(name, **settings)
        created: dict[str, Any] = await self._http().call(http_calls.create_group(name, settings))
        return created

    async def update_group(self, name: str, **changes: Any) -> dict[str, Any]:
        if (amqp := self._amqp()) is not None:
            return await amqp.update_group(name, **changes)
        updated: dict[str, Any] = await self._http().call(http_calls.update_group(name, changes))
        return updated

    async def delete_group(self, name: str) -> None:
        if (amqp := self._amqp()) is not None:
            await amqp.delete_group(name)
        else:
            await self._http().call(http_calls.delete_group(name))

    async def groups(self) -> list[dict[str, Any]]:
        """Every consumer group with its checkpoint, members and counters."""
        if (amqp := self._amqp()) is not None:
            return await amqp.groups()
        listed: list[dict[str, Any]] = await self._http().call(http_calls.groups())
        return listed

    async def group(self, name: str) -> dict[str, Any]:
        if (amqp := self._amqp()) is not None:
            return await amqp.group(name)
        described: dict[str, Any] = await self._http().call(http_calls.group(name))
        return described

    async def reset_group(self, name: str, from_: int) -> dict[str, Any]:
        """Start the group over from order-id `from_` (its members reconnect)."""
        if (amqp := self._amqp()) is not None:
            return await amqp.reset_group(name, from_)
        reset: dict[str, Any] = await self._http().call(http_calls.reset_group(name, from_))
        return reset

    async def replay_parked(self, name: str) -> int:
        """Hand the group's parked events back to it; returns how many."""
        if (amqp := self._amqp()) is not None:
            return await amqp.replay_parked(name)
        return int(await self._http().call(http_calls.replay_parked(name)))

    def join_group(
        self, name: str, member: str | None = None, *, max_in_flight: int | None = None, limit: int | None = None
    ) -> AsyncGroupMember | AsyncAmqpGroupMember:
        """Join group `name`: ``async with client.join_group(name) as member: async for delivery in
        member: ... await member.ack(...)``. `max_in_flight` lowers the group's limit of
        unacknowledged deliveries for this member; `limit` ends its deliveries after that many (a
        fetch: none is spent by its leaving). An unknown group raises `NotFound` when the
        membership starts (on `async with`, or the first delivery awaited)."""
        if (amqp := self._amqp()) is not None:
            return amqp.join_group(name, member, max_in_flight=max_in_flight, limit=limit)
        return AsyncGroupMember(self._http(), name, member, max_in_flight, limit)

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> AsyncPhotonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _typed(raw: AsyncIterator[Any]) -> AsyncIterator[ReplayItem]:
    """A transport's replay items as `RecordedEvent`s; closing this closes the transport's stream."""
    try:
        async for item in raw:
            yield as_item(item)
    finally:
        aclose = getattr(raw, "aclose", None)
        if aclose is not None:
            await aclose()


class AsyncGroupMember:
    """A consumer group member over HTTP: ``async for delivery in member`` (`GroupDelivery`), `await ack(...)`."""

    def __init__(
        self,
        transport: AsyncHttpTransport,
        group: str,
        member: str | None,
        max_in_flight: int | None = None,
        limit: int | None = None,
    ) -> None:
        self.transport = transport
        self.group = group
        self.id = member
        self._lines = transport.stream_lines(*http_calls.member_stream(group, member, max_in_flight, limit))
        self._left = limit
        """Deliveries still to come when joined with a `limit` (the server gives no more): at 0 the
        iteration ends; the member stays joined until `close`."""

    def __aiter__(self) -> AsyncGroupMember:
        return self

    async def __anext__(self) -> GroupDelivery:
        if self._left == 0:
            raise StopAsyncIteration
        async for line in self._lines:
            item = delivery_line(line)
            if isinstance(item, GroupDelivery):
                if self._left is not None:
                    self._left -= 1
                return item
            if item is not None:
                self.id = item
        raise StopAsyncIteration

    async def ack(self, order_ids: int | Sequence[int]) -> dict[str, Any]:
        """Acknowledge deliveries (order-ids); returns once durable: ``{"done": n, "unknown": [...]}``."""
        acked: dict[str, Any] = await self.transport.call(http_calls.ack_group(self.group, order_ids))
        return acked

    async def nack(self, order_ids: int | Sequence[int], action: str = "retry", reason: str = "") -> dict[str, Any]:
        """Refuse deliveries: `retry` (delivered again, counted), `park` or `skip`."""
        nacked: dict[str, Any] = await self.transport.call(http_calls.nack_group(self.group, order_ids, action, reason))
        return nacked

    async def close(self) -> None:
        await self._lines.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> AsyncGroupMember:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncDurableSubscription:
    """A named consumer's items as an async iterator; `await ack()` records what has been processed."""

    def __init__(self, transport: AsyncTransport, name: str, params: dict[str, Any]) -> None:
        self.transport = transport
        self.name = name
        self._items = _typed(transport.subscribe(name, params))
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
        return await self.transport.ack(self.name, target)

    async def close(self) -> None:
        await self._items.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> AsyncDurableSubscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
