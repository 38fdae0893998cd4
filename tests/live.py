"""A Photon server run inside the test process or as a real `photon` process, for the API tests."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from photon.core.config import Config, load_config
from photon.core.store import EventStore
from photon.server.server import HttpService, PhotonServer
from photon.server.tcp import TcpIngestService

PHOTON = shutil.which("photon", path=str(Path(sys.executable).parent)) or "photon"


def make_config(tmp_path: Path, **overrides: str) -> Config:
    settings = {
        "rest.host": "127.0.0.1",
        "rest.port": "0",
        "events.port": "0",
        "db.backend": "sqlite",
        "sqlite.path": str(tmp_path / "photon.db"),
        "admin.secret": "test-secret",
        # One projection worker and an empty folder keep each test server light.
        "parallel.projections": "1",
        "projections.path": str(tmp_path / "projections"),
        "projections.port": "0",
    }
    settings.update({k.replace("_", "."): v for k, v in overrides.items()})
    return load_config(settings, environ={}, cwd=tmp_path)


class LiveServer:
    """A PhotonServer running on its own event loop thread, reachable over real sockets."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = PhotonServer(config)
        try:
            self.call(self.server.start())
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            raise
        http: HttpService = self.server.service(HttpService)
        tcp: TcpIngestService = self.server.service(TcpIngestService)
        self.url = http.url
        self.tcp_port = tcp.port
        self.app = http.app

    @property
    def store(self) -> EventStore:
        assert self.server.store is not None
        return self.server.store

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def token(self) -> str:
        # 30 s as the clients have, not httpx's default of 5: almost every API test asks for a
        # token first, often the server's first request, and a loaded machine can take seconds.
        response = httpx.get(self.url + "/auth/token", auth=("admin", str(self.config["admin.pass"])), timeout=30)
        response.raise_for_status()
        return str(response.json()["token"])

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Token {self.token()}"}, timeout=30)

    def stop(self, timeout: float = 30) -> None:
        self.call(self.server.stop(), timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def event(stream: str = "orders", event_type: str = "placed", **payload: Any) -> dict[str, Any]:
    return {"stream-name": stream, "event-type": event_type, "payload": payload or {"n": 1}}


class ServerProcess:
    """The installed `photon` command serving in a child process."""

    def __init__(
        self, cwd: Path, args: list[str], env: Mapping[str, str] | None = None, own_group: bool = False
    ) -> None:
        """`own_group`: the server leads a process group of its own (with its child processes), as
        under a service manager, so a test can signal the whole group."""
        self.cwd = cwd
        self.log_path = cwd / "server.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTON_")}
        # A spare port for projection updates and one projection worker: test servers stay light.
        full_env.update({"PHOTON_PROJECTIONS_PORT": "0", "PHOTON_PARALLEL_PROJECTIONS": "1"})
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [PHOTON, *args],
            cwd=cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=own_group,
        )
        deadline = time.monotonic() + 30
        while True:
            text = self.output()
            if "photon ready" in text:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"photon did not start (exit {self.proc.poll()}):\n{text}")
            time.sleep(0.05)
        # [^\s"]: the log may be JSON lines (log.format=json), where a message ends in a quote
        match = re.search(r'HTTP API listening on ([^\s"]+)', text)
        tcp = re.search(r'TCP ingest listening on [^\s"]+:(\d+)', text)
        assert match and tcp, text
        self.url = match.group(1)
        self.tcp_port = int(tcp.group(1))

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def token(self, user: str = "admin", password: str = "p4010n") -> str:
        return str(httpx.get(self.url + "/auth/token", auth=(user, password), timeout=30).json()["token"])

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.log.close()
        return code
