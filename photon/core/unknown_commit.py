"""What the writer does when a commit's outcome is unknown.

A lost connection can hide a success: `backend.append` raised, yet the store may hold the
events. The writer then asks the store what it holds (`_settle`): events it stored but did not
publish are published (in order), and numbering goes on after the store's last order-id. While
the store cannot be asked, the writer is *unsettled* and refuses to write (nothing could be
numbered safely). A store that holds less than the writer acknowledged lost events (a server
restarted without its data): the writer halts, and every later write gets `StoreLost`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from photon.core.backend import Backend, Query
from photon.core.broadcaster import Broadcaster
from photon.core.errors import BackendError, BackendUnavailable, PhotonError, StoreLost
from photon.core.events import RecordedEvent

if TYPE_CHECKING:
    from photon.core.append_waits import AppendRequest

log = logging.getLogger("photon.store")


class UnknownCommitRecovery:
    """The writer's recovery from a commit whose outcome is unknown (mixed into `Committer`)."""

    backend: Backend
    broadcaster: Broadcaster
    last_order_id: int
    versions: dict[str, int]
    unsettled: bool
    """A commit failed in a way that may hide a success: before writing again, the writer
    must learn what the store holds (see `_settle`)."""
    halted: StoreLost | None
    """Set when the store turned out to have lost acknowledged events: the writer stops."""

    def _ready_to_write(self, group: list[AppendRequest]) -> bool:
        """False (with every request of `group` failed) when the writer must not write now."""
        error: BackendError | None = self.halted
        if error is None and self.unsettled:
            try:
                self._settle()
            except StoreLost as exc:
                error = exc
            except BaseException as exc:
                error = BackendUnavailable(
                    "the outcome of an earlier commit is not known yet and the store cannot be "
                    f"asked ({exc}); nothing was written, try again"
                )
        if error is None:
            return True
        for request in group:
            request.fail(error)
        return False

    def _settle(self) -> list[RecordedEvent]:
        """After a commit whose outcome is unknown: find out what the store holds, publish what
        subscribers were not given yet (in order), and number on after it. Returns those events.

        Raises (and stays `unsettled`) when the store cannot be asked; raises `StoreLost` (and
        halts the writer) when the store holds less than was acknowledged.
        """
        backend = self.backend
        stored = backend.last_order_id()
        if stored < self.last_order_id:
            self.halted = StoreLost(
                f"the store ({backend.describe()}) ends at order-id {stored}, but this writer had "
                f"acknowledged events up to {self.last_order_id}: it lost acknowledged events (a server "
                "restarted without its data, e.g. Redis without an append-only file?). The writer "
                "stopped: restore the store from a backup, then restart Photon"
            )
            log.critical("%s", self.halted)
            raise self.halted
        found: list[RecordedEvent] = []
        published = self.broadcaster.head
        while published < stored:
            page = backend.read(Query(from_order_id=published + 1, to_order_id=stored, limit=backend.read_page_size))
            if not page:
                break
            # Published page by page, so that a long catch-up never holds the whole range.
            self.broadcaster.publish(page)
            found.extend(page)
            published = page[-1].order_id
        self.versions.clear()  # the cache may miss what the unknown commit stored
        self.last_order_id = stored
        self.unsettled = False
        if found:
            log.warning(
                "a commit whose outcome was unknown was stored: published order-ids %d..%d to subscribers",
                found[0].order_id,
                found[-1].order_id,
            )
        return found

    def _after_failed_append(self, records: list[RecordedEvent], error: BaseException) -> PhotonError | None:
        """After `backend.append(records)` raised: None when the store holds them after all
        (they are published then), else the error to give their callers.

        A lost connection can hide a success, so the store is asked at once; what it holds
        beyond what subscribers were given is published (`_settle`). When it cannot be asked,
        the writer stays unsettled and asks again before its next write.
        """
        self.unsettled = True
        self.versions.clear()
        if isinstance(error, StoreLost):
            self.halted = error
            log.critical("%s", error)
            return error
        failed = error if isinstance(error, PhotonError) else BackendError(f"append failed: {error}")
        before = self.last_order_id
        try:
            found = self._settle()
        except StoreLost as exc:
            return exc
        except BaseException as exc:
            log.warning("a commit failed (%s) and the store cannot be asked what it holds yet: %s", error, exc)
            return failed
        ids = {event.order_id: event.event_id for event in found}
        if all(ids.get(record.order_id) == record.event_id for record in records):
            log.warning("a commit that reported an error (%s) was stored: acknowledged", error)
            return None
        if self.last_order_id != before and not isinstance(error, BackendUnavailable):
            # An earlier commit whose outcome was unknown landed late and took these positions.
            return BackendUnavailable(f"the store moved on while this commit was written ({error}); try again")
        return failed
