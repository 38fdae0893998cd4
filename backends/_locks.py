"""A writer lock for stores that live in local files: an exclusive `flock` on a `.lock` file.

The kernel drops the lock when its process dies, however it dies, so a crashed writer never
leaves the store locked.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from photon.core.errors import StoreLocked


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreLocked(
                f"the store is already open for writing by process {holder} (lock file {self.path}); "
                "one process writes a store"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
