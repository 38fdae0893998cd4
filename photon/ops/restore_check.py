"""The checker process of a restore: both its ends (see `photon.ops.restore.load_verified`).

    python -m photon.ops.restore_check FILE

checks a backup file as `photon.ops.restore_records.check_backup` does against an empty store, and
prints one JSON verdict line (`check_file`); `Checker` starts it and reads the verdict.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from photon.core.errors import PhotonError
from photon.core.gc_pause import cycle_collection_paused
from photon.core.positioned import BackupFormatError
from photon.ops.backup_files import backup_lines, reading
from photon.ops.restore_records import BackupSummary, CheckedRecords


class Checker:
    """A second process that checks a backup file as `check_backup` does, against an empty store,
    while this one loads the file (see `load_verified`).

    It runs `python -m photon.ops.restore_check FILE`, which prints one verdict: a new interpreter,
    not a fork of this one (which runs threads) nor multiprocessing's spawn (which imports the
    caller's main module again)."""

    def __init__(self, path: str | Path) -> None:
        package_root = str(Path(__file__).resolve().parents[2])  # where `photon` is found
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "photon.ops.restore_check", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=env,
        )
        self._verdict: list[Any] | None = None

    def poll(self) -> None:
        """Raise the checker's error if it found one already."""
        if self._verdict is None and self._process.poll() is not None:
            self._receive()
        if self._verdict is not None:
            self._raise_if_bad()

    def result(self) -> BackupSummary:
        """Wait for the checker: what the backup holds, or its error naming the first bad line."""
        if self._verdict is None:
            self._receive()
        self._raise_if_bad()
        _ok, events, skipped, lines, first, last = self._verdict  # type: ignore[misc]
        return BackupSummary(events, skipped, lines, first, last)

    def _receive(self) -> None:
        assert self._process.stdout is not None
        answer = self._process.stdout.read()
        code = self._process.wait()
        try:
            verdict = orjson.loads(answer)
            if type(verdict) is not list or verdict[0] not in ("ok", "bad", "failed"):
                raise ValueError(answer)
        except (orjson.JSONDecodeError, ValueError, IndexError):
            verdict = ["failed", f"the backup check stopped without an answer (exit code {code})"]
        self._verdict = verdict

    def _raise_if_bad(self) -> None:
        verdict = self._verdict
        assert verdict is not None
        if verdict[0] == "bad":
            raise BackupFormatError(verdict[1], verdict[2], verdict[3])
        if verdict[0] == "failed":
            raise PhotonError(verdict[1])

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def check_file(path: str | Path) -> list[Any]:
    """Check a whole backup file against an empty store: the verdict `Checker` reads, as a JSON
    array: ["ok", events, skipped, lines, first order-id, last order-id], ["bad", line, reason,
    field] or ["failed", message]."""
    summary = BackupSummary()
    try:
        with reading(path) as stream, cycle_collection_paused():
            for _record in CheckedRecords(backup_lines(stream), None, summary):
                pass
    except BackupFormatError as exc:
        return ["bad", exc.line, exc.reason, exc.field]
    except Exception as exc:
        return ["failed", f"cannot check the backup {path}: {exc}"]
    return ["ok", summary.events, summary.skipped, summary.lines, summary.first_order_id, summary.last_order_id]


def main(argv: list[str]) -> int:
    sys.stdout.buffer.write(orjson.dumps(check_file(argv[0])) + b"\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
