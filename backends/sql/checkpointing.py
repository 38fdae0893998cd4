"""SQLite's write-ahead log, copied into the database file by a thread of its own.

SQLite would otherwise do it inside whichever commit crosses the threshold, stalling that
commit. PASSIVE checkpoints never block the writer or readers, and durability does not depend on
them: a commit is durable once it is in the log.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("photon.backends.sql")

CHECKPOINT_EVERY_SECONDS = 0.5
CHECKPOINT_LOG_BYTES = 4 << 20
LOG_RESTART_BYTES = 32 << 20
"""A log holding more than this is started again from its beginning (see `LogCheckpointer`)."""
LOG_SIZE_LIMIT = 64 << 20
"""PRAGMA journal_size_limit: the log file is cut back to this size when it starts again."""


class LogCheckpointer:
    """The background checkpoints of one SQLite file, and the writer's share of them.

    The log starts again from its beginning only when a write begins after a checkpoint that
    copied all of it. Under a steady stream of writes the thread never quite catches up, so the
    log would grow without end; when it is large, the thread sets `restart_log` and the writer
    copies the few frames left itself, between two commits (`finish`).
    """

    def __init__(self, path: Path, synchronous: str) -> None:
        self.path = path
        self.synchronous = synchronous
        self.restart_log = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="photon-sqlite-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread = self._thread
        if thread is not None:
            self._stop.set()
            thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        import sqlite3

        log_file = self.path.with_name(self.path.name + "-wal")
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute(f"PRAGMA synchronous={self.synchronous}")
            connection.execute("PRAGMA busy_timeout=10000")
            page_size = int(connection.execute("PRAGMA page_size").fetchone()[0])
            while not self._stop.wait(CHECKPOINT_EVERY_SECONDS):
                try:
                    if log_file.exists() and log_file.stat().st_size >= CHECKPOINT_LOG_BYTES:
                        _busy, frames, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        if frames * page_size >= LOG_RESTART_BYTES:
                            self.restart_log = True
                except (sqlite3.Error, OSError) as exc:
                    log.warning("background checkpoint of %s failed: %s", self.path, exc)
        finally:
            connection.close()

    def finish(self, connection: Any) -> None:
        """In the writer, between two commits: finish the checkpoint the thread asked for, so that
        the next write starts the log again (the thread copied most of it already)."""
        self.restart_log = False
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception as exc:  # the append is durable already; the log waits for the next try
            log.warning("checkpoint of %s in the writer failed: %s", self.path, exc)
