"""Pages of history shared by several workers, and large resumed states, in memory files rather
than through the workers' pipes.

When workers share one read of the store at start (`Feed.assign_all`), each page (about 1 MB of
JSON) went down every worker's pipe: pickled, framed and written by the manager once per worker,
about 0.4 µs an event of the manager's CPU for two workers, about as much as reading the page. Here the
manager writes a page once into an anonymous memory file (`memfd_create`, Linux) and sends each
worker its path under `/proc/<manager>/fd/`; the worker reads it from there (measured, the
manager's CPU through a start-up refold of 300,000 events for two workers, five alternating runs:
median 0.43 s through the pipes, 0.31 s through memory files). The files need no
name and no clean-up if the manager dies: they close with its process. Where there are no memory
files (not Linux), `available()` is false and the pages go through the pipes as before.

A projection resumed from a large checkpoint is handed its state the same way (`hand`): the 148
MiB of the built-in `__streams__` at 1M streams, pickled and written down the pipe by the
manager's event loop and read, joined and unpickled by the worker, took a second or more before
the worker could begin to decode it, and the copies on the way held 300 MiB more of the
worker's memory while it decoded.
"""

from __future__ import annotations

import os


def available() -> bool:
    """Whether this process can hand pages to its workers through memory files."""
    return hasattr(os, "memfd_create") and os.path.isdir(f"/proc/{os.getpid()}/fd")


class Spool:
    """The memory files of one shared read: `slots` of them, written in turn, each page over the
    page `slots` before it (writing into pages of memory a file already has costs about half of
    writing a new file's). The manager writes a slot again only once every worker the page in it
    was sent to has answered for it."""

    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._files: list[int] = []
        self._next = 0

    def put(self, page: bytes) -> str:
        """Write `page` into the next slot; the path a worker reads it by."""
        if len(self._files) < self._slots:
            self._files.append(os.memfd_create("photon-history", os.MFD_CLOEXEC))
        fd = self._files[self._next]
        self._next = (self._next + 1) % self._slots
        _write_all(fd, page)
        os.ftruncate(fd, len(page))
        return _path(fd)

    def close(self) -> None:
        while self._files:
            os.close(self._files.pop())

    @property
    def closed(self) -> bool:
        return not self._files


def hand(data: bytes) -> tuple[int, str]:
    """`data` in a memory file of its own: its descriptor (the manager closes it once the worker
    has read it) and the path a worker reads it by."""
    fd = os.memfd_create("photon-state", os.MFD_CLOEXEC)
    _write_all(fd, data)
    return fd, _path(fd)


def _write_all(fd: int, data: bytes) -> None:
    """Write `data` at the start of memory file `fd` (a write may take part of it)."""
    view = memoryview(data)
    offset = 0
    while offset < len(view):
        offset += os.pwrite(fd, view[offset:], offset)


def _path(fd: int) -> str:
    """The path a worker opens this process's memory file `fd` by."""
    return f"/proc/{os.getpid()}/fd/{fd}"


def read(path: str) -> bytes:
    """A page or a state a manager put in a memory file (in a worker)."""
    with open(path, "rb") as file:
        return file.read()
