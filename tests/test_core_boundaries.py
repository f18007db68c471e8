"""The core package `siaga` stands on its own: test and demo tools live outside it and production
code never comes to depend on them.

- Importing every module of `siaga` loads nothing from the development package `siaga_dev` nor
  from tests/, even with tests/ importable (a fresh interpreter, so this test's own imports do
  not count).
- No import statement in production code (`siaga`, the Airflow plugin file, the DAGs) names a
  test module; `siaga_dev` is imported only inside functions (the `siaga demo` and
  `siaga scenario` commands), never when a module loads. `siaga_dev`, which is shipped, does
  not import tests either.
- Airflow's plugin discovery skips both packages (plugins/.airflowignore): only the plugin file
  is loaded as a plugin.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGINS = REPO / "plugins"
TESTS = REPO / "tests"
CORE = PLUGINS / "siaga"
DEV = PLUGINS / "siaga_dev"

_IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, sys
import siaga

imported = []
for info in pkgutil.walk_packages(siaga.__path__, "siaga."):
    importlib.import_module(info.name)
    imported.append(info.name)
loaded = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
print(json.dumps({"imported": imported, "loaded": loaded}))
"""


def _core_module_names() -> set[str]:
    """Module names of every .py file of the core package (migrations are Alembic scripts run by
    path, not modules of the package)."""
    names = set()
    for path in CORE.rglob("*.py"):
        rel = path.relative_to(PLUGINS).with_suffix("")
        if "migrations" in rel.parts:
            continue
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        names.add(".".join(parts))
    return names


def test_importing_every_core_module_loads_no_dev_or_test_code():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS), str(TESTS)])}
    result = subprocess.run([sys.executable, "-c", _IMPORT_EVERY_MODULE], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report["imported"]) | {"siaga"} == _core_module_names()
    dev = sorted(name for name in report["loaded"] if name == "siaga_dev" or name.startswith("siaga_dev."))
    assert dev == [], f"importing siaga loads the development package: {dev}"
    from_tests = sorted(name for name, file in report["loaded"].items()
                        if file and Path(file).resolve().is_relative_to(TESTS))
    assert from_tests == [], f"importing siaga loads modules from tests/: {from_tests}"


def _test_module_names() -> set[str]:
    """Top-level names under which tests/ code can be imported (pytest puts tests/ on the path)."""
    names = {"tests"}
    for path in TESTS.iterdir():
        if path.suffix == ".py":
            names.add(path.stem)
        elif (path / "__init__.py").exists():
            names.add(path.name)
    return names


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(top-level module name, line, inside a function) of every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend((alias.name.split(".")[0], child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                out.append((child.module.split(".")[0], child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return out


def _production_files() -> list[Path]:
    return sorted([*CORE.rglob("*.py"), PLUGINS / "siaga_plugin.py", PLUGINS / "siaga_push.py", *(REPO / "dags").rglob("*.py")])


def test_no_shipped_module_imports_from_tests():
    test_names = _test_module_names()
    assert {"conftest", "support"} <= test_names
    offenders = [f"{path.relative_to(REPO)}:{line} imports {name}"
                 for path in [*_production_files(), *sorted(DEV.rglob("*.py"))]
                 for name, line, _ in _imports(path) if name in test_names]
    assert offenders == []


def test_production_code_imports_siaga_dev_only_inside_functions():
    lazy, eager = [], []
    for path in _production_files():
        for name, line, in_function in _imports(path):
            if name == "siaga_dev":
                (lazy if in_function else eager).append(f"{path.relative_to(REPO)}:{line}")
    assert eager == []
    assert lazy, "the `siaga demo` and `siaga scenario` commands import siaga_dev when they run"


def test_airflow_scans_neither_package_as_plugin_files():
    # The file discovery Airflow's plugins manager runs over the plugins folder, with its ignore file.
    from airflow._shared.module_loading.file_discovery import find_path_from_directory

    found = [Path(p) for p in find_path_from_directory(str(PLUGINS), ".airflowignore", "glob")]
    python_files = sorted(str(p.relative_to(PLUGINS)) for p in found if p.suffix == ".py")
    assert python_files == ["siaga_plugin.py"]
