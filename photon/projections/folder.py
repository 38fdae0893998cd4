"""Projection files in `projections.path`: registered at start, and as they change when watched.

A file's projection is registered through the same `__config__` events as one added over the
API (origin "file", with the file's name as its path): a new or changed file registers it anew,
a file that is gone removes it, an unchanged one keeps its state and checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from photon.projections.checking import Checked, Checker
from photon.projections.definition import EXTENSIONS, DefinitionError, ProjectionSpec, spec_from_file
from photon.projections.registry import STREAMS_PROJECTION, Registry

#: The example projections shipped with Photon (the repository's `projections` folder links here).
EXAMPLES_FOLDER = Path(__file__).resolve().parent.parent / "examples" / "projections"

log = logging.getLogger("photon.projections")

FOLDER_POLL_SECONDS = 1.0
"""How often a `projections.path` that does not exist yet is looked for."""


class FolderWatcher:
    """Keeps the projections of a folder's files in line with the files.

    `register(spec, checked)` and `unregister(name)` change the set (they are the manager's, and
    are called holding `changes`, the lock of every change to the set)."""

    def __init__(
        self,
        folder: Path | None,
        watch: bool,
        registry: Registry,
        checker: Checker,
        changes: asyncio.Lock,
        register: Callable[[ProjectionSpec, Checked], Awaitable[object]],
        unregister: Callable[[str], Awaitable[None]],
    ) -> None:
        self.folder = folder
        self.watch = watch
        self.registry = registry
        self.checker = checker
        self.changes = changes
        self.register = register
        self.unregister = unregister
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Say what the folder holds, register its files, and watch it (when `watch`): a folder
        that does not exist yet is watched from when it is created."""
        self.report()
        if self.folder is None:
            return
        if self.folder.is_dir():
            await self.sync_folder()
        if self.watch:
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self._watch(self.folder, self._stop), name="projections-watch")

    async def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def report(self) -> None:
        """Say which folder projection files are read from and what it holds: a server started
        elsewhere than the repository finds no `./projections` and would otherwise load nothing silently."""
        if self.folder is None:
            return
        where = self.folder.resolve()
        if not self.folder.is_dir():
            log.warning(
                "projections.path %s does not exist: no projection files loaded%s (Photon's examples are in %s; "
                "-projections.path %s loads them)",
                where,
                "; its files are loaded once it is created" if self.watch else "",
                EXAMPLES_FOLDER,
                EXAMPLES_FOLDER,
            )
            return
        files = sorted(p.name for p in self.folder.iterdir() if p.suffix in EXTENSIONS)
        log.info(
            "projections.path %s: %d projection file%s%s",
            where,
            len(files),
            "" if len(files) == 1 else "s",
            f" ({', '.join(files)})" if files else "",
        )

    @staticmethod
    def file_spec(path: Path) -> ProjectionSpec | None:
        if path.suffix not in EXTENSIONS or path.name.startswith((".", "_")) or not path.is_file():
            return None
        try:
            spec = spec_from_file(path)
        except (OSError, UnicodeDecodeError, DefinitionError) as exc:
            log.warning("cannot read projection file %s: %s", path, exc)
            return None
        return ProjectionSpec(spec.name, spec.language, spec.source, "file", path.name)

    async def sync_file(self, path: Path) -> None:
        """Bring one file's projection in line with the file: register, re-register or delete."""
        async with self.changes:
            spec = self.file_spec(path) if path.exists() else None
            checked: Checked | None = None
            projections = self.registry.projections
            if spec is not None:
                registered = [
                    p.spec for p in projections.values() if p.spec.origin == "file" and p.spec.path == path.name
                ]
                if registered and all(r.source == spec.source and r.language == spec.language for r in registered):
                    return  # unchanged: keep its state and checkpoint
                checked = await self.checker.check(spec)
                spec = replace(spec, name=checked.name)
            for projection in list(projections.values()):
                same_file = projection.spec.origin == "file" and projection.spec.path == path.name
                if same_file and (spec is None or projection.name != spec.name):
                    await self.unregister(projection.name)
            if spec is None or checked is None:
                return
            if spec.name == STREAMS_PROJECTION:
                log.warning("%s: %r is built in; the file is ignored", path, STREAMS_PROJECTION)
                return
            await self.register(spec, checked)

    async def sync_folder(self) -> None:
        """Register new and changed files, remove the projections of files that are gone."""
        assert self.folder is not None
        present = {p.name for p in self.folder.iterdir()}
        for projection in list(self.registry.projections.values()):
            if projection.spec.origin == "file" and projection.spec.path not in present:
                await self.sync_file(self.folder / str(projection.spec.path))
        for path in sorted(self.folder.iterdir()):
            await self.sync_file(path)

    async def _watch(self, folder: Path, stop: asyncio.Event) -> None:
        """Watch the folder. One that is not there (not created yet, removed, or replaced by a new
        folder, which the watch of the old one does not see) is looked for, and read once it is."""
        while not stop.is_set():
            if not folder.is_dir():
                while not folder.is_dir():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), FOLDER_POLL_SECONDS)
                    if stop.is_set():
                        return
                log.info("projections.path %s was created: its projection files are loaded", folder.resolve())
            with contextlib.suppress(FileNotFoundError):  # removed before its watch began: looked for again
                await self._watch_while_there(folder, folder.stat().st_ino, stop)

    async def _watch_while_there(self, folder: Path, watched: int, stop: asyncio.Event) -> None:
        """Watch the folder (its inode `watched`) until it is removed or replaced, or the watcher stops."""
        import watchfiles

        # The watcher watches from its first wait on, a moment after `start` read the folder (later
        # still on a busy machine): a change in between, such as a file written while the server
        # started, is in no change it reports. Its first answer (changes, or the timeout once it
        # has watched a second) comes once it watches, and the folder is read again then.
        watching = False
        folder_path = Path(folder).absolute()
        async for changes in watchfiles.awatch(
            folder, stop_event=stop, debounce=200, step=50, recursive=False, rust_timeout=1000, yield_on_timeout=True
        ):
            if not watching:
                watching = True
                try:
                    await self.sync_folder()
                except Exception:
                    log.exception("could not read the projections folder %s again", folder)
                continue
            for name in sorted({Path(path).name for _, path in changes}):
                if Path(name).suffix in EXTENSIONS:
                    try:
                        await self.sync_file(folder / name)
                    except Exception:
                        log.exception("could not apply the change of %s", name)
            # The folder itself changed (removed: its inode may be reused by a new one at once).
            itself = any(Path(path) == folder_path for _, path in changes)
            try:
                there = not itself and folder.stat().st_ino == watched
            except OSError:
                there = False
            if not there:
                log.warning("projections.path %s was removed or replaced: it is looked for again", folder.resolve())
                return
