"""The shape of the code: the package's modules import each other without a cycle, and
no module reaches into another's private names.

Imports are read from the source (``ast``), wherever they run: at module level or
inside a function (an import kept inside a function to dodge a cycle is still a
cycle). Imports under ``if TYPE_CHECKING:`` never run and name types only, so the
cycle check leaves them out; the private-name check reads them too. Importing
``a.b.c`` runs ``a`` and ``a.b`` first, so those edges count as well.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "bluegreen"
CALLERS = [ROOT / "functions", ROOT / "cli", ROOT / "local", ROOT / "bench"]


def _module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(base: Path, folder: Path) -> dict[str, Path]:
    return {
        _module_name(path, base): path
        for path in sorted(folder.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


PACKAGE_MODULES = _modules(PACKAGE, PACKAGE / "bluegreen")


def _type_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                found.update(id(n) for n in ast.walk(inner))
    return found


def _imports(
    path: Path, name: str, *, runtime_only: bool = False
) -> Iterator[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import of ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    skipped = _type_only(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, [alias.name for alias in node.names], node.lineno


def _edges(name: str, path: Path) -> set[str]:
    """The package's modules that importing ``name`` runs directly."""
    found: set[str] = set()
    for target, names, _ in _imports(path, name, runtime_only=True):
        candidates = [target] + [f"{target}.{n}" for n in names]
        for candidate in candidates:
            parts = candidate.split(".")
            for end in range(1, len(parts) + 1):
                prefix = ".".join(parts[:end])
                if prefix in PACKAGE_MODULES and prefix != name:
                    found.add(prefix)
    # A module's own parent packages run before it: not an import it makes.
    return {m for m in found if not name.startswith(m + ".")}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), as a path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_package_has_no_import_cycle() -> None:
    # GIVEN every module of the package and what it imports
    graph = {name: _edges(name, path) for name, path in PACKAGE_MODULES.items()}
    # THEN no group of modules imports itself round
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    # GIVEN a graph with a cycle through three modules, and a tail outside it
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    # THEN the three are reported, the tail is not
    assert _cycles(graph) == [["a", "b", "c"]]


def _private_imports(folder: Path) -> Iterator[str]:
    base = PACKAGE if folder == PACKAGE / "bluegreen" else ROOT
    for name, path in _modules(base, folder).items():
        tree = ast.parse(path.read_text(), filename=str(path))
        module_aliases: dict[str, str] = {}
        for target, names, line in _imports(path, name):
            if not target.startswith("bluegreen") and target.split(".")[0] not in {
                "functions",
                "cli",
                "local",
                "bench",
            }:
                continue
            if target == name:
                continue
            for taken in names:
                if taken.startswith("_") and not taken.startswith("__"):
                    yield f"{path.relative_to(ROOT)}:{line} imports {taken} from {target}"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if full in PACKAGE_MODULES:
                        module_aliases[alias.asname or alias.name] = full
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in PACKAGE_MODULES and alias.asname:
                        module_aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                yield (
                    f"{path.relative_to(ROOT)}:{node.lineno} uses "
                    f"{module_aliases[node.value.id]}.{node.attr}"
                )


@pytest.mark.parametrize(
    "folder", [PACKAGE / "bluegreen", *CALLERS], ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_no_module_takes_another_modules_private_names(folder: Path) -> None:
    # THEN nothing imports a private name of another module, or reads one through it
    assert list(_private_imports(folder)) == []
