"""Backup files: atomic writing (plain or gzip by the name) and reading (gzip found by its magic bytes).

A backup is written to a temporary file beside the target and renamed over it only once every
byte is written and synced, so a backup that fails (an error, Ctrl-C, a full disk, a killed
process) never leaves a file at the target name that looks complete.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

from photon.core.positioned import BackupFormatError

GZIP_MAGIC = b"\x1f\x8b"
#: zlib level for .gz backups: the fastest; event JSON still compresses about 6:1
#: (level 6 saves about a tenth more, in about twice the time).
GZIP_LEVEL = 1
STDIO = "-"


def is_gzip_name(path: str | Path) -> bool:
    return str(path).endswith(".gz")


@contextlib.contextmanager
def atomic_output(path: str | Path, *, compress: bool | None = None) -> Iterator[IO[bytes]]:
    """A binary file to write a backup into; it appears at `path` only when the block succeeds.

    `compress` None means: gzip when the name ends in `.gz`. `-` writes to standard output as the
    bytes come (a pipe cannot be made atomic; the reader sees the output end early on failure).
    """
    if str(path) == STDIO:
        out = sys.stdout.buffer
        if compress:
            with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=GZIP_LEVEL) as zipped:
                yield cast(IO[bytes], zipped)
        else:
            yield out
        out.flush()
        return
    target = Path(path)
    compress = is_gzip_name(target) if compress is None else compress
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "wb") as raw:
            if compress:
                with gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as zipped:
                    yield cast(IO[bytes], zipped)
            else:
                yield raw
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(temporary, 0o644 & ~_umask())
        os.replace(temporary, target)
        _sync_directory(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX: fsync the directory)."""
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_backup(path: str | Path) -> IO[bytes]:
    """Open a backup file for reading, decompressing it when it starts with gzip's magic bytes."""
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    try:
        magic = raw.read(2)
        raw.seek(0)
    except BaseException:
        raw.close()
        raise
    if magic == GZIP_MAGIC:
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))  # closing it leaves raw open: see reading()
    return raw


def backup_lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The lines of an open backup; a file that cannot be read on (a cut or damaged gzip) is a
    bad line, named by its number."""
    number = 0
    try:
        # Iterating a binary file splits on b"\n" in C: the fastest way.
        for number, line in enumerate(stream, start=1):  # noqa: B007 - number names a read error
            yield line
    except (EOFError, OSError, zlib.error) as exc:
        raise BackupFormatError(number + 1, f"cannot read the file on ({exc})") from None


@contextlib.contextmanager
def reading(path: str | Path) -> Iterator[IO[bytes]]:
    """`open_backup` as a context manager that closes everything it opened."""
    stream = open_backup(path)
    try:
        yield stream
    finally:
        inner = getattr(stream, "fileobj", None)
        stream.close()
        if inner is not None:
            inner.close()


@contextlib.contextmanager
def spooled_stdin(spool_dir: str | None = None) -> Iterator[IO[bytes]]:
    """Standard input copied to an unnamed temporary file (decompressed when gzip), rewound.

    A restore reads its input twice (check, then write); a pipe can be read only once.
    """
    source: IO[bytes] = sys.stdin.buffer
    # Named: a restore checks the file in a second process while it loads (see photon.restore).
    with tempfile.NamedTemporaryFile(dir=spool_dir, prefix="photon-restore-", suffix=".jsonl") as spool:
        head = source.read(2)
        if head == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=cast(IO[bytes], _Prefixed(head, source)), mode="rb") as unzipped:
                shutil.copyfileobj(unzipped, spool, 1 << 20)
        else:
            spool.write(head)
            shutil.copyfileobj(source, spool, 1 << 20)
        spool.flush()
        spool.seek(0)
        yield spool


class _Prefixed:
    """A readable stream: some bytes already read, then the rest of a stream (for GzipFile)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head = head
        self.rest = rest

    def read(self, size: int = -1) -> bytes:
        if self.head:
            if size < 0:
                data, self.head = self.head + self.rest.read(), b""
                return data
            data, self.head = self.head[:size], self.head[size:]
            return data
        return self.rest.read(size)
