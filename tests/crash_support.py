"""Crash tests' one move: start a writer process, let it acknowledge something, and kill it
with SIGKILL at a random moment after that (never politely: nothing runs at its exit)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent


def kill_while_writing(module: str, args: list[str], rng: random.Random, after: tuple[float, float]) -> list[str]:
    """Run ``python -m module *args`` from the repo's root, wait (60 s at most) for its first line
    on stdout, wait a random time in `after` seconds more, kill it with SIGKILL and return every
    line it printed before it died (its acknowledgements)."""
    child = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lines.extend, args=(child.stdout or [],), daemon=True)
    reader.start()
    # Opening the store takes a moment (seconds on a loaded machine, where starting Python and
    # importing Photon alone can take several): the kill's random moment counts from the first line.
    deadline = time.monotonic() + 60
    while not lines and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.01)
    if not lines:
        child.kill()
        child.wait()
        raise AssertionError(f"{module} acknowledged nothing: {child.stderr.read() if child.stderr else ''}")
    time.sleep(rng.uniform(*after))
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    reader.join(60)
    assert not reader.is_alive(), f"{module}'s output was still being read 60 s after its death"
    if child.stderr:
        child.stderr.close()
    return lines
