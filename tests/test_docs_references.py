"""The README and docs/ name modules, objects and files of the repository: each must exist.

A module that moves takes its documentation with it; this finds the places that still name the
old one. Backticked dotted names starting with ``photon.`` or ``photon_backends.`` must import
(the longest importable prefix, then attributes); backticked paths under the repository's own
folders must exist. Dotted names that are not Python (broker objects, files, span attributes,
the entry-point group) are listed below.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_PYTHON = {
    "photon.backends",  # the entry-point group of storage plugins
    "photon.commands", "photon.commands.dead", "photon.dead", "photon.events",  # AMQP broker objects
    "photon.append", "photon.order_id.first",  # tracing span and attribute names
    "photon.db", "photon.jsonl", "photon.properties", "photon.properties.example",  # files
}  # fmt: skip
DOTTED = re.compile(r"`((?:photon|photon_backends)(?:\.[A-Za-z_]\w*)+)(?:\(.*?\))?`")
PATH = re.compile(r"`((?:photon|backends|tests|benchmarks|scripts|docs)/[A-Za-z0-9_./-]+)`")


def _references(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    found = set()
    for doc in DOCS:
        for match in pattern.finditer(doc.read_text(encoding="utf-8")):
            found.add((match.group(1), doc.relative_to(ROOT).as_posix()))
    return sorted(found)


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def test_references_are_found() -> None:
    names = {name for name, _ in _references(DOTTED)}
    assert "photon.core.events.RecordedEvent" in names
    assert not resolves("photon.core.no_such_module")
    assert not resolves("photon.core.events.NoSuchThing")


@pytest.mark.parametrize(("name", "doc"), [ref for ref in _references(DOTTED) if ref[0] not in NOT_PYTHON])
def test_a_named_module_or_object_exists(name: str, doc: str) -> None:
    assert resolves(name), f"{doc} names {name}, which does not import"


@pytest.mark.parametrize(("path", "doc"), _references(PATH))
def test_a_named_file_exists(path: str, doc: str) -> None:
    assert (ROOT / path).exists(), f"{doc} names {path}, which is not in the repository"
