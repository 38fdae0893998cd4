"""`file`: the store as a JSON-lines file at `file.path`, one event per line, readable with any tool.

Each append writes its events' lines, then a commit line ``{"commit": <last order-id>}``, then
fsyncs. On open, lines after the last commit line (a batch cut short by a crash) are cut off,
so a batch is there whole or not at all. A deleted stream is a line ``{"delete-stream": name}``.
Checkpoints live beside the file in `<file.path>.checkpoints.json`, replaced atomically.

The whole store is also kept in memory (indexes and events), so this backend suits
development, small stores and inspection rather than large volumes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from photon.core.backend import StoreState
from photon.core.errors import BackendError
from photon.core.events import RecordedEvent
from photon.core.setting import Setting

from ._locks import FileLock
from .memory import MemoryBackend


class FileBackend(MemoryBackend):
    name = "file"
    aliases = ()
    description = "JSON lines in one file (file.path), indexes in memory"
    persistent = True
    settings = (
        Setting("file.path", "photon.jsonl", "File backend: path of the JSON-lines event file."),
        Setting(
            "file.fsync",
            "true",
            "File backend: fsync after every commit (false trades durability for speed).",
            lambda text: text.strip().lower() in ("true", "yes", "1", "on"),
        ),
    )

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.path = Path(config.get("file.path") or "photon.jsonl")
        self.fsync = bool(config.get("file.fsync", True))
        self._lock_file = FileLock(self.path.with_name(self.path.name + ".lock"))
        self._checkpoint_path = self.path.with_name(self.path.name + ".checkpoints.json")
        self._out: Any = None
        self._dirty = False
        """Events were removed or replaced since the file was last written whole (see reclaim_step)."""

    def describe(self) -> str:
        return f"file {self.path}"

    def open(self, *, writer: bool) -> StoreState:
        if writer:
            self._lock_file.acquire()
        try:
            committed_end = self._load()
            if writer:
                with open(self.path, "ab") as out:
                    if out.tell() != committed_end:
                        out.truncate(committed_end)  # drop a batch cut short by a crash
                        os.fsync(out.fileno())
                self._out = open(self.path, "ab")  # noqa: SIM115 - held open until close()
            if self._checkpoint_path.exists():
                self._checkpoints = {
                    k: v.encode("latin-1") for k, v in orjson.loads(self._checkpoint_path.read_bytes()).items()
                }
        except BaseException:
            self._lock_file.release()
            raise
        return StoreState(self.last_order_id())

    def _load(self) -> int:
        """Read the file into memory; return the byte offset just after the last commit line."""
        if not self.path.exists():
            return 0
        committed_end = 0
        batch: list[RecordedEvent] = []
        deletions: list[str] = []
        changes: list[Callable[[], object]] = []
        offset = 0
        with open(self.path, "rb") as source:
            for number, line in enumerate(source, start=1):
                offset += len(line)
                if not line.endswith(b"\n"):
                    break  # a torn last line
                try:
                    item = orjson.loads(line)
                except orjson.JSONDecodeError:
                    break
                if "commit" in item and len(item) == 1:
                    if batch:
                        self._apply(batch)
                    for stream in deletions:
                        super().delete_stream(stream)
                    for change in changes:
                        change()
                    # The commit line holds the highest order-id ever given, which may be past
                    # the last event left (removed by a deletion or a scavenge): never reused.
                    if type(item["commit"]) is int:
                        self._high_water = max(self._high_water, item["commit"])
                    batch, deletions, changes = [], [], []
                    committed_end = offset
                elif "delete-stream" in item and len(item) == 1:
                    deletions.append(item["delete-stream"])
                elif "truncate-stream" in item and len(item) == 2:
                    changes.append(partial(self._truncate, item["truncate-stream"], item["before"]))
                elif "replace-event" in item and len(item) == 1:
                    data = orjson.dumps(item["replace-event"])
                    changes.append(partial(self._replace, [_record(item["replace-event"], data)]))
                else:
                    try:
                        batch.append(_record(item, line))
                    except (KeyError, TypeError) as exc:
                        raise BackendError(f"{self.path}:{number}: not a Photon event ({exc})") from None
        return committed_end

    def _write(self, lines: list[bytes], commit: int) -> None:
        if self._out is None:
            raise BackendError("the file store was opened read-only")
        lines.append(b'{"commit":%d}\n' % commit)
        try:
            self._out.write(b"".join(lines))
            self._out.flush()
            if self.fsync:
                os.fsync(self._out.fileno())
        except OSError as exc:
            raise BackendError(f"cannot write {self.path}: {exc}") from exc

    def append(self, events: Sequence[RecordedEvent]) -> None:
        if not events:
            return
        with self._lock:
            self._check(events)
            self._write([e.data + b"\n" for e in events], events[-1].order_id)
            self._apply(events)

    def delete_stream(self, stream: str) -> int:
        with self._lock:
            if not self._streams.get(stream):
                return 0
            self._write([orjson.dumps({"delete-stream": stream}) + b"\n"], self._high_water)
            return super().delete_stream(stream)

    def truncate_stream(self, stream: str, before_version: int) -> int:
        with self._lock:
            if not self._streams.get(stream) or self._streams[stream][0].stream_version >= before_version:
                return 0
            line = orjson.dumps({"truncate-stream": stream, "before": before_version}) + b"\n"
            self._write([line], self._high_water)
            self._dirty = True
            return len(self._truncate(stream, before_version))

    def replace_events(self, events: Sequence[RecordedEvent]) -> None:
        with self._lock:
            stored = [e for e in events if e.event_id in self._ids]
            if stored:
                self._write([b'{"replace-event":' + e.data + b"}\n" for e in stored], self._high_water)
                self._replace(stored)
                self._dirty = True

    def reclaim_step(self) -> bool:
        """Write the file again with only the events it holds (copy and swap): removed events and
        the payloads that redactions replaced are then in no copy. The whole file in one step:
        the file backend is for stores small enough to read as text."""
        with self._lock:
            if not self._dirty or self._out is None:
                return False
            temporary = self.path.with_name(self.path.name + ".compact")
            with open(temporary, "wb") as out:
                for start in range(0, len(self._all), 10_000):
                    out.write(b"".join(e.data + b"\n" for e in self._all[start : start + 10_000]))
                out.write(b'{"commit":%d}\n' % self._high_water)
                out.flush()
                os.fsync(out.fileno())
            self._out.close()
            os.replace(temporary, self.path)
            _sync_directory(self.path)
            self._out = open(self.path, "ab")  # noqa: SIM115 - held open until close()
            self._dirty = False
            return False

    def write_checkpoint(self, key: str, value: bytes | None) -> None:
        with self._lock:
            super().write_checkpoint(key, value)
            snapshot = orjson.dumps({k: v.decode("latin-1") for k, v in self._checkpoints.items()})
            temporary = self._checkpoint_path.with_name(self._checkpoint_path.name + ".tmp")
            with open(temporary, "wb") as out:
                out.write(snapshot)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self._checkpoint_path)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        self._lock_file.release()


def _record(item: dict[str, Any], line: bytes) -> RecordedEvent:
    return RecordedEvent(
        item["order-id"],
        item["stream-name"],
        item["stream-version"],
        item["id"],
        item["event-type"],
        item["event-time"],
        line.rstrip(b"\n"),
    )


def _sync_directory(path: Path) -> None:
    """Make a rename in `path`'s directory durable."""
    descriptor = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
