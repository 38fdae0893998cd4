"""The layout rules of the runtime packages (docs/architecture.md), checked on their source.

Imports count when they run: imports inside functions count, imports under ``if TYPE_CHECKING:``
do not (tests/layout_graph.py reads them).
"""

from __future__ import annotations

import ast

import pytest

from tests.layout_graph import Module, cycles, modules

FRONT_ENDS = ("photon.server", "photon.client", "photon.cli", "photon.eventsourcing")
BELOW_FRONT_ENDS = (
    "photon.core",
    "photon.ops",
    "photon.projections",
    "photon.groups",
    "photon.wire",
    "photon_backends",
)
# Front ends that must not import each other: a client speaks to a server through the formats both
# import from `photon.wire` (or `photon.core`), so it installs and runs without the server's code.
APART = {
    "photon.client": ("photon.server", "photon.cli"),
    "photon.server": ("photon.client", "photon.cli"),
}
LONG = 500
# A namedtuple's own API starts with an underscore so as not to clash with its fields.
NAMEDTUPLE_API = {"_replace", "_fields", "_asdict", "_make", "_field_defaults"}

MODULES = modules()


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def test_the_graph_is_read() -> None:
    # The rules below would pass on an empty graph: make sure the reader sees the real one.
    store = MODULES["photon.core.store"]
    assert "photon.core.events" in store.imports
    assert len(MODULES) > 80


def test_there_is_no_import_loop() -> None:
    assert cycles(MODULES) == []


def test_the_cycle_finder_finds_a_loop() -> None:
    a = Module("a", MODULES["photon"].path, False, {"b": 1})
    b = Module("b", MODULES["photon"].path, False, {"c": 1})
    c = Module("c", MODULES["photon"].path, False, {"a": 1})
    assert cycles({"a": a, "b": b, "c": c}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _within(n, BELOW_FRONT_ENDS)))
def test_nothing_below_the_front_ends_imports_one(name: str) -> None:
    wrong = {target: line for target, line in MODULES[name].imports.items() if _within(target, FRONT_ENDS)}
    assert wrong == {}, f"{name} imports front ends (module: first line)"


def imports_across(module: Module) -> dict[str, int]:
    """The front ends `module` must not import but does (module: first line)."""
    for package, forbidden in APART.items():
        if _within(module.name, (package,)):
            return {target: line for target, line in module.imports.items() if _within(target, forbidden)}
    return {}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _within(n, tuple(APART))))
def test_the_client_and_the_server_do_not_import_each_other(name: str) -> None:
    assert imports_across(MODULES[name]) == {}, f"{name} imports the other side (module: first line)"


def test_the_client_server_check_can_fail() -> None:
    probe = Module("photon.client.probe", MODULES["photon"].path, False, {"photon.server.amqp.protocol": 7})
    assert imports_across(probe) == {"photon.server.amqp.protocol": 7}


def _own_private_names(tree: ast.AST) -> set[str]:
    """Underscore names a module defines itself: its functions, classes, methods and attributes."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return {name for name in names if name.startswith("_")}


def private_reads(module: Module) -> list[str]:
    tree = ast.parse(module.path.read_text(encoding="utf-8"))
    own = _own_private_names(tree)
    found = [f"line {line}: from {target} import {name}" for target, name, line in module.private_imports]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        attr = node.attr
        if not attr.startswith("_") or attr.startswith("__") or attr in NAMEDTUPLE_API or attr in own:
            continue
        value = node.value
        if isinstance(value, ast.Name) and value.id in ("self", "cls"):
            continue
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super":
            continue
        found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_reads_another_modules_private_names(name: str) -> None:
    assert private_reads(MODULES[name]) == []


def test_the_private_name_check_can_fail(tmp_path: object) -> None:
    source = MODULES["photon.ops.backup"]
    probe = Module("probe", source.path, False)
    probe.private_imports.append(("photon.core.store", "_secret", 1))
    assert private_reads(probe) == ["line 1: from photon.core.store import _secret"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_long_module_says_why(name: str) -> None:
    module = MODULES[name]
    source = module.path.read_text(encoding="utf-8")
    lines = len(source.splitlines())
    if lines <= LONG:
        return
    docstring = ast.get_docstring(ast.parse(source)) or ""
    assert "Long because" in docstring, f"{name} has {lines} lines and its docstring does not say why"
