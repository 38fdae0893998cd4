"""The Python client: emit, replay (cold, hot, hot-cold) and durable subscriptions over HTTP.

    from photon.client import PhotonClient

    with PhotonClient("http://localhost:3000", "admin", "p4010n") as photon:
        stored = photon.emit({"stream-name": "orders", "event-type": "placed", "payload": {"id": 7}})
        for item in photon.replay("orders", stream_type="cold"):
            print(item["order-id"], item["payload"])

`PhotonClient` speaks to the server through a `Transport`; `HttpTransport` is the one shipped
here. Another transport (AMQP, ...) implements the same few methods and is passed as
``PhotonClient(transport=...)``.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import httpx
import orjson

from .append_request import AppendCondition, emit_body
from .errors import (
    AppendConditionFailed,
    NotAuthorized,
    NotFound,
    PhotonError,
    ServerUnreachable,
    StoreClosed,
    ValidationError,
    VersionConflict,
)
from .subscriptions import CaughtUp

Event = dict[str, Any]
ReplayItem = Event | CaughtUp

DEFAULT_URL = "http://localhost:3000"


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

    def replay(self, stream: str, params: dict[str, Any]) -> Iterator[ReplayItem]:
        """Replay items: event dicts, and `CaughtUp` between history and live."""

    def subscribe(self, name: str, params: dict[str, Any]) -> Iterator[ReplayItem]:
        """A durable consumer's items, starting after its last acknowledged event."""

    def ack(self, name: str, order_id: int) -> dict[str, Any]: ...

    def streams(self) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
        message = body.get("error", response.text) if isinstance(body, dict) else response.text
    except ValueError:
        body, message = {}, response.text
    status = response.status_code
    if status == 401:
        raise NotAuthorized(message)
    if status == 409 and body.get("condition-failed"):
        raise AppendConditionFailed.from_fields(body, message)
    if status == 409 and "current-version" in body:
        raise VersionConflict(body["stream-name"], body["expected-version"], body["current-version"])
    if status == 404:
        raise NotFound(message)
    if status in (400, 413):
        raise ValidationError(message, body.get("field"))
    if status == 503:
        raise StoreClosed(message)
    raise PhotonError(f"HTTP {status}: {message}")


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    rest = b""
    for chunk in chunks:
        if rest:
            chunk = rest + chunk
        lines = chunk.split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _items(lines: Iterator[bytes]) -> Iterator[ReplayItem]:
    for line in lines:
        if not line:
            continue
        item = orjson.loads(line)
        if "caught-up" in item and len(item) == 1:
            yield CaughtUp(item["caught-up"])
        else:
            yield item


def _query(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ",".join(value) if isinstance(value, (list, tuple, set, frozenset)) else value
    return out


def _quote(part: str) -> str:
    from urllib.parse import quote

    return quote(part, safe="")


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
    ) -> None:
        self.url = url.rstrip("/")
        self._auth = (user, password)
        if isinstance(verify, str):  # a CA file, such as a self-signed server certificate
            verify = ssl.create_default_context(cafile=verify)
        self._http = httpx.Client(base_url=self.url, verify=verify, timeout=timeout)
        self._token: str | None = None

    def token(self, renew: bool = False) -> str:
        if self._token is None or renew:
            with self._reaching():
                response = self._http.get("/auth/token", auth=self._auth)
            _raise_for(response)
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
            response = self._http.request(method, path, headers=self._headers(), **kwargs)
            if response.status_code == 401:  # expired: renew once
                response = self._http.request(method, path, headers=self._headers(renew=True), **kwargs)
        _raise_for(response)
        return response

    def _stream(self, path: str, params: dict[str, Any]) -> Iterator[ReplayItem]:
        with self._reaching():
            yield from self._stream_items(path, params)

    def _stream_items(self, path: str, params: dict[str, Any]) -> Iterator[ReplayItem]:
        for attempt in (0, 1):
            with self._http.stream(
                "GET",
                path,
                params=_query(params),
                headers=self._headers(renew=attempt == 1),
                timeout=httpx.Timeout(self._http.timeout.connect, read=None),
            ) as response:
                if response.status_code == 401 and attempt == 0:
                    continue
                if response.status_code >= 400:
                    response.read()
                    _raise_for(response)
                yield from _items(_lines(response.iter_bytes()))
                return

    def emit(
        self,
        events: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        expected_version: Any,
        expected_versions: Mapping[str, Any] | None = None,
        condition: Any = None,
    ) -> Any:
        body: Any = events if isinstance(events, Mapping) else list(events)
        content = orjson.dumps(emit_body(body, expected_version, expected_versions, condition))
        return orjson.loads(self.request("POST", "/api/event", content=content).content)

    def read_matching(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(
            self.request("POST", "/api/read-matching", content=orjson.dumps(body)).content
        )
        return result

    def replay(self, stream: str, params: dict[str, Any]) -> Iterator[ReplayItem]:
        return self._stream(f"/api/replay/{stream}", params)

    def subscribe(self, name: str, params: dict[str, Any]) -> Iterator[ReplayItem]:
        return self._stream(f"/api/subscription/{name}", params)

    def ack(self, name: str, order_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/api/subscription/{name}/ack", json={"order-id": order_id}
        ).json()
        return result

    def streams(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/streams").json()["streams"]
        return result

    def close(self) -> None:
        self._http.close()


class DurableSubscription:
    """A named consumer's items; `ack()` records what has been processed."""

    def __init__(self, transport: Transport, name: str, params: dict[str, Any]) -> None:
        self.transport = transport
        self.name = name
        self._items = transport.subscribe(name, params)
        self.last_order_id: int | None = None

    def __iter__(self) -> Iterator[ReplayItem]:
        for item in self._items:
            if not isinstance(item, CaughtUp):
                self.last_order_id = item["order-id"]
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
    ) -> None:
        self.transport: Transport = transport or HttpTransport(url, user, password, verify=verify, timeout=timeout)

    def emit(
        self,
        events: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        expected_version: int | str | None = None,
        expected_versions: Mapping[str, int | str] | None = None,
        condition: AppendCondition | Mapping[str, Any] | None = None,
    ) -> Any:
        """Store one event (returns the stored event) or a list atomically (returns the stored list).

        `expected_versions` and `condition` are those of `EventStore.append` (a batch over several
        streams; a conditional append, refused with `AppendConditionFailed`)."""
        if expected_versions is None and condition is None:
            return self.transport.emit(events, expected_version)
        return self.transport.emit(events, expected_version, expected_versions, condition)

    def read_matching(
        self, query: Sequence[Mapping[str, Any]] = (), *, after: int = 0, limit: int | None = None
    ) -> Iterator[Event]:
        """Events of client streams matching a query after a position (see `EventStore.read_matching`)."""
        read = getattr(self.transport, "read_matching", None)
        if read is None:
            raise NotImplementedError("reads by query are served over HTTP; use the HTTP transport")
        remaining = limit
        while remaining is None or remaining > 0:
            page = 1000 if remaining is None else min(1000, remaining)
            answer = read({"query": [dict(item) for item in query], "after": after, "limit": page})
            yield from answer["results"]
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
    ) -> Iterator[ReplayItem]:
        """Events as dicts in order; with hot-cold, one `CaughtUp(order_id)` between history and live."""
        params = {
            "stream-type": stream_type,
            "from": from_,
            "from-version": from_version,
            "from-time": from_time,
            "to": to,
            "event-types": event_types,
            "limit": limit,
        }
        return self.transport.replay(stream, params)

    def subscribe(
        self,
        name: str,
        stream: str | None = None,
        *,
        stream_type: str = "hot-cold",
        event_types: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> DurableSubscription:
        """Follow `stream` as the durable consumer `name`, from just after its last acknowledged event."""
        params = {"stream": stream, "stream-type": stream_type, "event-types": event_types, "limit": limit}
        return DurableSubscription(self.transport, name, params)

    def streams(self) -> list[dict[str, Any]]:
        return self.transport.streams()

    # -- projections (served over HTTP) --------------------------------------------------------

    def _http(self) -> HttpTransport:
        if not isinstance(self.transport, HttpTransport):
            raise PhotonError("projections are served over HTTP: use a client with the HTTP transport")
        return self.transport

    def projections(self) -> list[dict[str, Any]]:
        """Every projection's descriptor (name, stream, status, position...), without its value."""
        result: list[dict[str, Any]] = self._http().request("GET", "/api/projections").json()
        return result

    def projection_value(self, name: str, key: str | None = None) -> Any:
        """A projection's current value, or one key (an index for an array) of it."""
        if key is not None:
            return self._http().request("GET", f"/api/projection/{_quote(name)}/{_quote(key)}").json()
        return self._http().request("GET", f"/api/projection/{_quote(name)}").json()["current-value"]

    def add_projection(self, name: str, reduction: str, language: str = "python", **fields: Any) -> dict[str, Any]:
        """Register (or replace) projection `name` from its code (a whole module or one function);
        `fields` are other template fields (``stream_name="orders"``, ``initial_value={}``)."""
        template = {"projection-name": name, "language": language, "reduction": reduction}
        template.update({key.replace("_", "-"): value for key, value in fields.items()})
        descriptor: dict[str, Any] = (
            self._http().request("POST", "/api/projection", content=orjson.dumps(template)).json()["projection"]
        )
        return descriptor

    def remove_projection(self, name: str) -> None:
        self._http().request("DELETE", f"/api/projection/{_quote(name)}")

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> PhotonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
