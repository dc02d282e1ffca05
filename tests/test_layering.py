"""The engine stays Qt-free and quiet: no Qt or desktop_app imports, no print() outside the CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import print_calls

ENGINE = Path(__file__).resolve().parents[1] / "engine"
FORBIDDEN = ("PySide6", "pyqtgraph", "desktop_app", "shiboken6")


def _modules() -> list[Path]:
    return sorted(ENGINE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_engine_never_imports_qt_or_the_app():
    offenders = {str(p.relative_to(ENGINE)): sorted(_imports(p) & set(FORBIDDEN)) for p in _modules()}
    assert not {k: v for k, v in offenders.items() if v}


def test_engine_library_code_does_not_print():
    library = [p for p in _modules() if "cli" not in p.relative_to(ENGINE).parts]
    assert not print_calls(library)


def test_importing_the_whole_engine_loads_no_qt():
    code = (
        "import sys, importlib, pkgutil, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    if m.name != 'engine.__main__': importlib.import_module(m.name)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "assert not bad, bad\n"
        "import os; assert os.environ['ORT_DISABLE_TELEMETRY'] == '1'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_api_import_is_light():
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, engine.api; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip() == "False", "engine.api must not import torch until a function is used"
