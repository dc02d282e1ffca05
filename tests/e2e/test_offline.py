"""Offline and private by construction: the whole study and the desktop app run with the network blocked,
and onnxruntime leaves no telemetry files in a fresh home folder (issue 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engine.cli import main as cli_main

BLOCK_SOCKETS = """
import socket
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args[:2])
    raise OSError("network access is blocked in this test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
"""

BLOCKED_RUN = (
    BLOCK_SOCKETS
    + """
import sys
from engine.cli import main
root, out = sys.argv[1], sys.argv[2]
fast = ["--arch", "small_cnn", "--image-size", "32", "--epochs", "1", "--batch-size", "16", "--weights", "auto",
        "--device", "cpu", "--blackbox-images", "4", "--blackbox-queries", "5", "--min-eps-max", "4"]
assert main(["demo-data", root, "--patients-per-class", "3", "--images-per-patient", "6"]) == 0
assert main(["experiment", "--data", root, "--out", out, *fast]) == 0
assert main(["predict", "--model", out + "/model_a.onnx", root, "--out", out + "/preds.csv"]) == 0
sys.stdout.write(f"attempts={len(attempts)}\\n")
"""
)


def _fresh_env(tmp_path: Path) -> dict:
    """A fresh home and temp folder; no XDG folder, HistoGuard setting or telemetry switch of ours."""
    home, tmp, runtime = tmp_path / "home", tmp_path / "tmp", tmp_path / "runtime"
    for folder in (home, tmp, runtime):
        folder.mkdir(mode=0o700)
    drop = ("ORT_DISABLE_TELEMETRY", "XDG_", "HISTOGUARD_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return env | {
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "XDG_RUNTIME_DIR": str(runtime),
        "HISTOGUARD_CACHE_DIR": str(tmp_path / "cache"),
        "QT_QPA_PLATFORM": "offscreen",
    }


def _telemetry_files(tmp_path: Path) -> list[Path]:
    found = list((tmp_path / "home").rglob("*"))
    found += [p for p in (tmp_path / "tmp").rglob("*") if p.name.startswith(".ses")]
    return [p for p in found if "onnxruntime" in str(p).lower() or "Microsoft" in str(p) or p.name.startswith(".ses")]


def test_the_study_runs_with_the_network_blocked_and_writes_no_telemetry(tmp_path):
    env = _fresh_env(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUN, str(tmp_path / "data"), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "attempts=0" in proc.stdout  # nothing even tried to connect
    assert (tmp_path / "run" / "report.json").exists() and (tmp_path / "run" / "preds.csv").exists()
    assert _telemetry_files(tmp_path) == []


def test_plain_onnxruntime_import_is_what_the_setting_prevents(tmp_path):
    """Control: show what onnxruntime does on import without HistoGuard's setting (when this version does)."""
    env = _fresh_env(tmp_path)
    code = "import onnxruntime, sys; sys.stdout.write(onnxruntime.__version__)"
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert plain.returncode == 0
    written = _telemetry_files(tmp_path)
    ours = tmp_path / "ours"
    ours.mkdir()
    env = _fresh_env(ours)
    code = "import engine, onnxruntime"
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=120).returncode == 0
    assert _telemetry_files(ours) == []
    if not written:  # this onnxruntime writes nothing either way: the check above still holds
        return
    assert any(p.is_file() for p in written)


APP_RUN = (
    BLOCK_SOCKETS
    + """
import json, os, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

class WatchOnnxruntime:
    # ORT_DISABLE_TELEMETRY as it was when onnxruntime was first imported, by whichever module
    seen = []
    def find_spec(self, name, path=None, target=None):
        if name == "onnxruntime" and not self.seen:
            self.seen.append(os.environ.get("ORT_DISABLE_TELEMETRY"))
        return None
sys.meta_path.insert(0, WatchOnnxruntime())

model, images = sys.argv[1], sys.argv[2]
app = QApplication(sys.argv[:1])  # the launcher's get_app() reuses it; the driver's timer needs it now
result = {}

def steps():
    from desktop_app.main_window import MainWindow
    while not [w for w in app.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]:
        yield
    window = next(w for w in app.topLevelWidgets() if isinstance(w, MainWindow))
    window.controller.open_onnx(model)  # what File > Open ONNX model does
    window.show_page("DiagnosePage")
    page = window.page("DiagnosePage")
    page.add_inputs([images])
    while page.model_info is None and not window.ctx.errors.history:
        yield
    page.run_prediction()
    while window.ctx.tasks.busy:
        yield
    result.update(rows=len(page.rows), predicted=sum(bool(r.get("predicted")) for r in page.rows))
    result.update(errors=window.ctx.errors.history)
    window.close()

driver, timer = steps(), QTimer()
timer.timeout.connect(lambda: next(driver, StopIteration) is StopIteration and timer.stop())
timer.start(20)
from desktop_app.launcher import main
result["rc"] = main(["gui"])
result["attempts"] = len(attempts)
result["ort_env"] = WatchOnnxruntime.seen
try:  # control: the trap does see a connection attempt
    socket.create_connection(("127.0.0.1", 9))
except OSError:
    pass
result["control_attempts"] = len(attempts) - result["attempts"]
sys.stdout.write("RESULT " + json.dumps(result) + "\\n")
"""
)


def test_the_app_runs_with_the_network_blocked_and_writes_no_telemetry(tmp_path):
    """`histoguard gui` in a fresh home: open an exported ONNX model, predict images on the Diagnose page."""
    data, out = tmp_path / "data", tmp_path / "model"
    assert cli_main(["demo-data", str(data), "--patients-per-class", "3", "--images-per-patient", "2"]) == 0
    tiny = ["--arch", "small_cnn", "--image-size", "16", "--epochs", "1", "--weights", "none", "--device", "cpu"]
    assert cli_main(["train", "--data", str(data), "--out", str(out), *tiny]) == 0
    assert cli_main(["export", "--model", str(out / "best.pt"), "--out", str(tmp_path / "model.onnx")]) == 0
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    env = _fresh_env(app_dir) | {"HISTOGUARD_SETTINGS": str(app_dir / "settings.ini")}
    proc = subprocess.run(
        [sys.executable, "-c", APP_RUN, str(tmp_path / "model.onnx"), str(data / "benign")],
        capture_output=True,
        text=True,
        env=env,
        cwd=app_dir / "home",
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert result["rc"] == 0 and result["errors"] == []
    assert result["rows"] == 6 and result["predicted"] == 6  # the app really ran onnxruntime
    assert result["ort_env"] == ["1"]  # onnxruntime was imported, with telemetry already switched off
    assert result["attempts"] == 0 and result["control_attempts"] == 1
    assert (app_dir / "home" / ".local" / "state" / "histoguard" / "histoguard.log").is_file()  # the app wrote here
    assert _telemetry_files(app_dir) == []
