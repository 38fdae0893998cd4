"""How one configuration key is declared: its name, default, help and parser.

The core declares its keys with `Setting` in `photon.core.config`; a backend declares its own on
its class (`Backend.settings`). Both import this module, which imports neither of them.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "PHOTON_"


def parse_str(text: str) -> str:
    return text


@dataclass(frozen=True)
class Setting:
    """One configuration key."""

    key: str
    default: str | Callable[[], str] | None
    """As it would be written in photon.properties; a callable for defaults computed at start."""
    help: str
    parse: Callable[[str], Any] = parse_str
    secret: bool = False
    """Hidden when the effective configuration is logged."""
    aliases: tuple[str, ...] = ()
    """Old names accepted for the same key (Photon's `h2.path` for `sqlite.path`, ...)."""

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.key.upper().replace(".", "_").replace("-", "_")

    def default_text(self) -> str | None:
        return self.default() if callable(self.default) else self.default


def closest_key(key: str, known: Iterable[str]) -> str | None:
    """The known name closest to a mistyped `key` (for "did you mean ...?"), or None."""
    matches = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None
