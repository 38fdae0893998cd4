"""How the recorders reach Photon: an embedded store in this process, or a server over HTTP.

Both give the recorders the same few operations (`PhotonAccess`): an atomic append over several
streams with an expected version per stream, reads of a stream from a version, reads of `__all__`
between order-ids with an event-type filter, the last order-id, and a live replay of `__all__`
from an order-id. Every rule about the events themselves stays in Photon's core: these classes
only carry requests to it.

Long because the one set of operations is written three times over: embedded, remote, and the
wrapper that gives each error the library's type.
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from photon.client.blocking import HttpTransport
from photon.client.wire import raise_for as _raise_for
from photon.core.backend import backend_class
from photon.core.config import Config
from photon.core.data_reads import read_data_rows
from photon.core.errors import (
    AppendConditionFailed,
    NotAuthorized,
    NotFound,
    PhotonError,
    ReadOnlyStore,
    ServerUnreachable,
    ValidationError,
    VersionConflict,
)
from photon.core.events import ALL_STREAM, RecordedEvent
from photon.core.store import EventStore
from photon.eventsourcing.http_requests import ShortRequests

Event = RecordedEvent
"""What a recorder reads: a stored Photon event (its positions, names, and its whole JSON; the
payload is read from the JSON only when needed). A server's events are turned into the same."""


def _from_line(line: bytes) -> Event:
    event = orjson.loads(line)
    return RecordedEvent(
        event["order-id"],
        event["stream-name"],
        event["stream-version"],
        event["id"],
        event["event-type"],
        event["event-time"],
        line,
    )


class LiveEvents(abc.ABC):
    """Events of `__all__` from an order-id on, history then live, until `stop`."""

    @abc.abstractmethod
    def next(self, timeout: float) -> Event | None:
        """The next event, or None when none came within `timeout` seconds."""

    @abc.abstractmethod
    def stop(self) -> None:
        """End the replay (from any thread)."""


class PhotonAccess(abc.ABC):
    """The operations the recorders use; see the module docstring."""

    @abc.abstractmethod
    def append(
        self,
        events: Sequence[Mapping[str, Any]],
        expected_versions: Mapping[str, int | str],
        condition: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """Store `events` atomically, each named stream at its expected version and only if no
        event matches `condition` (Photon's JSON form); their order-ids.

        Raises `photon.core.errors.VersionConflict` (naming the stream) when a version differs,
        `photon.core.errors.AppendConditionFailed` when the condition fails.
        """

    @abc.abstractmethod
    def read_matching(self, query: list[dict[str, Any]], after: int, limit: int) -> tuple[list[Event], int]:
        """Up to `limit` events of client streams matching `query` after order-id `after`, and
        the store's last order-id when the read began (no event past it is returned)."""

    @abc.abstractmethod
    def read_stream(self, stream: str, from_version: int, limit: int | None) -> list[Event]:
        """A stream's events from `from_version` on, at most `limit` of them."""

    @abc.abstractmethod
    def stream_version(self, stream: str) -> int:
        """The stream's current version (0 when it has no events)."""

    @abc.abstractmethod
    def read_all(
        self, from_order_id: int, to_order_id: int | None, event_types: Sequence[str], limit: int
    ) -> list[Event]:
        """`__all__` from `from_order_id` to `to_order_id` (inclusive), only `event_types` if any given."""

    def read_all_data(
        self, from_order_id: int, to_order_id: int | None, event_types: Sequence[str], limit: int
    ) -> list[tuple[int, bytes]]:
        """`read_all` as each event's (order-id, stored JSON): what a notification select decodes."""
        return [(event.order_id, event.data) for event in self.read_all(from_order_id, to_order_id, event_types, limit)]

    @abc.abstractmethod
    def last_order_id(self) -> int:
        """The newest order-id (0 for an empty store)."""

    @abc.abstractmethod
    def live(self, from_order_id: int, event_types: Sequence[str]) -> LiveEvents:
        """`__all__` from `from_order_id`, history then live."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release what this access holds."""


# -- embedded ----------------------------------------------------------------------------------

MAX_PAGE_EVENTS = 5000
"""Events per backend statement of `read_all_data` (bounded by `replay.page.bytes` too)."""


class _EmbeddedLive(LiveEvents):
    def __init__(self, store: EventStore, from_order_id: int, event_types: Sequence[str]) -> None:
        self._subscription = store.subscribe(
            ALL_STREAM, "hot-cold", from_order_id=from_order_id, event_types=event_types or None
        )
        self._lock = threading.Lock()

    def next(self, timeout: float) -> Event | None:
        with self._lock:
            while True:
                item = self._subscription.get(timeout)
                if item is None:
                    return None
                if not isinstance(item, RecordedEvent):
                    continue  # the markers between history and live
                return item

    def stop(self) -> None:
        self._subscription.close()


class _SharedStore:
    """One open store per configuration in a process: a persistent store has one writer, and the
    applications of a process that name the same store share it (a store in memory is not shared)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.users = 0


_stores: dict[tuple[tuple[str, str], ...], _SharedStore] = {}
_stores_lock = threading.RLock()
"""Reentrant: the library's `Application.__del__` closes its factory, and the garbage collector
may run it in the middle of opening another store (under this lock, in the same thread); a plain
lock would wait on itself there for ever."""


def _store_key(config: Config) -> tuple[tuple[str, str], ...]:
    # What was set, not the defaults: some defaults are made afresh each time (admin.secret).
    return tuple(sorted((key, str(config[key])) for key, source in config.sources.items() if source != "default"))


class EmbeddedAccess(PhotonAccess):
    """A Photon store opened in this process (SQLite, PostgreSQL, ... as its configuration says)."""

    def __init__(self, config: Config) -> None:
        self._key = _store_key(config)
        self._closed = False
        if not backend_class(config["db.backend"]).persistent:
            # A store in memory (`memory`) is the application's own, as the library's POPO and
            # SQLite ':memory:' recorders are: nothing outside the process could reach it, and
            # sharing it would let applications a test suite never closes see each other's events.
            self._private = True
            self.store = EventStore.open(config)
            return
        self._private = False
        with _stores_lock:
            shared = _stores.get(self._key)
            if shared is None or shared.store.closed:
                shared = _stores[self._key] = _SharedStore(EventStore.open(config))
            shared.users += 1
        self.store = shared.store

    def append(
        self,
        events: Sequence[Mapping[str, Any]],
        expected_versions: Mapping[str, int | str],
        condition: Mapping[str, Any] | None = None,
    ) -> list[int]:
        stored = self.store.append(events, expected_versions=expected_versions or None, condition=condition)
        return [e.order_id for e in stored]

    def read_matching(self, query: list[dict[str, Any]], after: int, limit: int) -> tuple[list[Event], int]:
        head = self.store.last_order_id()
        found = self.store.read_matching(query, after=after, limit=limit)
        return [e for e in found if e.order_id <= head], head

    def read_stream(self, stream: str, from_version: int, limit: int | None) -> list[Event]:
        return list(self.store.read(stream, from_version=from_version, limit=limit))

    def stream_version(self, stream: str) -> int:
        return self.store.stream_version(stream)

    def read_all(
        self, from_order_id: int, to_order_id: int | None, event_types: Sequence[str], limit: int
    ) -> list[Event]:
        return list(
            self.store.read(
                ALL_STREAM,
                from_order_id=from_order_id,
                to_order_id=to_order_id,
                event_types=event_types or None,
                limit=limit,
            )
        )

    def read_all_data(
        self, from_order_id: int, to_order_id: int | None, event_types: Sequence[str], limit: int
    ) -> list[tuple[int, bytes]]:
        # The two cheapest columns, `limit` events in the first statement (see `read_data_rows`).
        rows: list[tuple[int, bytes]] = []
        pages = read_data_rows(
            self.store,
            ALL_STREAM,
            from_order_id=from_order_id,
            to_order_id=to_order_id,
            event_types=event_types or None,
            max_events=min(limit, MAX_PAGE_EVENTS),
            first_events=limit,
        )
        for page in pages:
            rows += page
            if len(rows) >= limit:
                del rows[limit:]
                break
        return rows

    def last_order_id(self) -> int:
        return self.store.last_order_id()

    def live(self, from_order_id: int, event_types: Sequence[str]) -> LiveEvents:
        return _EmbeddedLive(self.store, from_order_id, event_types)

    def close(self) -> None:
        with _stores_lock:
            if self._closed:
                return
            self._closed = True
            if self._private:
                self.store.close()
                return
            shared = _stores.get(self._key)
            if shared is None or shared.store is not self.store:
                return
            shared.users -= 1
            if shared.users == 0:
                del _stores[self._key]
                self.store.close()


# -- remote ------------------------------------------------------------------------------------


class _RemoteLive(LiveEvents):
    """A hot-cold replay of `__all__` over HTTP (NDJSON), read by a thread into a queue so that
    `next` can wait with a time-out and `stop` can end it from any thread."""

    def __init__(self, access: RemoteAccess, from_order_id: int, event_types: Sequence[str]) -> None:
        import queue

        self._queue: queue.Queue[Event | BaseException | None] = queue.Queue(maxsize=10_000)
        self._stopped = threading.Event()
        self._error: BaseException | None = None
        self._response: httpx.Response | None = None
        params: dict[str, Any] = {"stream-type": "hot-cold", "from": from_order_id}
        if event_types:
            params["event-types"] = list(event_types)
        self._thread = threading.Thread(target=self._run, args=(access, params), daemon=True)
        self._thread.start()

    def _run(self, access: RemoteAccess, params: dict[str, Any]) -> None:
        try:
            http = access.transport.http
            with http.stream(
                "GET",
                f"/api/replay/{ALL_STREAM}",
                params=params,
                headers=access.headers(),
                timeout=httpx.Timeout(30.0, read=None),
            ) as response:
                self._response = response
                if response.status_code >= 400:
                    response.read()
                    _raise_for(response)
                for text in response.iter_lines():
                    if self._stopped.is_set():
                        return
                    if not text or text.startswith('{"caught-up"'):
                        continue
                    self._queue.put(_from_line(text.encode()))
            # A live replay ends only when stopped: the server ended it (it stopped or restarted).
            raise ServerUnreachable(
                f"the Photon server at {access.transport.url} ended the live replay of {ALL_STREAM} "
                "(it stopped or restarted): subscribe again from the last notification id"
            )
        except httpx.TransportError as exc:
            if not self._stopped.is_set():
                self._queue.put(
                    ServerUnreachable(f"the live replay from the Photon server at {access.transport.url} broke: {exc}")
                )
        except BaseException as exc:
            if not self._stopped.is_set():
                self._queue.put(exc)
        finally:
            self._queue.put(None)

    def next(self, timeout: float) -> Event | None:
        import queue

        if self._error is not None:
            raise self._error  # every later call too: the replay is over
        if self._stopped.is_set():
            return None
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            self._error = item
            raise item
        if item is None:
            self._stopped.set()
        return item

    def stop(self) -> None:
        self._stopped.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):  # closing from another thread may race with its reader
                response.close()


MATCHING_PAGE = 1000
"""Events per /api/read-matching request (the route's largest page)."""


class RemoteAccess(PhotonAccess):
    """A running Photon server, through its HTTP API (a token from the admin credentials)."""

    def __init__(self, url: str, user: str, password: str, *, verify: bool | str = True) -> None:
        self.transport = HttpTransport(url, user, password, verify=verify)
        try:
            self.transport.token()  # fail now, naming the server, if it cannot be reached or refuses us
        except NotAuthorized:
            raise NotAuthorized(
                f"the Photon server at {self.transport.url} refused user {user!r} and its password: "
                "set PHOTON_ADMIN_USER and PHOTON_ADMIN_PASS to the server's admin.user and admin.pass"
            ) from None
        self.short = ShortRequests(self.transport.url, self.transport.token, verify=verify)
        """Inserts and reads: one request each, answered whole (see `http_requests`)."""

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.transport.token()}"}

    def append(
        self,
        events: Sequence[Mapping[str, Any]],
        expected_versions: Mapping[str, int | str],
        condition: Mapping[str, Any] | None = None,
    ) -> list[int]:
        request: dict[str, Any] = {"events": list(events)}
        if expected_versions:
            request["expected-versions"] = dict(expected_versions)
        if condition is not None:
            request["condition"] = dict(condition)
        stored = orjson.loads(self.short.request("POST", "/api/event", body=orjson.dumps(request)))
        return [e["order-id"] for e in stored]

    def read_matching(self, query: list[dict[str, Any]], after: int, limit: int) -> tuple[list[Event], int]:
        events: list[Event] = []
        head: int | None = None
        position = after
        while len(events) < limit:
            body = {"query": query, "after": position, "limit": min(limit - len(events), MATCHING_PAGE)}
            answer = orjson.loads(self.short.request("POST", "/api/read-matching", body=orjson.dumps(body)))
            if head is None:
                head = int(answer["head"])  # taken by the server before it read
            for item in answer["results"]:
                if item["order-id"] <= head:
                    events.append(_from_line(orjson.dumps(item)))
            if answer["next"] is None:
                break
            position = int(answer["next"])
        return events, head if head is not None else 0

    def _cold(self, stream: str, params: dict[str, Any]) -> list[Event]:
        params["stream-type"] = "cold"
        content = self.short.request("GET", f"/api/replay/{_quote(stream)}", params=params)
        return [_from_line(line) for line in content.splitlines() if line and not line.startswith(b'{"caught-up"')]

    def read_stream(self, stream: str, from_version: int, limit: int | None) -> list[Event]:
        params: dict[str, Any] = {"from-version": from_version}
        if limit is not None:
            params["limit"] = limit
        try:
            return self._cold(stream, params)
        except PhotonError as exc:
            if _no_such_stream(exc):
                return []
            raise

    def stream_version(self, stream: str) -> int:
        # The stream's newest event, read backwards: one short request however long the stream.
        params = {"direction": "backward", "limit": 1}
        try:
            content = self.short.request("GET", f"/api/stream-contents/{_quote(stream)}", params=params)
        except PhotonError as exc:
            if _no_such_stream(exc):
                return 0
            raise
        newest = orjson.loads(content)["results"]
        return int(newest[0]["stream-version"]) if newest else 0

    def read_all(
        self, from_order_id: int, to_order_id: int | None, event_types: Sequence[str], limit: int
    ) -> list[Event]:
        params: dict[str, Any] = {"from": from_order_id, "limit": limit}
        if to_order_id is not None:
            params["to"] = to_order_id
        if event_types:
            params["event-types"] = list(event_types)
        return self._cold(ALL_STREAM, params)

    def last_order_id(self) -> int:
        # A hot replay starts with the server's head: the order-id it is caught up to.
        with self.transport.http.stream(
            "GET", f"/api/replay/{ALL_STREAM}", params={"stream-type": "hot"}, headers=self.headers()
        ) as response:
            if response.status_code >= 400:
                response.read()
                _raise_for(response)
            for line in response.iter_lines():
                if line:
                    item = orjson.loads(line)
                    if "caught-up" in item:
                        return int(item["caught-up"])
        raise ServerUnreachable("the server ended a hot replay before saying where it was")

    def live(self, from_order_id: int, event_types: Sequence[str]) -> LiveEvents:
        return _RemoteLive(self, from_order_id, event_types)

    def close(self) -> None:
        self.short.close()
        self.transport.close()


def _no_such_stream(exc: PhotonError) -> bool:
    """Whether the server refused a read of a stream for having no such stream (which the
    recorders read as an empty one)."""
    return "does not exist" in str(exc)


def _quote(part: str) -> str:
    from urllib.parse import quote

    return quote(part, safe="")


# -- errors as the library names them ------------------------------------------------------------


def library_error(exc: PhotonError) -> Exception:
    """The `eventsourcing` exception a caller of a recorder expects for a Photon error."""
    from eventsourcing import persistence

    if isinstance(exc, (ValidationError, NotFound)):
        return persistence.DataError(str(exc))
    if isinstance(exc, (ReadOnlyStore, NotAuthorized)):
        return persistence.InterfaceError(str(exc))
    return persistence.OperationalError(str(exc))


class LibraryErrors(PhotonAccess):
    """An access whose errors are the library's (`DataError` for refused input, `OperationalError`
    for a server or store that cannot do its part), except the two the recorders decide on
    themselves: `VersionConflict` and `AppendConditionFailed`."""

    def __init__(self, access: PhotonAccess) -> None:
        self.inner: PhotonAccess = access.inner if isinstance(access, LibraryErrors) else access

    def append(
        self,
        events: Sequence[Mapping[str, Any]],
        expected_versions: Mapping[str, int | str],
        condition: Mapping[str, Any] | None = None,
    ) -> list[int]:
        try:
            return self.inner.append(events, expected_versions, condition)
        except (VersionConflict, AppendConditionFailed):
            raise
        except PhotonError as exc:
            raise library_error(exc) from exc

    def read_matching(self, query: list[dict[str, Any]], after: int, limit: int) -> tuple[list[Event], int]:
        try:
            return self.inner.read_matching(query, after, limit)
        except PhotonError as exc:
            raise library_error(exc) from exc

    def read_stream(self, stream: str, from_version: int, limit: int | None) -> list[Event]:
        try:
            return self.inner.read_stream(stream, from_version, limit)
        except PhotonError as exc:
            raise library_error(exc) from exc

    def read_all(
        self, from_order_id: int, to_order_id: int | None, event_types: Sequence[str], limit: int
    ) -> list[Event]:
        try:
            return self.inner.read_all(from_order_id, to_order_id, event_types, limit)
        except PhotonError as exc:
            raise library_error(exc) from exc

    def read_all_data(
        self, from_order_id: int, to_order_id: int | None, event_types: Sequence[str], limit: int
    ) -> list[tuple[int, bytes]]:
        try:
            return self.inner.read_all_data(from_order_id, to_order_id, event_types, limit)
        except PhotonError as exc:
            raise library_error(exc) from exc

    def stream_version(self, stream: str) -> int:
        try:
            return self.inner.stream_version(stream)
        except PhotonError as exc:
            raise library_error(exc) from exc

    def last_order_id(self) -> int:
        try:
            return self.inner.last_order_id()
        except PhotonError as exc:
            raise library_error(exc) from exc

    def live(self, from_order_id: int, event_types: Sequence[str]) -> LiveEvents:
        try:
            return _LibraryErrorsLive(self.inner.live(from_order_id, event_types))
        except PhotonError as exc:
            raise library_error(exc) from exc

    def close(self) -> None:
        self.inner.close()


class _LibraryErrorsLive(LiveEvents):
    """A live replay whose errors are the library's (a server that ended it: `OperationalError`)."""

    def __init__(self, inner: LiveEvents) -> None:
        self.inner = inner

    def next(self, timeout: float) -> Event | None:
        try:
            return self.inner.next(timeout)
        except PhotonError as exc:
            raise library_error(exc) from exc

    def stop(self) -> None:
        self.inner.stop()
