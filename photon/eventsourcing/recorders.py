"""The `eventsourcing` library's recorders over Photon: aggregate, application, tracking, process.

Appends go through Photon's core as one atomic multi-stream append with an expected version for
each stream written (and for the tracking stream of a process application), so that the
library's optimistic concurrency and "tracking with its events, or nothing" hold across
processes and over HTTP. The recorders keep a small cache of each stream's head (its Photon
version and last originator version) only to guess the expected version; the core decides, and
a wrong guess costs one read and one more attempt.

Notification ids are Photon order-ids (positions in `__all__`). An application's notification
log is the events of its category in `__all__`, in order; when the store holds nothing else
they are 1, 2, 3, ...; other applications' events, snapshots, tracking records and `__config__`
events take order-ids too, which leaves gaps (the library allows gaps; see the README).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    IntegrityError,
    Notification,
    OperationalError,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)

from photon.core.errors import VersionConflict
from photon.eventsourcing.access import Event, LibraryErrors, LiveEvents, PhotonAccess
from photon.eventsourcing.mapping import (
    NOTIFICATION_ID,
    ORIGINATOR_VERSION,
    TRACKING_TYPE,
    IdType,
    NotificationReader,
    OriginatorIds,
    encode_payload,
    originator_version,
    payload,
    to_notification,
    to_stored_event,
    tracking_stream,
)

MAX_ATTEMPTS = 50
"""Appends retried after a wrong guess of a stream's version before giving up (each retry
follows a read of the stream's head, so only a stream written continuously by others gets here)."""
HEADS_CACHED = 100_000
"""Stream heads kept per recorder (the cache is emptied when it grows past this)."""
NOTIFICATION_PAGE = 1000
"""`__all__` events read per request while collecting an application's notifications."""


def _number(expected: int | str) -> int:
    return 0 if expected == "no-stream" else int(expected)


class _Head(NamedTuple):
    """What a recorder last knew of a stream: its Photon version and the position it holds
    there (an originator version, or a tracked notification id), and, when known, the
    difference between originator version and Photon version of its first event."""

    version: int
    position: int
    first_offset: int | None


class PhotonRecorder:
    """What every recorder shares: the access to Photon, the category, the stream heads."""

    def __init__(self, access: PhotonAccess, category: str, originator_id_type: IdType = "uuid") -> None:
        self.access = LibraryErrors(access)
        self.category = category
        self.prefix = category + "-"
        self.originator_id_type: IdType = originator_id_type
        self._notifications = NotificationReader(self.prefix, originator_id_type)
        """Decodes notification selects, remembering originator ids and topics from one to the next."""
        self._heads: dict[str, _Head] = {}
        self._heads_lock = threading.Lock()

    def _head(self, stream: str) -> _Head | None:
        return self._heads.get(stream)

    def _set_head(self, stream: str, head: _Head) -> None:
        with self._heads_lock:
            if len(self._heads) >= HEADS_CACHED:
                self._heads.clear()
            old = self._heads.get(stream)
            if old is None or head.version >= old.version:
                if old is not None and head.first_offset is None:
                    head = head._replace(first_offset=old.first_offset)
                self._heads[stream] = head

    def _read_head(self, stream: str, version: int, key: str) -> None:
        """Learn a stream's head after the core said it is at `version`."""
        if version == 0:
            with self._heads_lock:
                self._heads.pop(stream, None)
            return
        events = self.access.read_stream(stream, version, 1)
        if not events:  # it moved on (or was deleted) meanwhile: the next attempt will say
            with self._heads_lock:
                self._heads.pop(stream, None)
            return
        event = events[0]
        position = int(payload(event.data)[key])
        first_offset = position - 1 if event.stream_version == 1 and key == ORIGINATOR_VERSION else None
        with self._heads_lock:
            self._heads[stream] = _Head(event.stream_version, position, first_offset)

    def _insert(self, stored_events: Sequence[StoredEvent], tracking: Tracking | None) -> list[int]:
        """Append `stored_events` (and the tracking record) atomically; their notification ids."""
        groups, events = self._groups(stored_events)
        tracked: str | None = None
        if tracking is not None:
            tracked = tracking_stream(self.category, tracking.application_name)
            events.append(
                {
                    "stream-name": tracked,
                    "event-type": TRACKING_TYPE,
                    "payload": {NOTIFICATION_ID: tracking.notification_id},
                }
            )
        if not events:
            return []
        return self._append(stored_events, groups, events, tracking, tracked)

    def _groups(
        self, stored_events: Sequence[StoredEvent]
    ) -> tuple[dict[str, list[StoredEvent]], list[dict[str, Any]]]:
        """The stored events of each stream (one per aggregate), and their Photon events in order.

        Raises `IntegrityError` when an aggregate's versions do not increase."""
        groups: dict[str, list[StoredEvent]] = {}
        events: list[dict[str, Any]] = []
        prefix = self.prefix
        originator: object = None
        stream = ""
        for stored in stored_events:
            if stored.originator_id is not originator:  # an insert is mostly one aggregate's events
                originator = stored.originator_id
                stream = prefix + str(originator)
            group = groups.get(stream)
            if group is None:
                groups[stream] = [stored]
            else:
                if stored.originator_version <= group[-1].originator_version:
                    raise IntegrityError(
                        f"stored events of {stored.originator_id} must have increasing versions: "
                        f"{stored.originator_version} follows {group[-1].originator_version}"
                    )
                group.append(stored)
            events.append({"stream-name": stream, "event-type": stored.topic, "payload": encode_payload(stored)})
        return groups, events

    def _append(
        self,
        stored_events: Sequence[StoredEvent],
        groups: Mapping[str, Sequence[StoredEvent]],
        events: list[dict[str, Any]],
        tracking: Tracking | None,
        tracked: str | None,
    ) -> list[int]:
        """Append `events` with an expected version for each stream of `groups` (and the tracking
        stream), guessed from the heads known and learnt again after a wrong guess."""
        for _attempt in range(MAX_ATTEMPTS):
            expected: dict[str, int | str] = {}
            for stream, group in groups.items():
                expected[stream] = self._expect(stream, group[0].originator_version, "stored event", group[0])
            if tracked is not None and tracking is not None:
                expected[tracked] = self._expect(tracked, tracking.notification_id, "tracking", tracking)
            try:
                order_ids = self.access.append(events, expected)
            except VersionConflict as conflict:
                key = NOTIFICATION_ID if conflict.stream == tracked else ORIGINATOR_VERSION
                self._read_head(conflict.stream, conflict.current, key)
                continue
            # The core checked each expected version, so each stream is now exactly that far on.
            for stream, group in groups.items():
                before = expected[stream]
                first_offset = group[0].originator_version - 1 if before == "no-stream" else None
                self._set_head(
                    stream,
                    _Head(_number(before) + len(group), group[-1].originator_version, first_offset),
                )
            if tracked is not None and tracking is not None:
                self._set_head(tracked, _Head(_number(expected[tracked]) + 1, tracking.notification_id, None))
            return order_ids[: len(stored_events)]
        raise OperationalError(f"gave up appending after {MAX_ATTEMPTS} version conflicts in a row")

    def _expect(self, stream: str, position: int, what: str, item: object) -> int | str:
        head = self._head(stream)
        if head is None:
            return "no-stream"  # a guess: a new aggregate (the core says so if it is not)
        if position <= head.position:
            if what == "tracking":
                raise IntegrityError(
                    f"Tracking notification ID {position} not greater than current max tracking ID {head.position}"
                )
            raise IntegrityError(f"Stored event already recorded (or older than the last one): {item}")
        return head.version

    # -- reading an aggregate's events ----------------------------------------------------------

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        stream = self.prefix + str(originator_id)
        from_version = 1
        head = self._head(stream)
        offset = head.first_offset if head is not None else None
        dense = head is not None and offset is not None and head.position - head.version == offset
        if dense and gt is not None:
            assert offset is not None
            from_version = max(1, gt + 1 - offset)
        read_limit = None
        if dense and not desc and limit is not None:
            read_limit = limit
        if desc and limit is not None and not dense:
            return self._select_last(stream, gt, lte, limit)
        found = self.access.read_stream(stream, from_version, read_limit)
        versions = [originator_version(e.data) for e in found]
        if from_version > 1 and gt is not None and versions and versions[0] != gt + 1:
            # The stream is not as dense as the cache said: read it all.
            found = self.access.read_stream(stream, 1, None)
            versions = [originator_version(e.data) for e in found]
        self._learn(stream, found, versions, complete=read_limit is None)
        selected = [
            e
            for e, version in zip(found, versions, strict=True)
            if (gt is None or version > gt) and (lte is None or version <= lte)
        ]
        if desc:
            selected.reverse()
        if limit is not None:
            selected = selected[:limit]
        ids = OriginatorIds(len(self.prefix), self.originator_id_type)
        return [to_stored_event(e, ids) for e in selected]

    def _select_last(self, stream: str, gt: int | None, lte: int | None, limit: int) -> list[StoredEvent]:
        """The last `limit` events in (gt, lte], newest first, read backwards a page at a time
        (the latest snapshot of an aggregate is one short read, however many it has)."""
        ids = OriginatorIds(len(self.prefix), self.originator_id_type)
        selected: list[StoredEvent] = []
        end = self.access.stream_version(stream)
        page = max(limit, 10)
        while end > 0 and len(selected) < limit:
            start = max(1, end - page + 1)
            found = self.access.read_stream(stream, start, end - start + 1)
            for event in reversed(found):
                if event.stream_version > end:
                    continue
                version = originator_version(event.data)
                if gt is not None and version <= gt:
                    return selected  # versions increase along the stream: nothing older qualifies
                if lte is None or version <= lte:
                    selected.append(to_stored_event(event, ids))
                    if len(selected) == limit:
                        break
            end = start - 1
            page *= 2
        return selected

    def _learn(self, stream: str, found: list[Event], versions: list[int], *, complete: bool) -> None:
        if not found:
            return
        first_offset = versions[0] - 1 if found[0].stream_version == 1 else None
        if complete:
            self._set_head(stream, _Head(found[-1].stream_version, versions[-1], first_offset))
        elif first_offset is not None:
            head = self._head(stream)
            if head is not None and head.first_offset is None:
                self._set_head(stream, head._replace(first_offset=first_offset))


class PhotonAggregateRecorder(PhotonRecorder, AggregateRecorder):
    """An aggregate's events (or, with another category, its snapshots) in Photon streams."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        self._insert(stored_events, None)
        return None


class PhotonApplicationRecorder(PhotonRecorder, ApplicationRecorder):
    """Aggregate events, and the application's notification log read from `__all__`."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        return self._insert(stored_events, None)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        first = 1 if start is None else (start if inclusive_of_start else start + 1)
        first = max(first, 1)
        results: list[Notification] = []
        if limit <= 0:
            return results
        reader = self._notifications
        while stop is None or first <= stop:
            rows = self.access.read_all_data(first, stop, topics, max(limit - len(results), NOTIFICATION_PAGE))
            if reader.add(rows, results, limit):
                return results
            if not rows or (len(rows) < NOTIFICATION_PAGE and len(rows) < limit):
                break
            first = rows[-1][0] + 1
        return results

    def max_notification_id(self) -> int | None:
        last = self.access.last_order_id()
        prefix = self.prefix
        while last > 0:
            first = max(1, last - NOTIFICATION_PAGE + 1)
            page = self.access.read_all(first, last, (), NOTIFICATION_PAGE)
            for event in reversed(page):
                if event.stream_name.startswith(prefix):
                    return int(event.order_id)
            last = first - 1
        return None

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[ApplicationRecorder]:
        return PhotonSubscription(self, gt=gt, topics=topics)


class PhotonSubscription(Subscription[PhotonApplicationRecorder]):
    """The application's notifications after `gt`, history then live: a hot-cold replay of `__all__`."""

    POLL_SECONDS = 0.1
    """How often a waiting `next` looks whether `stop` was called."""

    def __init__(self, recorder: PhotonApplicationRecorder, gt: int | None = None, topics: Sequence[str] = ()) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._live: LiveEvents = recorder.access.live((gt or 0) + 1, topics)
        self._ids = OriginatorIds(len(recorder.prefix), recorder.originator_id_type)

    def stop(self) -> None:
        super().stop()
        self._live.stop()

    def __next__(self) -> Notification:
        recorder = self._recorder
        prefix = recorder.prefix
        while not self._has_been_stopped:
            event = self._live.next(self.POLL_SECONDS)
            if event is None:
                continue
            if event.stream_name.startswith(prefix):
                self._last_notification_id = event.order_id
                return to_notification(event, self._ids)
        raise StopIteration


class PhotonTrackingRecorder(PhotonRecorder, TrackingRecorder):
    """Tracking records as events of the stream ``<category>.tracking-<upstream application>``."""

    def insert_tracking(self, tracking: Tracking) -> None:
        self._insert((), tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        stream = tracking_stream(self.category, application_name)
        head = self._head(stream)
        # From the version last seen, or the stream's current one: never the whole stream.
        version = head.version if head is not None else self.access.stream_version(stream)
        found = self.access.read_stream(stream, version, None) if version > 0 else []
        if not found:
            if head is not None:  # the stream was emptied behind our back: ask again
                with self._heads_lock:
                    self._heads.pop(stream, None)
                return self.max_tracking_id(application_name)
            return None
        last = found[-1]
        position = int(payload(last.data)[NOTIFICATION_ID])
        self._set_head(stream, _Head(last.stream_version, position, None))
        return position


class PhotonProcessRecorder(PhotonTrackingRecorder, PhotonApplicationRecorder, ProcessRecorder):
    """A process application's events written atomically with its tracking record."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        return self._insert(stored_events, kwargs.get("tracking"))
