"""The Python clients: emit, read, replay (cold, hot, hot-cold), durable subscriptions and projections over HTTP.

    from photon.client.blocking import PhotonClient

    with PhotonClient("http://localhost:3000", "admin", "p4010n") as photon:
        stored = photon.emit({"stream-name": "orders", "event-type": "placed", "payload": {"id": 7}})
        for event in photon.replay("orders", stream_type="cold"):
            print(event.order_id, event.payload)

Events come back as `photon.core.events.RecordedEvent`, the same type the embedded store returns
(`order_id`, `stream_name`, `stream_version`, `event_id`, `event_type`, `event_time`, `payload`,
`to_dict()` for Photon's field names). `AsyncPhotonClient` offers the same calls for asyncio.

`PhotonClient` speaks to the server through a `Transport`; `HttpTransport` is the one shipped
here. Another transport (AMQP, ...) implements the same few methods and is passed as
``PhotonClient(transport=...)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from photon.client import http_calls
from photon.client.groups import GroupDelivery, delivery_line
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
    from photon.client.amqp_groups import AmqpGroupMember

from photon.client.http import HttpTransport, Transport

__all__ = [
    "DEFAULT_URL",
    "AsyncPhotonClient",
    "ConsumerPosition",
    "DurableSubscription",
    "HttpTransport",
    "Page",
    "PhotonClient",
    "RecordedEvent",
    "ReplayItem",
    "Transport",
]


class DurableSubscription:
    """A named consumer's items; `ack()` records what has been processed."""

    def __init__(self, transport: Transport, name: str, params: dict[str, Any]) -> None:
        self.transport = transport
        self.name = name
        self._items = transport.subscribe(name, params)
        self.last_order_id: int | None = None

    def __iter__(self) -> Iterator[ReplayItem]:
        for raw in self._items:
            item = as_item(raw)
            if not isinstance(item, CaughtUp):
                self.last_order_id = item.order_id
            yield item

    def ack(self, order_id: int | None = None) -> dict[str, Any]:
        """Acknowledge up to `order_id` (default: the last event delivered)."""
        target = self.last_order_id if order_id is None else order_id
        if target is None:
            raise ValidationError("nothing delivered yet to acknowledge", "order-id")
        return self.transport.ack(self.name, target)

    def close(self) -> None:
        close = getattr(self._items, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> DurableSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PhotonClient:
    """A Photon server's client. Thread-safe for emits; one replay iterator per thread."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        user: str = "admin",
        password: str = "p4010n",
        *,
        transport: Transport | None = None,
        verify: bool | str = True,
        timeout: float = 30.0,
        retries: int = 2,
    ) -> None:
        self.transport: Transport = transport or HttpTransport(
            url, user, password, verify=verify, timeout=timeout, retries=retries
        )

    def emit(
        self,
        events: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        expected_version: int | str | None = None,
        expected_versions: Mapping[str, int | str] | None = None,
        condition: AppendCondition | Mapping[str, Any] | None = None,
    ) -> Any:
        """Store one event (returns the stored `RecordedEvent`) or a list atomically (returns the stored list).

        `expected_versions` and `condition` are those of `EventStore.append` (a batch over several
        streams; a conditional append, refused with `AppendConditionFailed`). Events without an `id`
        get one here, before sending, so a re-send after a lost answer (the transport re-sends by
        itself on a dropped connection) stores them once.
        """
        events = with_ids(events)
        if expected_versions is None and condition is None:
            return stored_events(self.transport.emit(events, expected_version))
        return stored_events(self.transport.emit(events, expected_version, expected_versions, condition))

    def _lifetime_calls(self) -> Any:
        """The AMQP client for stream metadata, deletes, scavenging and redaction; None: HTTP."""
        return None if isinstance(self.transport, HttpTransport) else getattr(self.transport, "lifetime_calls", None)

    def stream_metadata(self, stream: str) -> dict[str, Any]:
        """A stream's metadata (`max-age`, `max-count`, `truncate-before`, `tombstone`, user keys)."""
        if (calls := self._lifetime_calls()) is not None:
            found: dict[str, Any] = calls.stream_metadata(stream)
            return found
        metadata: dict[str, Any] = self._http().call(http_calls.stream_metadata(stream))
        return metadata

    def set_stream_metadata(self, stream: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """Replace a stream's metadata; returns it as stored."""
        if (calls := self._lifetime_calls()) is not None:
            stored: dict[str, Any] = calls.stream_metadata(stream, dict(metadata))
            return stored
        answer: dict[str, Any] = self._http().call(http_calls.set_stream_metadata(stream, metadata))
        return answer

    def delete_stream(self, stream: str, *, hard: bool = False) -> int:
        """Soft delete a stream (or hard: a tombstone); returns its version when deleted."""
        if (calls := self._lifetime_calls()) is not None:
            return int(calls.delete_stream(stream, hard=hard))
        return int(self._http().call(http_calls.delete_stream(stream, hard)))

    def scavenge(self) -> dict[str, Any]:
        """Run a scavenge on the server; returns its report."""
        calls = self._lifetime_calls()
        report: dict[str, Any] = calls.scavenge() if calls is not None else self._http().call(http_calls.scavenge())
        return report

    def redact(
        self, *, stream: str | None = None, event_ids: Sequence[str] | None = None, reason: str | None = None
    ) -> int:
        """Redact a stream's events or chosen events; returns how many."""
        if (calls := self._lifetime_calls()) is not None:
            return int(calls.redact(stream=stream, event_ids=event_ids, reason=reason))
        return int(self._http().call(http_calls.redact(stream, event_ids, reason)))

    def read_matching(
        self, query: Sequence[Mapping[str, Any]] = (), *, after: int = 0, limit: int | None = None
    ) -> Iterator[RecordedEvent]:
        """Events of client streams matching a query after a position (see `EventStore.read_matching`)."""
        read = getattr(self.transport, "read_matching", None)
        if read is None:
            raise NotImplementedError("reads by query are served over HTTP and AMQP; use one of those transports")
        remaining = limit
        while remaining is None or remaining > 0:
            page = 1000 if remaining is None else min(1000, remaining)
            answer = read({"query": [dict(item) for item in query], "after": after, "limit": page})
            yield from (as_event(e) for e in answer["results"])
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
    ) -> Iterator[ReplayItem]:
        """`RecordedEvent`s in order; with hot-cold, one `CaughtUp(order_id)` between history and live.
        `filter` narrows a replay of `__all__` or of a category (`__category__:<name>`), with a
        consumer group filter's keys: ``{"stream-prefix": [...], "event-type-prefix": [...],
        "stream-regex": "...", "event-type-regex": "...", "category": [...]}``."""
        params = replay_params(stream_type, from_, from_version, from_time, to, event_types, limit, filter)
        return _Typed(self.transport.replay(stream, params))

    def subscribe(
        self,
        name: str,
        stream: str | None = None,
        *,
        stream_type: str = "hot-cold",
        event_types: Sequence[str] | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> DurableSubscription:
        """Follow `stream` as the durable consumer `name`, from just after its last acknowledged event.
        `filter` narrows a subscription to `__all__` or a category, with the keys `replay` takes."""
        params = subscription_params(stream, stream_type, event_types, limit, filter)
        return DurableSubscription(self.transport, name, params)

    def streams(self) -> list[StreamInfo]:
        return [
            s if isinstance(s, StreamInfo) else StreamInfo(s["stream-name"], s["total-events"])
            for s in self.transport.streams()
        ]

    # -- served over HTTP only ------------------------------------------------------------------

    def _http(self) -> HttpTransport:
        if not isinstance(self.transport, HttpTransport):
            raise PhotonError(
                "projections, durable subscriptions and reads of stored pages are served over HTTP: "
                "use a client with the HTTP transport"
            )
        return self.transport

    def read(
        self,
        stream: str = "__all__",
        *,
        from_: int | None = None,
        from_version: int | None = None,
        limit: int | None = None,
    ) -> Page:
        """One page of a stream's stored events (`Page.next` is the `from_` of the next page, None at the end)."""
        page: Page = self._http().call(http_calls.read(stream, from_, from_version, limit))
        return page

    def event(self, stream: str, order_id: int) -> RecordedEvent:
        """The event at `order_id` in `stream` (any stream for `__all__`); `NotFound` otherwise."""
        found: RecordedEvent = self._http().call(http_calls.event(stream, order_id))
        return found

    def position(self, consumer: str) -> ConsumerPosition:
        """A durable consumer's stream and last acknowledged order-id."""
        at: ConsumerPosition = self._http().call(http_calls.position(consumer))
        return at

    def forget_consumer(self, consumer: str) -> None:
        """Delete a durable consumer and its position."""
        self._http().call(http_calls.forget_consumer(consumer))

    def projections(self) -> list[dict[str, Any]]:
        """Every projection's descriptor (name, stream, status, position...), without its value."""
        listed: list[dict[str, Any]] = self._http().call(http_calls.projections())
        return listed

    def projection_value(self, name: str, key: str | None = None) -> Any:
        """A projection's current value, or one key (an index for an array) of it."""
        return self._http().call(http_calls.projection_value(name, key))

    def add_projection(self, name: str, reduction: str, language: str = "python", **fields: Any) -> dict[str, Any]:
        """Register (or replace) projection `name` from its code (a whole module or one function);
        `fields` are other template fields (``stream_name="orders"``, ``initial_value={}``)."""
        descriptor: dict[str, Any] = self._http().call(http_calls.add_projection(name, reduction, language, fields))
        return descriptor

    def remove_projection(self, name: str) -> None:
        self._http().call(http_calls.remove_projection(name))

    # -- consumer groups (HTTP, or the transport's own: AMQP) -----------------------------------

    def _group_calls(self) -> Any:
        """A transport that serves consumer groups itself (AMQP) gives its calls; None: HTTP's."""
        return None if isinstance(self.transport, HttpTransport) else getattr(self.transport, "group_calls", None)

    def create_group(self, name: str, **settings: Any) -> dict[str, Any]:
        """Create consumer group `name`; `settings` as keywords (``stream="__category__:order"``,
        ``strategy="pinned"``, ``max_in_flight=5``, ``ack_timeout_ms=...``, ``max_retries=...``,
        ``serial=True``, ``start="end"``, ``filter={...}``). Returns the group's description."""
        calls = self._group_calls()
        created: dict[str, Any] = (
            calls.create_group(name, **settings)
            if calls is not None
            else self._http().call(http_calls.create_group(name, settings))
        )
        return created

    def update_group(self, name: str, **changes: Any) -> dict[str, Any]:
        calls = self._group_calls()
        updated: dict[str, Any] = (
            calls.update_group(name, **changes)
            if calls is not None
            else self._http().call(http_calls.update_group(name, changes))
        )
        return updated

    def delete_group(self, name: str) -> None:
        if (calls := self._group_calls()) is not None:
            calls.delete_group(name)
        else:
            self._http().call(http_calls.delete_group(name))

    def groups(self) -> list[dict[str, Any]]:
        """Every consumer group with its checkpoint, members and counters."""
        calls = self._group_calls()
        listed: list[dict[str, Any]] = calls.groups() if calls is not None else self._http().call(http_calls.groups())
        return listed

    def group(self, name: str) -> dict[str, Any]:
        calls = self._group_calls()
        described: dict[str, Any] = (
            calls.group(name) if calls is not None else self._http().call(http_calls.group(name))
        )
        return described

    def reset_group(self, name: str, from_: int) -> dict[str, Any]:
        """Start the group over from order-id `from_` (its members reconnect)."""
        calls = self._group_calls()
        reset: dict[str, Any] = (
            calls.reset_group(name, from_)
            if calls is not None
            else self._http().call(http_calls.reset_group(name, from_))
        )
        return reset

    def replay_parked(self, name: str) -> int:
        """Hand the group's parked events back to it; returns how many."""
        calls = self._group_calls()
        return int(
            calls.replay_parked(name) if calls is not None else self._http().call(http_calls.replay_parked(name))
        )

    def join_group(
        self, name: str, member: str | None = None, *, max_in_flight: int | None = None, limit: int | None = None
    ) -> GroupMember | AmqpGroupMember:
        """Join group `name` as a member: iterate over its `GroupDelivery`s, `ack`/`nack` them.
        `max_in_flight` lowers the group's limit of unacknowledged deliveries for this member;
        `limit` ends its deliveries after that many (a fetch: none is spent by its leaving)."""
        if (calls := self._group_calls()) is not None:
            joined: AmqpGroupMember = calls.join_group(name, member, max_in_flight=max_in_flight, limit=limit)
            return joined
        return GroupMember(self._http(), name, member, max_in_flight, limit)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> PhotonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GroupMember:
    """A member of a consumer group over HTTP: an iterator of `GroupDelivery`s, with `ack`/`nack`.

    The deliveries come on one streaming connection; acks and nacks go on another, kept alive, so
    no connection is opened per event. Closing the member (or losing its connection) gives its
    unacknowledged events back to the group.
    """

    def __init__(
        self,
        transport: HttpTransport,
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

    def __iter__(self) -> Iterator[GroupDelivery]:
        return self

    def __next__(self) -> GroupDelivery:
        if self._left == 0:
            raise StopIteration
        for line in self._lines:
            item = delivery_line(line)
            if isinstance(item, GroupDelivery):
                if self._left is not None:
                    self._left -= 1
                return item
            if item is not None:
                self.id = item
        raise StopIteration

    def ack(self, order_ids: int | Sequence[int]) -> dict[str, Any]:
        """Acknowledge deliveries (order-ids); returns once durable: ``{"done": n, "unknown": [...]}``."""
        acked: dict[str, Any] = self.transport.call(http_calls.ack_group(self.group, order_ids))
        return acked

    def nack(self, order_ids: int | Sequence[int], action: str = "retry", reason: str = "") -> dict[str, Any]:
        """Refuse deliveries: `retry` (delivered again, counted), `park` or `skip`."""
        nacked: dict[str, Any] = self.transport.call(http_calls.nack_group(self.group, order_ids, action, reason))
        return nacked

    def close(self) -> None:
        close = getattr(self._lines, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> GroupMember:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Typed(Iterator[ReplayItem]):
    """A transport's replay items as `RecordedEvent`s; closing it closes the transport's stream."""

    def __init__(self, raw: Iterator[Any]) -> None:
        self._raw = raw

    def __next__(self) -> ReplayItem:
        return as_item(next(self._raw))

    def close(self) -> None:
        close = getattr(self._raw, "close", None)
        if close is not None:
            close()


from photon.client.asynchronous import AsyncPhotonClient  # noqa: E402  (the same calls for asyncio)
