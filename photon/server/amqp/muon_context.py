"""What Muon's protocol sessions work with: the store, the projections, the server's loop.

Also the factory that picks the session for a logical channel's protocol.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from photon.core.store import EventStore

if TYPE_CHECKING:
    from photon.projections.manager import ProjectionManager
    from photon.server.amqp.muon_transport import Outlet, Session

log = logging.getLogger("photon.amqp.muon")


@dataclass
class MuonContext:
    store: EventStore
    config: Mapping[str, Any]
    loop: asyncio.AbstractEventLoop
    projections: ProjectionManager | None = None
    rest_url: Callable[[], str] | None = None
    """The HTTP API's URL once it listens (the rpc endpoint `rest-url` answers it)."""
    tasks: set[concurrent.futures.Future[Any]] = field(default_factory=set)

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine on the server's loop (from any thread), fire and forget."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        self.tasks.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: concurrent.futures.Future[Any]) -> None:
        self.tasks.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("a Muon request failed", exc_info=future.exception())

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        """Run a coroutine on the server's loop and wait for its result (not from the loop itself)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def session(self, protocol: str, outlet: Outlet) -> Session | None:
        """The session serving `protocol` on a new logical channel (None: not served)."""
        if protocol == "event":
            from photon.server.amqp.muon_event import EventSession

            return EventSession(self, outlet)
        if protocol == "reactive-stream":
            from photon.server.amqp.muon_stream import StreamSession

            return StreamSession(self, outlet)
        if protocol == "rpc":
            from photon.server.amqp.muon_rpc import RpcSession

            return RpcSession(self, outlet)
        return None
