"""The window opens fast: building it (every page) must not import torch, torchvision or matplotlib,
and the desktop app does not print."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import print_calls

APP = Path(__file__).resolve().parents[2] / "desktop_app"
HEAVY = ("torch", "torchvision", "matplotlib", "onnxruntime", "sklearn")


def test_building_the_window_imports_no_heavy_module(tmp_path):
    code = (
        "import sys\n"
        "from desktop_app.app import build_window, get_app\n"
        "app = get_app(); w = build_window(); w.show(); app.processEvents()\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "HISTOGUARD_SETTINGS": str(tmp_path / "s.ini"),
        "HISTOGUARD_LOG_DIR": str(tmp_path / "logs"),
    }
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]", "heavy modules must load lazily or on a worker"


def test_the_app_does_not_print():
    assert not print_calls(sorted(APP.rglob("*.py")))
