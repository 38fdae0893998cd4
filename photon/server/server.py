"""The Photon server: one store, and the services that front it (HTTP API, TCP ingest, ...).

A service is any object with ``async start()`` and ``async stop()``, built as
``Factory(store, config)``. The server builds every factory in `SERVICES`, starts them in
order and stops them in reverse order, then closes the store (which drains the group
committer, so appends already handed in are finished and acknowledged). A service may also
offer ``http_routes() -> list[BaseRoute]``: those routes are added to the HTTP API.

The built-in services: consumer groups, the projection engine, its updates listener
(`projections.port`), the AMQP transport (only with `muon.url`), TCP ingest, stream transfer
routes, and the HTTP API, which opens last and closes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from functools import partial
from typing import Any, Protocol, runtime_checkable

import orjson
import uvicorn
from starlette.routing import BaseRoute

from photon.core import aio
from photon.core.backend import backend_class
from photon.core.config import Config
from photon.core.gc_pause import collect_less_often
from photon.core.store import EventStore
from photon.core.tracing import Tracing, tracing_for
from photon.server.http.limits import MAX_HEAD_BYTES
from photon.server.net import bind, check_keystore, is_loopback, url_host
from photon.server.projection_updates import ProjectionUpdatesService
from photon.server.tcp import TcpIngestService

log = logging.getLogger("photon.server")

GRACEFUL_SECONDS = 5.0
SWITCH_INTERVAL = 0.0005
"""Seconds a thread waiting for the interpreter lock lets the holder run before asking for it
(`sys.setswitchinterval`; Python's default is 0.005). The server's event loop and the store's
writer hand each request to each other: at 5 ms, a writer back from its commit could wait up to
that long for the loop, and the loop for the writer, with an answer ready. See docs/benchmarks.md
("Remote inserts: the interpreter lock, the body check and the projections")."""


@runtime_checkable
class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


ServiceFactory = Callable[[EventStore, Config], Service | None]
"""Builds a service, or returns None when its configuration leaves it off (AMQP without muon.url)."""


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the Photon server owns the process's signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # the name in uvicorn releases before capture_signals
        pass


def _http_impl() -> Any:
    """httptools when installed (faster), with HTTP/1.0 streaming framed right and the request
    head bounded; else h11 (its bound on an incomplete event is set to the same size)."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    from photon.server.http.head_limits import HeadLimitProtocol

    return HeadLimitProtocol


class HttpService:
    """The HTTP API served by uvicorn (TLS when rest.keystore is set)."""

    def __init__(self, store: EventStore, config: Config) -> None:
        self.store = store
        self.config = config
        self.extra_routes: list[BaseRoute] = []
        self.readiness: list[Callable[[], str | None]] = []
        self.tracing: Tracing | None = None
        """Set by the server when `otel.endpoint` is configured: requests are traced."""
        """The other services' `not_ready` checks, asked by GET /health/ready."""
        self.port = 0
        self.url = ""
        self._server: _Uvicorn | None = None
        self._task: asyncio.Task[None] | None = None
        self.app: Any = None

    async def start(self) -> None:
        from photon.server.http import create_app

        config = self.config
        self.app = create_app(self.store, config, extra_routes=self.extra_routes)
        self.app.state.readiness = self.readiness
        served: Any = self.app if self.tracing is None else self.tracing.wrap(self.app)
        keystore = config["rest.keystore"]
        if keystore:
            check_keystore(keystore, config["rest.keypass"])
        sock = bind(config["rest.host"], config["rest.port"], "rest.port")
        self.port = sock.getsockname()[1]
        uv_config = uvicorn.Config(
            served,
            log_config=None,
            access_log=bool(config.get("log.access")),
            lifespan="off",
            http=_http_impl(),
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            ws="none",
            timeout_graceful_shutdown=int(GRACEFUL_SECONDS),
            ssl_certfile=keystore,
            ssl_keyfile_password=config["rest.keypass"],
            server_header=False,
        )
        self._server = _Uvicorn(uv_config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                sock.close()
                self._task.result()  # raises what went wrong (a bad key password, ...)
                raise RuntimeError("the HTTP server stopped during start-up")
            await asyncio.sleep(0.01)
        scheme = "https" if keystore else "http"
        self.url = f"{scheme}://{url_host(sock)}:{self.port}"
        log.info("HTTP API listening on %s", self.url)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self.app.state.closing = True  # open replay streams end at their next idle tick
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        log.info("HTTP API stopped")


class TransferRoutes:
    """Stream download and upload (`GET /export/stream/{name}`, `POST /api/new-stream`), admin only."""

    def __init__(self, store: EventStore, config: Config) -> None:
        self.store = store

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def http_routes(self) -> list[BaseRoute]:
        from photon.server.http.auth import require_admin
        from photon.server.http.transfer_routes import transfer_routes

        return list(transfer_routes(self.store, require_admin))


class Projections:
    """The projection engine, with its routes on the HTTP API (`/api/projection...`)."""

    def __init__(self, store: EventStore, config: Config) -> None:
        from photon.projections.manager import ProjectionManager

        self.manager = ProjectionManager(store, config)
        self._collecting = False

    async def start(self) -> None:
        from photon.core.metrics import ProjectionCollector, metrics_for

        await self.manager.start()
        metrics = metrics_for(self.manager.store)
        if not self._collecting:
            metrics.add_collector(ProjectionCollector(self.manager.store, lambda: self.manager.projections.values()))
            self._collecting = True

    async def stop(self) -> None:
        await self.manager.stop()

    def http_routes(self) -> list[BaseRoute]:
        from photon.server.http.auth import require_admin
        from photon.server.http.projection_routes import projection_routes

        return list(projection_routes(self.manager, require_admin))

    def not_ready(self) -> str | None:
        return None if self.manager.loaded.is_set() else "the projections are still loading"

    async def updates(self) -> AsyncIterator[dict[str, Any]]:
        """Every projection's updates, as the AMQP transport publishes them."""
        async for line in self.manager.follow_raw(None):
            yield orjson.loads(line)


class ConsumerGroups:
    """Consumer groups resume at start-up (their routes are part of the HTTP API's own)."""

    def __init__(self, store: EventStore, config: Config) -> None:
        self.store = store

    async def start(self) -> None:
        await asyncio.to_thread(self.store.groups.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self.store.groups.stop)


def _amqp(store: EventStore, config: Config) -> Service | None:
    from photon.server.amqp.service import amqp_service  # pika is imported only when muon.url is set

    return amqp_service(store, config)


#: The services every server runs, in start order (HTTP last: it opens last, closes first).
SERVICES: list[ServiceFactory] = [
    ConsumerGroups,
    Projections,
    ProjectionUpdatesService.build,
    _amqp,
    TcpIngestService,
    TransferRoutes,
    HttpService,
]


def _connect(services: Sequence[Service]) -> None:
    """Let services that feed each other meet: projection updates go out over AMQP and TCP too,
    and Muon's rpc endpoints answer from the projection engine and name the HTTP API's URL."""
    projections = next((s for s in services if isinstance(s, Projections)), None)
    http = next((s for s in services if isinstance(s, HttpService)), None)
    for service in services:
        add_source = getattr(service, "add_projection_source", None)
        if projections is not None and add_source is not None:
            add_source(projections.updates())
        attach = getattr(service, "attach_projections", None)
        if projections is not None and attach is not None:
            attach(projections.manager)
        attach_url = getattr(service, "attach_rest_url", None)
        if http is not None and attach_url is not None:
            attach_url(partial(getattr, http, "url"))


def warn_about_default_password(config: Config) -> bool:
    """Warn loudly when the admin password is the published default and the server is reachable
    from other machines: a token runs code (`POST /api/projection`). Returns whether it warned."""
    default = config.settings["admin.pass"].default
    host = str(config["rest.host"])
    if config["admin.pass"] != default or is_loopback(host):
        return False
    log.warning(
        "\n%s\nSECURITY: admin.pass is the default password (%r) and the server listens on %s, beyond this "
        "machine. Anyone who can reach it can get a token, and a token runs code on this server "
        "(POST /api/projection). Set admin.pass (and admin.secret), or listen on 127.0.0.1.\n%s",
        "!" * 78,
        default,
        host,
        "!" * 78,
    )
    return True


class PhotonServer:
    """Open the store, start the services; `stop()` (or SIGTERM/SIGINT under `run`) ends it all cleanly."""

    def __init__(self, config: Config, services: Sequence[ServiceFactory] | None = None) -> None:
        self.config = config
        self.factories = list(SERVICES if services is None else services)
        self.store: EventStore | None = None
        self.tracing: Tracing | None = None
        self.services: list[Service] = []
        self._started: list[Service] = []
        self._stop_requested = asyncio.Event()

    def service(self, cls: type[Any]) -> Any:
        """The running service of a class (for tests and embedding)."""
        for service in self.services:
            if isinstance(service, cls):
                return service
        raise LookupError(f"no {cls.__name__} in this server")

    async def start(self) -> None:
        config = self.config
        backend_class(config["db.backend"])  # an unknown backend or a missing driver, before 50 lines of settings
        lines = "\n".join(
            f"  {key} = {value}   ({config.sources.get(key, 'default')})" for key, value in config.redacted().items()
        )
        log.info("effective configuration:\n%s", lines)
        warn_about_default_password(config)
        self.tracing = tracing_for(config)  # before the store opens: a missing extra fails fast
        if config["rest.keystore"]:  # before the store opens: a bad keystore or password touches nothing
            check_keystore(config["rest.keystore"], config["rest.keypass"])
        self.store = await asyncio.to_thread(EventStore.open, config)
        log.info("store open: %s, last order-id %d", self.store.backend.describe(), self.store.last_order_id())
        if self.tracing is not None:
            self.store.tracer = self.tracing.tracer
            log.info("tracing to %s", self.tracing.endpoint)
        try:
            built = (factory(self.store, config) for factory in self.factories)
            self.services = [service for service in built if service is not None]
            _connect(self.services)
            routes = [
                route for service in self.services if hasattr(service, "http_routes") for route in service.http_routes()
            ]
            checks = [service.not_ready for service in self.services if hasattr(service, "not_ready")]
            for service in self.services:
                if isinstance(service, HttpService):
                    service.tracing = self.tracing
                    service.extra_routes.extend(routes)
                    service.readiness.extend(checks)
            for service in self.services:
                await service.start()
                self._started.append(service)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the services (last started first), then close the store, finishing appends in flight."""
        while self._started:
            service = self._started.pop()
            try:
                await service.stop()
            except Exception:
                log.exception("stopping %s failed", type(service).__name__)
        if self.store is not None:
            store, self.store = self.store, None
            await asyncio.to_thread(store.close)
            await asyncio.to_thread(aio.shutdown_pool, store)
            log.info("store closed")
        if self.tracing is not None:
            tracing, self.tracing = self.tracing, None
            await asyncio.to_thread(tracing.shutdown)

    def request_stop(self) -> None:
        self._stop_requested.set()

    async def serve(self) -> None:
        """Start, run until `request_stop()` (SIGTERM/SIGINT), then stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            await self.start()
            log.info("photon ready")
            await self._stop_requested.wait()
        finally:
            await self.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        log.info("photon stopped")

    def _on_signal(self, sig: int) -> None:
        log.info("%s received: shutting down", signal.Signals(sig).name)
        self.request_stop()


def run(config: Config) -> None:
    """Serve until SIGTERM/SIGINT (uvloop when installed)."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    collect_less_often()  # the events of appends go by in batches (see `BATCH_THRESHOLD`)
    server = PhotonServer(config)
    try:
        import uvloop
    except ImportError:
        asyncio.run(server.serve())
    else:
        uvloop.run(server.serve())
