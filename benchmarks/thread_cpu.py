"""CPU time of a process tree, thread by thread, from ``/proc``; thread names from ``py-spy dump``.

CPU is what a loaded machine disturbs least, and split by thread it says where a request's time
goes: a server's event loop, its writer, its projection worker process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent


def py_spy() -> str | None:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


def ensure_py_spy() -> None:
    """Install py-spy (scripts/install-bench-peers) when it is missing: without it, the threads of
    a Python 3.11 process all have the same name."""
    if py_spy() is None:
        subprocess.run([str(ROOT / "scripts" / "install-bench-peers"), sys.executable], check=True)


def family(pid: int) -> list[int]:
    """`pid` and its descendants."""
    found = [pid]
    with contextlib.suppress(FileNotFoundError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    found += family(int(child))
    return found


def thread_cpu(pids: list[int]) -> dict[tuple[int, int], float]:
    """CPU seconds (user + system) of every thread of `pids`, by (pid, thread id)."""
    cpu: dict[tuple[int, int], float] = {}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with (
                    contextlib.suppress(FileNotFoundError, ProcessLookupError),
                    open(f"/proc/{pid}/task/{task}/stat") as f,
                ):
                    fields = f.read().rsplit(")", 1)[1].split()
                cpu[(pid, int(task))] = (int(fields[11]) + int(fields[12])) / TICK
    return cpu


def thread_names(pids: list[int]) -> dict[int, str]:
    """Python thread names by thread id (py-spy, when installed); ``/proc``'s short names otherwise."""
    names: dict[int, str] = {}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with (
                    contextlib.suppress(FileNotFoundError, ProcessLookupError),
                    open(f"/proc/{pid}/task/{task}/comm") as f,
                ):
                    names[int(task)] = f.read().strip()
    spy = py_spy()
    if spy is None:
        return names
    for pid in pids:
        dump = subprocess.run([spy, "dump", "--json", "--pid", str(pid)], capture_output=True, text=True).stdout
        with contextlib.suppress(ValueError):
            for thread in json.loads(dump):
                names[int(thread["os_thread_id"])] = thread.get("thread_name") or "?"
    return names
