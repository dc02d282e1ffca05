"""The house's lines, read from the code's own imports (every ``import``, also those inside functions):

- the torch-free packages (what the Diagnose edition runs) never import PyTorch, torchvision, scikit-learn, SciPy
  or matplotlib, nor an engine package that does; importing each of them with those blocked loads none;
- engine packages import only the packages below them (the order of ``LAYERS``), the engine never imports Qt
  or the app, and the app reaches the full edition only through ``engine.api``;
- no two modules import each other, directly or round a circle;
- the top of ``engine/`` holds at most five loose modules, and no file is longer than ~400 lines.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import print_calls

ROOT = Path(__file__).resolve().parents[1]
FULL_ONLY = ("torch", "torchvision", "triton", "sklearn", "scipy", "matplotlib")
TORCH_FREE = ("core", "data", "runs", "deploy", "slides", "report")
# each engine package and the engine packages it may import (itself included)
LAYERS = {
    "core": {"core"},
    "data": {"core", "data"},
    "runs": {"core", "data", "runs"},
    "report": {"core", "report"},
    "deploy": {"core", "data", "runs", "deploy"},
    "slides": {"core", "data", "deploy", "slides"},
    "models": {"core", "data", "models"},
    "attacks": {"core", "data", "models", "attacks"},
    "train": {"core", "data", "models", "attacks", "train"},
    "evaluate": {"core", "data", "runs", "deploy", "report", "models", "attacks", "evaluate"},
    "export": {"core", "data", "runs", "deploy", "models", "attacks", "export"},
    "explain": {"core", "data", "runs", "deploy", "models", "explain"},  # captum attribution maps
    "workflows": {*TORCH_FREE, "models", "attacks", "train", "evaluate", "export", "explain", "workflows"},
    "cli": {*TORCH_FREE, "models", "train", "cli", "api"},
}
LIMIT_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources(*packages: str) -> dict[str, Path]:
    return {_module_name(p): p for pkg in packages for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports, anywhere in it (relative imports resolved)."""
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}  # ``from engine.x import y`` may name a module y
    return names


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    sources = _sources("engine", "desktop_app")
    return {m: {i for i in _imports(p, m)} for m, p in sources.items()}


def test_torch_free_packages_never_import_the_full_edition(graph):
    offenders = {}
    for module, imported in graph.items():
        if module.split(".")[:2] in [["engine", p] for p in TORCH_FREE]:
            bad = sorted(i for i in imported if i.split(".")[0] in FULL_ONLY)
            bad += sorted(
                i
                for i in imported
                if i.startswith("engine.") and i.split(".")[1] in LAYERS and i.split(".")[1] not in TORCH_FREE
            )
            if bad:
                offenders[module] = bad
    assert not offenders, f"torch-free modules import the full edition: {offenders}"


def test_engine_packages_import_only_the_layers_below(graph):
    wrong = defaultdict(list)
    for module, imported in graph.items():
        parts = module.split(".")
        if parts[0] != "engine" or len(parts) < 3 or parts[1] not in LAYERS:
            continue
        allowed = LAYERS[parts[1]]
        for name in imported:
            target = name.split(".")
            if target[0] in ("PySide6", "pyqtgraph", "shiboken6", "desktop_app"):
                wrong[module].append(name)
            elif (
                target[0] == "engine" and len(target) > 1 and target[1] in (*LAYERS, "api") and target[1] not in allowed
            ):
                wrong[module].append(name)
    assert not wrong, f"imports against the layer order: {dict(wrong)}"


def test_the_app_reaches_the_full_edition_only_through_engine_api(graph):
    full = {"models", "attacks", "train", "evaluate", "export", "explain", "workflows", "cli"}
    wrong = {
        m: sorted(i for i in imported if i.startswith("engine.") and i.split(".")[1] in full)
        for m, imported in graph.items()
        if m.startswith("desktop_app.") and m != "desktop_app.launcher"  # the entry point starts the CLI
    }
    assert not {m: v for m, v in wrong.items() if v}


def test_no_import_circles(graph):
    modules = set(graph)
    edges = {m: {i for i in graph[m] if i in modules and i != m} for m in modules}
    circles = [c for c in _strongly_connected(edges) if len(c) > 1]
    assert not circles, f"modules that import each other: {circles}"


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    out.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return out


def test_the_circle_check_finds_a_circle():
    """Control: a two-module circle and a three-module circle are found, a chain is not."""
    found = _strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}})
    assert sorted(c for c in found if len(c) > 1) == [["a", "b"], ["c", "d", "e"]]


def test_importing_every_torch_free_module_and_the_app_loads_no_full_edition_package():
    """With the full edition's packages blocked (as in the Diagnose edition), every torch-free module and every
    module of the desktop app imports, and nothing of the full edition is loaded."""
    modules = sorted(m for m in _sources(*(f"engine/{p}" for p in TORCH_FREE), "desktop_app"))
    modules = [m for m in modules if m != "desktop_app.launcher"] + ["engine.api", "engine.cli.parser"]
    code = (
        "import importlib, sys\n"
        "sys.path.append('tests')\n"
        "from notorch import FULL_ONLY, BlockFullOnly\n"
        "sys.meta_path.insert(0, BlockFullOnly())\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in FULL_ONLY))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]"
    assert len(modules) > 60  # the list is not empty by accident


def test_engine_keeps_at_most_five_loose_modules():
    loose = sorted(p.name for p in (ROOT / "engine").glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(loose) <= 5, loose


def test_no_file_is_longer_than_about_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for d in ("engine", "desktop_app", "tests", "bench", "packaging")
        for p in (ROOT / d).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > LIMIT_LINES
    }
    assert not long, long


def test_engine_library_code_does_not_print():
    library = [p for p in (ROOT / "engine").rglob("*.py") if "cli" not in p.relative_to(ROOT / "engine").parts]
    assert not print_calls(library)


def test_importing_the_whole_engine_loads_no_qt():
    code = (
        "import sys, importlib, pkgutil, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    if m.name != 'engine.__main__': importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'desktop_app', 'shiboken6')]\n"
        "assert not bad, bad\n"
        "import os; assert os.environ['ORT_DISABLE_TELEMETRY'] == '1'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_api_import_is_light():
    code = "import sys, engine.api; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", "engine.api must not import torch until a function is used"
