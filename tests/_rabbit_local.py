"""A private RabbitMQ node for the AMQP tests (stand-in until tests/servers.py provides one)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RabbitServer:
    env_var = "PHOTON_TEST_AMQP_URL"

    def __init__(self) -> None:
        external = os.environ.get(self.env_var, "").strip()
        self.external = bool(external)
        self.restartable = not self.external
        self._url = external
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node_name = f"photon{self.port}@localhost"
        self.base_dir = Path(tempfile.mkdtemp(prefix="photon-rabbitmq-"))
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return self._url or f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def _spawn(self, argv: list[str], env: dict[str, str]) -> None:
        with open(self.base_dir / "server.log", "ab") as log:
            self._procs.append(
                subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
            )

    def _open(self, port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if port != self.port:
                    return True
                sock.settimeout(5)
                sock.sendall(b"AMQP\x00\x00\x09\x01")
                return sock.recv(11)[:1] == b"\x01"
        except OSError:
            return False

    def start(self) -> RabbitServer:
        if self.external or self._procs:
            return self
        home = self.base_dir / "home"
        home.mkdir(exist_ok=True)
        (self.base_dir / "enabled_plugins").write_text("[].\n")
        (self.base_dir / "rabbitmq.conf").write_text("")
        env = dict(os.environ, HOME=str(home), ERL_EPMD_ADDRESS="127.0.0.1", ERL_EPMD_PORT=str(self.epmd_port))
        self._spawn(["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"], env)
        while not self._open(self.epmd_port):
            time.sleep(0.05)
        env.update(
            RABBITMQ_NODENAME=self.node_name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.base_dir / "data"),
            RABBITMQ_LOG_BASE=str(self.base_dir / "log"),
            RABBITMQ_LOGS="-",
            RABBITMQ_PID_FILE=str(self.base_dir / "rabbit.pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base_dir / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(self.base_dir / "rabbitmq.conf"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        self._spawn(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env)
        deadline = time.monotonic() + 90
        while not self._open(self.port):
            if time.monotonic() > deadline or self._procs[-1].poll() is not None:
                self.kill()
                raise RuntimeError("rabbitmq did not start: " + (self.base_dir / "server.log").read_text()[-3000:])
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self._procs and self._procs[-1].poll() is None:
            self._procs[-1].send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._procs[-1].wait(60)
        self.kill()

    def kill(self) -> None:
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        self._procs = []

    def restart(self) -> RabbitServer:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)
