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
