"""numba's cache of a kernel follows the modules the kernel uses (waveform_analysis.kernel_cache)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from importlib.util import resolve_name
from pathlib import Path

import pytest

import waveform_analysis

PACKAGE = Path(waveform_analysis.__file__).parent


def _write_package(root: Path, value: int, watched: bool) -> None:
    pkg = root / "kpkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "consts.py").write_text(f"VALUE = {value}\n")
    (pkg / "helpers.py").write_text(
        "import numba\n\n@numba.njit(cache=True)\ndef offset(x):\n    return x + " + str(10 * value) + "\n"
    )
    footer = 'watch(globals(), uses=(".consts", ".helpers"))\n' if watched else ""
    (pkg / "kern.py").write_text(
        textwrap.dedent(
            """\
            import numba

            from waveform_analysis.kernel_cache import watch

            from .consts import VALUE
            from .helpers import offset


            @numba.njit(cache=True)
            def kernel(x):
                return offset(x) + VALUE


            """
        )
        + footer
    )


def _call(root: Path) -> int:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(PACKAGE.parent)]))
    env.pop("NUMBA_CACHE_DIR", None)
    out = subprocess.run(
        [sys.executable, "-c", "from kpkg.kern import kernel; print(kernel(0))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return int(out.stdout.split()[-1])


def _edit_used_modules(root: Path, value: int) -> None:
    """Rewrite the used modules only, as a ``git pull`` that changes them would."""
    pkg = root / "kpkg"
    st = (pkg / "kern.py").stat()
    (pkg / "consts.py").write_text(f"VALUE = {value}\n")
    helpers = (pkg / "helpers.py").read_text().replace("x + 10", f"x + {10 * value}")
    (pkg / "helpers.py").write_text(helpers)
    for name in ("consts.py", "helpers.py"):
        os.utime(pkg / name, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def test_unwatched_kernel_keeps_stale_code(tmp_path: Path) -> None:
    """What the module is for: without watch(), numba loads the old helper and constant."""
    _write_package(tmp_path, 1, watched=False)
    assert _call(tmp_path) == 11
    _edit_used_modules(tmp_path, 2)
    assert _call(tmp_path) == 11  # stale: 22 is right


def test_watched_kernel_recompiles_when_a_used_module_changes(tmp_path: Path) -> None:
    _write_package(tmp_path, 1, watched=True)
    assert _call(tmp_path) == 11
    assert _call(tmp_path) == 11  # from the cache, stamp unchanged
    _edit_used_modules(tmp_path, 2)
    assert _call(tmp_path) == 22
    assert _call(tmp_path) == 22


def _is_cached_kernel(node: ast.AST) -> bool:
    if not isinstance(node, ast.FunctionDef):
        return False
    for dec in node.decorator_list:
        if isinstance(dec, ast.Call) and any(
            k.arg == "cache" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in dec.keywords
        ):
            return True
    return False


def _kernel_modules() -> list[Path]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(_is_cached_kernel(n) for n in ast.walk(tree)):
            found.append(path)
    return found


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(rel.parts)


def _package_imports(path: Path, tree: ast.Module) -> set[str]:
    """The package's modules this module imports from at its top level."""
    name = _module_name(path)
    package = name.rsplit(".", 1)[0]
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            target = "." * node.level + (node.module or "")
            resolved = resolve_name(target, package) if node.level else target
            if resolved.split(".")[0] == "waveform_analysis" and resolved != "waveform_analysis.kernel_cache":
                found.add(resolved)
    return found


def _watched(path: Path, tree: ast.Module) -> set[str] | None:
    package = _module_name(path).rsplit(".", 1)[0]
    for node in tree.body:
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) == "watch"
        ):
            uses = next(k.value for k in node.value.keywords if k.arg == "uses")
            names = [ast.literal_eval(e) for e in uses.elts]
            return {resolve_name(n, package) if n.startswith(".") else n for n in names}
    return None


def test_kernel_modules_found() -> None:
    names = {_module_name(p) for p in _kernel_modules()}
    assert "waveform_analysis.processing._hits_kernels" in names
    assert "waveform_analysis.daq.compass.csv_kernels" in names


@pytest.mark.parametrize("path", _kernel_modules(), ids=lambda p: _module_name(p))
def test_every_kernel_module_watches_what_it_imports(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imports = _package_imports(path, tree)
    watched = _watched(path, tree)
    if not imports:
        assert watched is None, f"{_module_name(path)} imports nothing of the package: no watch() needed"
        return
    assert watched is not None, (
        f"{_module_name(path)} has cached kernels and imports {sorted(imports)}: end it with "
        "watch(globals(), uses=(...)) from waveform_analysis.kernel_cache"
    )
    assert watched == imports, f"{_module_name(path)}: watch(uses=) names {sorted(watched)}, imports {sorted(imports)}"
