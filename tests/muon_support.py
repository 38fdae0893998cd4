"""Running the real Muon node client (muon-core 7.2.6) from the tests, through tests/muon_client.js.

scripts/install-test-servers installs the npm package under the servers home
(`muon-node/node_modules`); node finds it through NODE_PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from .servers import servers_home

DRIVER = Path(__file__).with_name("muon_client.js")


def node_modules() -> Path:
    path = servers_home() / "muon-node" / "node_modules"
    if not (path / "muon-core" / "package.json").exists() or shutil.which("node") is None:
        message = f"the Muon node client is not installed under {path} (run scripts/install-test-servers)"
        if os.environ.get("PHOTON_SKIP_SERVERS"):
            pytest.skip(message)
        pytest.fail(message)
    return path


class NodeClient:
    """One `node muon_client.js` process: a Muon client doing one command, its results collected."""

    def __init__(self, url: str, command: str, args: dict[str, Any], *, timeout: float = 60) -> None:
        env = dict(os.environ)
        env.update({"NODE_PATH": str(node_modules()), "LEVEL": "error"})
        self.results: list[dict[str, Any]] = []
        self.noise: list[str] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            ["node", str(DRIVER), url, command, orjson.dumps({"timeout": timeout, **args}).decode()],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            with self._changed:
                if line.startswith("@@ "):
                    self.results.append(orjson.loads(line[3:]))
                else:
                    self.noise.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.results):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"the node client did not get there; results {self.results[-5:]}, output {self.noise[-20:]}"
                    )
                self._changed.wait(min(remaining, 0.5))
            return list(self.results)

    def finish(self, timeout: float = 90) -> list[dict[str, Any]]:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"the node client hung; results {self.results[-5:]}, output {self.noise[-20:]}"
            ) from None
        self._reader.join(5)
        return list(self.results)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run(url: str, command: str, args: dict[str, Any], *, timeout: float = 60) -> list[dict[str, Any]]:
    """Run one command to its end; its results."""
    client = NodeClient(url, command, args, timeout=timeout)
    return client.finish(timeout + 30)


def events_of(results: list[dict[str, Any]], key: str = "event") -> list[dict[str, Any]]:
    return [r[key] for r in results if key in r]


class WireClient:
    """A bare Muon transport client in Python (pika), for what the node client cannot show:
    the exact credit a replay is granted, and a client that stops reading."""

    def __init__(self, url: str, service: str = "photon") -> None:
        import uuid

        import pika

        from photon.server.amqp import muon_wire as wire

        self.wire = wire
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        handshake = uuid.uuid4()
        self.listen, self.reply = f"wire.listen.{handshake}", f"wire.reply.{handshake}"
        for queue in (self.listen, self.reply):
            self.channel.queue_declare(queue, durable=False, auto_delete=True)
        self.channel_id = str(uuid.uuid4())
        headers = {
            "handshake": "initiated",
            "protocol": "shared-channel",
            "server_listen_q": self.listen,
            "server_reply_q": self.reply,
        }
        self._messages = self.channel.consume(self.reply, auto_ack=True, inactivity_timeout=0.05)
        self.channel.basic_publish("", f"service.{service}", b"{}", pika.BasicProperties(headers=headers))
        _method, properties, _body = self._get(10)
        assert properties.headers == {"handshake": "accepted"}

    def _get(self, timeout: float) -> tuple[Any, Any, bytes]:
        deadline = time.monotonic() + timeout
        while True:
            method, properties, body = next(self._messages)
            if method is not None:
                return method, properties, body
            if time.monotonic() >= deadline:
                raise TimeoutError("no message from Photon")

    def send(self, protocol: str, step: str, content: Any) -> None:
        import zlib

        import pika

        inner = self.wire.message(content, protocol=protocol, step=step, origin="wire-client", target="photon")
        framed = orjson.dumps({"channelId": self.channel_id, "message": inner})
        outer = self.wire.message(
            None,
            protocol="shared-channel",
            step="message",
            origin="wire-client",
            target="photon",
            encoded=list(zlib.compress(framed)),
        )
        outer["content_type"] = self.wire.JSON_DEFLATE
        properties = pika.BasicProperties(headers={"content_type": "application/json"})
        self.channel.basic_publish("", self.listen, orjson.dumps(outer), properties)

    def receive(self, timeout: float = 10) -> dict[str, Any] | None:
        """The next protocol message (keep-alives skipped), or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                _method, _properties, body = self._get(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                return None
            outer = orjson.loads(body)
            if outer["step"] == "keep-alive":
                continue
            inner: dict[str, Any] = self.wire.open_frame(outer).inner
            return inner

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()
