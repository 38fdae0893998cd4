"""Running a benchmark's server or child process from another source tree (`--trees`), e.g. a
`git archive` export of an earlier commit, to compare two revisions side by side in one run."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def source_tree(path: str | None) -> Iterator[None]:
    """What starts inside runs the source tree `path` (None: this checkout): it goes first on
    PYTHONPATH, with its `backends/` as `photon_backends` (the installed package would otherwise
    be this checkout's)."""
    old = os.environ.get("PYTHONPATH")
    with tempfile.TemporaryDirectory() as links:
        if path is not None:
            entries = [str(Path(path).resolve())]
            tree = Path(path)
            if (tree / "backends").is_dir() and not (tree / "photon_backends").exists():
                (Path(links) / "photon_backends").symlink_to((tree / "backends").resolve())
                entries.append(links)
            os.environ["PYTHONPATH"] = os.pathsep.join(entries)
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = old
