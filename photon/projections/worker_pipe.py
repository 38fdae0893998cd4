"""The manager's end of a worker's pipe, read and written by the event loop itself.

A worker's messages go both ways on one socket pair (`multiprocessing.Pipe`); the worker uses
its end as a `multiprocessing` connection, so this end speaks the same framing: a 4-byte
big-endian length (or -1 and an 8-byte length past 2 GiB), then the pickled message.

The manager used to give each worker a sender thread and a receiver thread around a blocking
connection. Each live batch then cost two hand-offs between threads on top of the pipe itself
(the loop woke the sender through a queue, the receiver woke the loop through its self-pipe),
and the two threads took the interpreter lock from the loop and the store's writer at every
commit: about 170 µs of CPU a commit, and a switch of threads each time the lock changed hands.
Here the pipe is non-blocking and registered with the loop: a message is written at once (what
the socket does not take is kept and written when it becomes writable), and replies are read
and handed to `on_message` when the loop sees them, in the loop's thread.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import select
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

READ_SIZE = 256 * 1024
"""Bytes asked of the socket per read (a worker's replies are small; a catch-up report is not)."""

_SHORT = struct.Struct("!i")
_LONG = struct.Struct("!Q")
_LONG_MARK = _SHORT.pack(-1)


def frame(message: Any) -> bytes:
    """`message` as `multiprocessing.Connection.send` puts it on the wire."""
    data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    size = len(data)
    if size > 0x7FFFFFFF:
        return _LONG_MARK + _LONG.pack(size) + data
    return _SHORT.pack(size) + data


class WorkerPipe:
    """One worker's pipe on `loop`: `send` from the loop's thread (other threads are handed to
    it), `on_message(message)` for each message read, `on_closed()` once when the worker's end
    closes. Made in the loop's thread."""

    def __init__(
        self,
        connection: Any,
        loop: asyncio.AbstractEventLoop,
        on_message: Callable[[Any], None],
        on_closed: Callable[[], None],
    ) -> None:
        self.connection = connection
        self.loop = loop
        self._on_message = on_message
        self._on_closed = on_closed
        self._fd: int = connection.fileno()
        self._thread = threading.get_ident()
        self._out = bytearray()
        """What the socket has not taken yet, written when it becomes writable."""
        self._in = bytearray()
        """The start of a message not yet read whole."""
        self._frame: bytearray | None = None
        """A large message being read, whole-sized (see `_readable`)."""
        self._frame_view: Any = None
        self._filled = 0
        """Bytes of `_frame` read so far."""
        self._open = True
        self._drained = threading.Event()
        self._drained.set()
        self._handing = threading.Lock()
        self._handed = 0
        """Messages sent from other threads that the loop has not written yet."""
        os.set_blocking(self._fd, False)
        loop.add_reader(self._fd, self._readable)

    # -- writing -------------------------------------------------------------------------------

    def send(self, message: Any) -> None:
        """Write `message` (in order with every message sent before it)."""
        if threading.get_ident() != self._thread:
            with self._handing:
                self._handed += 1  # a `flush` that follows waits for this one
                self._drained.clear()
            try:
                self.loop.call_soon_threadsafe(self._write_handed, frame(message))
            except RuntimeError:  # the loop is closed: nothing reads or writes this pipe any more
                self._write_handed(b"")
            return
        self._write(frame(message))

    def _write_handed(self, data: bytes) -> None:
        with self._handing:
            self._handed -= 1
        if data:
            self._write(data)
        else:
            self._settle()

    def _settle(self) -> None:
        """Tell a waiting `flush` when nothing is left to write (or nothing can be written)."""
        with self._handing:
            if (not self._out and not self._handed) or not self._open:
                self._drained.set()

    def _write(self, data: bytes) -> None:
        if not self._open:
            self._settle()
            return
        if self._out:
            self._out += data
            return
        try:
            written = os.write(self._fd, data)
        except BlockingIOError:
            written = 0
        except OSError:
            self._settle()
            return  # the worker is gone: its end of file reaches the reader
        if written < len(data):
            self._out += memoryview(data)[written:]
            self.loop.add_writer(self._fd, self._writable)
        else:
            self._settle()

    def _writable(self) -> None:
        try:
            with memoryview(self._out) as view:
                written = os.write(self._fd, view)
        except BlockingIOError:
            return
        except OSError:
            written = len(self._out)  # the worker is gone: drop what it will never read
        del self._out[:written]
        if not self._out:
            self.loop.remove_writer(self._fd)
            self._settle()

    def discard(self) -> None:
        """Drop what is not written yet (the worker is being killed). In the loop's thread."""
        if self._out:
            self._out.clear()
            self.loop.remove_writer(self._fd)
        self._settle()

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until everything sent has been written; whether it was.

        From another thread, the loop writes it; in the loop's thread (the loop cannot run
        meanwhile), it is written here, waiting on the socket with `select`."""
        if threading.get_ident() != self._thread:
            return self._drained.wait(timeout)
        deadline = time.monotonic() + timeout
        while self._out and self._open:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self._fd], [], left)[1]:
                return False
            self._writable()
        return True

    # -- reading -------------------------------------------------------------------------------

    def _readable(self) -> None:
        if self._frame is not None:
            self._read_frame()
            return
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._end()
            return
        buffer = self._in
        buffer += data
        start, end = 0, len(buffer)
        while self._open:
            if end - start < 4:
                break
            (size,) = _SHORT.unpack_from(buffer, start)
            head = 4
            if size == -1:
                if end - start < 12:
                    break
                (size,) = _LONG.unpack_from(buffer, start + 4)
                head = 12
            if end - start - head < size:
                if size > READ_SIZE:
                    # A large message (a big state's report) is read straight into a buffer of
                    # its size: no copy of each read into `_in`, no growing of it.
                    self._frame = bytearray(size)
                    self._frame_view = memoryview(self._frame)
                    self._filled = end - start - head
                    with memoryview(buffer) as view:
                        self._frame_view[: self._filled] = view[start + head : end]
                    start = end
                break
            with memoryview(buffer) as view:
                message = pickle.loads(view[start + head : start + head + size])
            start += head + size
            self._on_message(message)
        del buffer[:start]

    def _read_frame(self) -> None:
        """Read more of the large message begun (never past its end: what follows is read as usual)."""
        view = self._frame_view
        try:
            count = os.readv(self._fd, [view[self._filled :]])
        except BlockingIOError:
            return
        except OSError:
            count = 0
        if not count:
            self._end()
            return
        self._filled += count
        if self._filled < len(view):
            return
        frame, self._frame = self._frame, None
        view.release()
        self._frame_view = None
        message = pickle.loads(frame or b"")
        self._on_message(message)

    def _end(self) -> None:
        if not self._open:
            return
        self.close()
        self._on_closed()

    def close_soon(self) -> None:
        """`close`, from any thread: run by the loop, or here once the loop is closed."""
        if threading.get_ident() != self._thread and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(self.close)
                return
            except RuntimeError:  # closed meanwhile
                pass
        self.close()

    def close(self) -> None:
        """Stop reading and writing, and close this end. In the loop's thread (or once the loop
        is closed)."""
        if not self._open:
            return
        self._open = False
        if not self.loop.is_closed():
            self.loop.remove_reader(self._fd)
            self.loop.remove_writer(self._fd)
        self._out.clear()
        self._settle()
        self.connection.close()
