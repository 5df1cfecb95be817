"""The shape of waveform_analysis/, read from its source (nothing is imported).

* no module over ``MAX_LINES`` lines, except those in ``LONG_MODULES`` (each with its reason);
* no import cycle between subpackages (every import counts, also one inside a
  function; ``if TYPE_CHECKING:`` imports do not);
* no import of a private module or name from another subpackage;
* numba imported only by kernel modules (``_<module>_kernels.py`` in ``processing/``,
  ``kernels.py`` / ``<part>_kernels.py`` in a ``daq/<format>/`` folder), beside their
  wrappers and loaded on the first call.

The allow-lists name the known exceptions, each with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "waveform_analysis"
MAX_LINES = 450

LONG_MODULES: dict[str, str] = {}

PRIVATE_IMPORTS: set[tuple[str, str]] = set()

NUMBA_OUTSIDE_KERNELS = {
    # the test-data generator renders pulses and formats rows with numba; it is never on
    # the data path (nothing the chain imports imports synthetic/)
    "synthetic/model.py",
    "synthetic/shapes.py",
    "synthetic/compass_csv.py",
}

#: Imports that go up the layers on purpose, each made inside the one function that needs it.
UPWARD_IMPORTS = {
    # Context.watch is the façade's entry to online processing, which is built on the Context
    ("core.context", "online"),
    # the Context's default runner (computes the uncached runs of get_array / export in one
    # batch); injected otherwise (Context(runner=...)), imported only when it runs
    ("core.manyruns", "batch"),
}


def _modules() -> dict[str, Path]:
    """Dotted names (without the package) of every module, e.g. ``core.storage.entry``."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _unit(module: str) -> str:
    """The subpackage (or top-level module) a module belongs to; ``core.data`` (the batch,
    moving to ``batch/``) counts as a unit of its own."""
    parts = module.split(".")
    if parts[:2] == ["core", "data"]:
        return "core.data"
    return parts[0]


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return skip


def _imports(module: str, path: Path) -> list[tuple[str, str | None]]:
    """``(imported module, imported name or None)`` for every import of the package itself."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _type_checking_nodes(tree)
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    here = [p for p in here if p]
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("waveform_analysis."):
                    out.append((alias.name.removeprefix("waveform_analysis."), None))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("waveform_analysis"):
                target = node.module.removeprefix("waveform_analysis").lstrip(".")
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                if sub in MODULES:  # ``from package import module``
                    out.append((sub, None))
                else:
                    out.append((target, alias.name))
    return out


IMPORTS = {m: _imports(m, p) for m, p in MODULES.items()}


def test_no_module_is_too_long():
    long = {}
    for path in MODULES.values():
        rel = path.relative_to(PACKAGE).as_posix()
        n = len(path.read_text().splitlines())
        if n > MAX_LINES and rel not in LONG_MODULES:
            long[rel] = n
    assert not long, f"modules over {MAX_LINES} lines (split them by concept): {long}"


def test_no_import_cycle_between_subpackages():
    graph = nx.DiGraph()
    for module, imports in IMPORTS.items():
        for target, _ in imports:
            a, b = _unit(module), _unit(target) if target else ""
            if b and a != b and (module, target) not in UPWARD_IMPORTS:
                graph.add_edge(a, b, via=f"{module} -> {target}")
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    detail = {
        " <-> ".join(c): [d["via"] for a, b, d in graph.edges(data=True) if a in c and b in c]
        for c in cycles
    }
    assert not cycles, f"import cycles between subpackages: {detail}"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_private_import_across_subpackages():
    found = set()
    for module, imports in IMPORTS.items():
        for target, name in imports:
            if not target or _unit(module) == _unit(target):
                continue
            if any(_private(p) for p in target.split(".")) or (name and _private(name)):
                found.add((module, target if name is None or not _private(name) else f"{target}.{name}"))
    assert found <= PRIVATE_IMPORTS, f"private imports across subpackages: {sorted(found - PRIVATE_IMPORTS)}"


def test_numba_is_imported_by_kernel_modules_only():
    wrong = []
    for path in MODULES.values():
        rel = path.relative_to(PACKAGE).as_posix()
        if path.stem.endswith("kernels") or rel in NUMBA_OUTSIDE_KERNELS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )
            if any(n == "numba" or n.startswith("numba.") for n in names):
                wrong.append(rel)
    assert not wrong, f"numba imported outside a _*_kernels.py module: {wrong}"


def test_the_checks_see_the_package():
    # a guard against a check that passes because it read nothing
    assert {"processing.hits", "core.storage", "core.resolver", "parallel"} <= set(MODULES)
    assert ("parallel", "thread_map") in IMPORTS["processing.saturation"]
    assert ("processing.rows", "flat_rows") in IMPORTS["processing.hits"]
    assert ("parallel", None) in IMPORTS["daq._threads"]
