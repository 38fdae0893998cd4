"""The import graph of the runtime packages, read from their source (imports inside functions
count; imports under ``if TYPE_CHECKING:`` do not), for tests/test_layout.py."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"photon": ROOT / "photon", "photon_backends": ROOT / "backends"}


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: dict[str, int] = field(default_factory=dict)  # module -> first line
    private_imports: list[tuple[str, str, int]] = field(default_factory=list)  # module, name, line


def _name_of(path: Path) -> tuple[str, bool]:
    for top, folder in PACKAGES.items():
        if path.is_relative_to(folder):
            parts = [top, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                return ".".join(parts[:-1]), True
            return ".".join(parts), False
    raise ValueError(path)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                yield from _runtime_imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _runtime_imports(node)


def modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for folder in PACKAGES.values():
        for path in sorted(folder.rglob("*.py")):
            if "examples" in path.relative_to(ROOT).parts:
                continue
            name, is_package = _name_of(path)
            found[name] = Module(name, path, is_package)
    for module in found.values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"))
        base = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
        for node in _runtime_imports(tree):
            if isinstance(node, ast.Import):
                targets = [(alias.name, None) for alias in node.names]
            else:
                anchor = ".".join(base[: len(base) - node.level + 1]) if node.level else ""
                source = ".".join(part for part in (anchor, node.module or "") if part)
                targets = []
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    if sub in found:
                        targets.append((sub, None))
                    else:
                        targets.append((source, alias.name))
            for target, imported in targets:
                if target not in found or target == module.name:
                    continue
                module.imports.setdefault(target, node.lineno)
                if imported and imported.startswith("_") and not imported.startswith("__"):
                    module.private_imports.append((target, imported, node.lineno))
    return found


def cycles(found: dict[str, Module]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = [0]

    def visit(name: str) -> None:
        index[name] = low[name] = counter[0]
        counter[0] += 1
        stack.append(name)
        on_stack.add(name)
        for target in found[name].imports:
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in on_stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == name:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for name in found:
        if name not in index:
            visit(name)
    return result
