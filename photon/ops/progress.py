"""A progress bar on standard error (events, rate, time left), shown only on a terminal."""

from __future__ import annotations

import sys
from typing import IO, Any

from tqdm import tqdm


def interactive(stream: IO[Any] | None = None) -> bool:
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_bar(description: str, total: int | None = None, *, enabled: bool | None = None) -> tqdm[Any]:
    """A bar counting events; silent (and nearly free) when standard error is not a terminal."""
    return tqdm(
        total=total,
        desc=description,
        unit=" events",
        unit_scale=True,
        file=sys.stderr,
        disable=not (interactive() if enabled is None else enabled),
        dynamic_ncols=True,
        mininterval=0.2,
        smoothing=0.1,
    )
