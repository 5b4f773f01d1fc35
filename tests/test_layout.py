"""The package layout rules of ARCHITECTURE.md, checked.

The import rules are derived from the source tree, never from a hand list: every module under
``core/vislint`` is an engine module, so a module added tomorrow is covered the day it lands.
"""
from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "core" / "vislint"
FORBIDDEN = ("vislint.integrations", "vislint.plugin", "fiftyone", "label_studio_sdk")
"""What no engine module may import, directly or through another module (with submodules)."""


def modules_under(folder: Path, package: str) -> dict[str, Path]:
    """Every Python module of the package whose source is ``folder``: name -> file."""
    found = {}
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if all(p.isidentifier() for p in parts):
            found[".".join((package, *parts))] = path
    return found


def engine_contract(modules, package: str = "vislint", forbidden=FORBIDDEN) -> str:
    """An import-linter configuration (INI) forbidding ``forbidden`` to each of ``modules``.

    import-linter treats every listed module as a package (with its submodules), so the root
    package is left out here (it holds the integrations too); its own imports are checked by
    test_no_engine_module_names_an_integration below."""
    def lines(names):
        return "".join(f"\n    {n}" for n in sorted(names))
    return (f"[importlinter]\nroot_package = {package}\ninclude_external_packages = True\n\n"
            "[importlinter:contract:engine]\n"
            "name = The engine never imports the integrations or their tools\n"
            "type = forbidden\n"
            f"source_modules ={lines(m for m in modules if m != package)}\n"
            f"forbidden_modules ={lines(forbidden)}\n")


def lint_imports(config: Path, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install '.[test]')")
    return subprocess.run([exe, "--no-cache", str(config)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def test_engine_never_imports_integrations(tmp_path):
    modules = modules_under(ENGINE, "vislint")
    assert {"vislint", "vislint.pipeline", "vislint.checks"} <= modules.keys()
    config = tmp_path / "importlinter.ini"
    config.write_text(engine_contract(modules))
    r = lint_imports(config, cwd=ROOT / "tests")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "The engine never imports the integrations or their tools KEPT" in r.stdout


def test_a_new_engine_module_that_imports_fiftyone_breaks_the_contract(tmp_path):
    """The contract's derivation, on a package laid out like ours with one new module."""
    pkg = tmp_path / "src" / "probe"
    (pkg / "checks").mkdir(parents=True)
    (pkg / "integrations").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "checks" / "__init__.py").write_text("")
    (pkg / "checks" / "brand_new.py").write_text("def f():\n    import fiftyone\n")
    (pkg / "integrations" / "__init__.py").write_text("import fiftyone\n")
    (pkg / "other.py").write_text("from .integrations import x\n")
    modules = modules_under(pkg, "probe")
    del modules["probe.integrations"]  # the engine is everything but the adapters
    config = tmp_path / "importlinter.ini"
    config.write_text(engine_contract(modules, "probe", ("probe.integrations", "fiftyone")))
    r = lint_imports(config, cwd=tmp_path, env={"PATH": "/usr/bin:/bin",
                                                "PYTHONPATH": str(tmp_path / "src")})
    assert r.returncode == 1, r.stdout + r.stderr
    assert "BROKEN" in r.stdout
    assert "probe.checks.brand_new -> fiftyone" in r.stdout
    assert "probe.other -> probe.integrations" in r.stdout


def test_no_engine_module_names_an_integration():
    """Every engine module, the package's __init__ included, by its own import statements."""
    def forbidden(name):
        return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    found = {m: sorted(filter(forbidden, names))
             for m, names in imported_names(modules_under(ENGINE, "vislint")).items()}
    assert {m: names for m, names in found.items() if names} == {}


# ------------------------------------------------------------------------- no import cycles
# Every import statement counts: at module level, inside a function, and under TYPE_CHECKING.
# Deferring an import changes when Python runs it, not what the module needs to be understood,
# tested or moved; a function-level or type-only import is how a circle is usually hidden.
# (``vislint/__init__`` reaches its public names through ``import_module`` on first use: that
# is a lazy attribute table, not an import statement, and is not an edge.)

def imported_names(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the absolute names its import statements name (``from a import b`` names
    ``a.b``: a submodule or an attribute of ``a``)."""
    found = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                names |= {f"{base}.{a.name}" for a in node.names}
        found[name] = names
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the modules of ``modules`` it imports."""
    known = set(modules) | {f"{name}.{p.stem}" for name, path in modules.items()
                            if path.name == "__init__.py"
                            for p in path.parent.glob("*.pyi")}  # extension modules (_native)

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    return {name: {t for t in map(resolve, names) if t in modules and t != name}
            for name, names in imported_names(modules).items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_cycle_finder_sees_deferred_and_type_only_imports(tmp_path):
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from p.a import f\nfrom . import c\n")
    (pkg / "c.py").write_text("import os\nfrom . import _ext\n")
    (pkg / "_ext.pyi").write_text("")
    graph = import_graph(modules_under(pkg, "p"))
    # c -> _ext is to an extension module, not to the package p
    assert graph == {"p": set(), "p.a": {"p.b"}, "p.b": {"p.a", "p.c"}, "p.c": set()}
    assert cycles(graph) == [["p.a", "p.b"]]


def test_no_import_cycle_in_the_engine():
    assert cycles(import_graph(modules_under(ENGINE, "vislint"))) == []


def test_no_generic_top_level_names():
    if "_editable_skbc_vislint" in sys.modules:
        pytest.skip("editable install: its path hook exposes the source tree (CI tests a real install)")
    for name in ("core", "integrations", "native"):
        assert importlib.util.find_spec(name) is None, f"'import {name}' must not exist"


def test_import_is_light():
    code = "import sys, vislint; print(sorted(m for m in ('faiss', 'pandas', 'vislint._native') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "tests")
    assert r.stdout.strip() == "[]", r.stdout + r.stderr
