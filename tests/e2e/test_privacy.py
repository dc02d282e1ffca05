"""Private by construction (issue 6): no image path, file name or patient id leaves the run folder except into
exports the user asked for.

The workflow runs once, in a fresh home with its own XDG and temp folders and the network blocked: a dataset of
BreakHis-named images of made-up patients (random ids, so nothing else on the machine can hold them, plus one
unreadable image), the CLI experiment and a predictions export, then the desktop app opening that dataset,
run and model through real Qt file dialogs, predicting images on the Diagnose page, exporting a CSV and
showing error dialogs that name a patient's image. Then every file written anywhere else (home, temp,
cache, config, state, settings) is read as bytes, and its name too, looking for those names and ids.
Controls: the same scan finds them in the run folder, and the places scanned were really written to.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.data.demo import generate_demo_dataset
from tests.e2e.test_offline import BLOCK_SOCKETS

FAST = ["--arch", "small_cnn", "--image-size", "16", "--epochs", "1", "--batch-size", "16", "--weights", "none",
        "--device", "cpu", "--blackbox-images", "2", "--blackbox-queries", "3", "--min-eps-max", "2"]  # fmt: skip

CLI_RUN = (
    BLOCK_SOCKETS
    + """
import sys
from engine.cli import main
data, run, exports, fast = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
assert main(["data", "--data", data]) == 0
assert main(["experiment", "--data", data, "--out", run, *fast]) == 0
assert main(["predict", "--model", run + "/model_a.onnx", data, "--out", exports + "/cli-predictions.csv"]) == 0
assert attempts == [], attempts
"""
)

APP_RUN = (
    BLOCK_SOCKETS
    + """
import json, sys, time
from pathlib import Path
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox
from desktop_app.app import build_window, get_app
from engine.core.errors import DecodeError

data, run, exports = map(Path, sys.argv[1:4])
app = get_app()
window = build_window()
window.ctx.errors.install_excepthook()
window.show()

def wait(condition, timeout_s=120.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        app.processEvents()
        time.sleep(0.01)

def idle():
    wait(lambda: not window.ctx.tasks.busy)

def answer(folder, names):
    # the next (real, Qt-drawn) file dialog: go to folder, select names, accept; as a user would
    def go():
        dialog = next((w for w in app.topLevelWidgets() if isinstance(w, QFileDialog) and w.isVisible()), None)
        if dialog is None:
            QTimer.singleShot(20, go)
            return
        dialog.setDirectory(str(folder))
        dialog.selectFile(" ".join(f'"{n}"' for n in names) if len(names) > 1 else names[0])
        dialog.accept()
    QTimer.singleShot(0, go)

answer(data.parent, [data.name]); window.open_dataset_dialog(); idle()
assert window.ctx.state.dataset is not None
answer(run.parent, [run.name]); window.open_run_dialog(); idle()
answer(run, ["model_a.onnx"]); window.open_onnx_dialog(); idle()
page = window.page("DiagnosePage")
files = sorted((data / "malignant").glob("*.png"))[:3] + [data / "malignant" / sys.argv[4]]
answer(files[0].parent, [f.name for f in files]); page.add_images_dialog()
answer(data, ["benign"]); page.add_folder_dialog()
wait(lambda: page.model_info is not None)
page.run_prediction(); idle()
page.table.selectRow(0); idle()
answer(exports, ["app-predictions.csv"]); page.export_csv_dialog(); idle()
window.controller.open_onnx(files[0])  # an error dialog that names a patient's image
try:
    raise DecodeError(f"{files[1]}: cannot decode")
except DecodeError as exc:  # an uncaught error reaching the excepthook
    sys.excepthook(type(exc), exc, exc.__traceback__)
for w in app.topLevelWidgets():
    if isinstance(w, QMessageBox):
        w.close()
result = {"rows": len(page.rows), "errors": len(window.ctx.errors.history), "attempts": len(attempts)}
window.close()
sys.stdout.write("RESULT " + json.dumps(result) + "\\n")
"""
)


def _private_dataset(root: Path, source: Path, token: str) -> tuple[Path, list[str]]:
    """The demo images renamed as images of made-up patients ``13-<random>``; returns the folder and the ids."""
    data, prefix = root / f"cohort-{token}", secrets.randbelow(900) + 100
    patients = set()
    for png in sorted(source.rglob("*.png")):
        m = re.search(r"-99-(\d+)", png.name)
        patient = f"13-{prefix}{m[1]}"
        patients.add(patient)
        target = data / png.parent.name / png.name.replace(m[0], f"-{patient}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(png, target)
    bad = f"SOB_M_DC-13-{prefix}9999-40-001.png"
    (data / "malignant" / bad).write_bytes(b"not a PNG \x00\x01" * 20)  # unreadable: named in skip reasons
    return data, [*sorted(patients), f"13-{prefix}9999"]


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """The demo workflow (CLI, then the app) in a fresh home; returns the folders and the secrets to look for."""
    base, token = tmp_path_factory.mktemp("privacy"), secrets.token_hex(5)
    source = generate_demo_dataset(tmp_path_factory.mktemp("demo"), patients_per_class=3, images_per_patient=4)
    data, patients = _private_dataset(base, source, token)
    folders = {name: base / name for name in ("home", "tmp", "xdg", "run", "exports")}
    for name in ("home", "tmp", "xdg", "exports"):
        folders[name].mkdir(mode=0o700)
    xdg = {f"XDG_{k}": str(folders["xdg"] / k.lower()) for k in ("CONFIG_HOME", "CACHE_HOME", "STATE_HOME",
                                                                 "DATA_HOME", "RUNTIME_DIR")}  # fmt: skip
    Path(xdg["XDG_RUNTIME_DIR"]).mkdir(mode=0o700)
    drop = ("ORT_DISABLE_TELEMETRY", "XDG_", "HISTOGUARD_")  # every HistoGuard folder at its default
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env |= {"HOME": str(folders["home"]), "TMPDIR": str(folders["tmp"]), "QT_QPA_PLATFORM": "offscreen", **xdg}
    paths = [str(data), str(folders["run"]), str(folders["exports"])]
    cli = subprocess.run([sys.executable, "-c", CLI_RUN, *paths, *FAST], **_child(env, folders))
    assert cli.returncode == 0, cli.stderr[-3000:]
    bad = next(p.name for p in (data / "malignant").glob("*9999-40-001.png"))
    app = subprocess.run([sys.executable, "-c", APP_RUN, *paths, bad], **_child(env, folders))
    assert app.returncode == 0, app.stderr[-3000:]
    result = json.loads(app.stdout.split("RESULT ", 1)[1])
    names = sorted(p.name for p in data.rglob("*.png"))
    return {"base": base, "data": data, **folders, "result": result, "secrets": [*patients, token, *names[:3]]}


def _child(env: dict, folders: dict) -> dict:
    return {"capture_output": True, "text": True, "env": env, "cwd": folders["home"], "timeout": 240}


def _leaks(root: Path, needles: list[str]) -> list[str]:
    """``path: needle`` for every file or folder under ``root`` whose name or bytes contain a needle."""
    found = []
    for path in sorted(root.rglob("*")):
        where = str(path.relative_to(root))
        found += [f"{where}: name has {n}" for n in needles if n in where]
        if path.is_file() and not path.is_symlink():
            content = path.read_bytes()
            found += [f"{where}: holds {n}" for n in needles if n.encode() in content]
    return found


def test_nothing_outside_the_run_data_and_export_folders_names_an_image_or_patient(workflow):
    w = workflow
    assert w["result"]["rows"] == 16 and w["result"]["attempts"] == 0  # 4 chosen + 12 benign, offline
    assert w["result"]["errors"] == 2  # both error dialogs were shown (and logged)
    written = {p.name for p in w["base"].iterdir()}
    assert written <= {"home", "tmp", "xdg", "run", "exports", w["data"].name}, written
    for name in ("home", "tmp", "xdg"):
        assert _leaks(w[name], w["secrets"]) == [], name


def test_the_scan_finds_them_where_they_belong(workflow):
    """Control: the run folder (split, log, report), the data and the user's exports do name them."""
    w = workflow
    run_leaks = _leaks(w["run"], w["secrets"])
    assert any(line.startswith("split.csv") for line in run_leaks)
    assert any(line.startswith("log.txt") for line in run_leaks)
    assert len(_leaks(w["data"], w["secrets"])) >= 24
    assert {line.split(":")[0] for line in _leaks(w["exports"], w["secrets"])} == {
        "cli-predictions.csv",
        "app-predictions.csv",
    }


def test_the_places_scanned_were_written_to(workflow):
    """Control: the app's log, its settings and the decoded-image cache exist where the scan looked, and the
    log had image paths to leave out."""
    xdg = workflow["xdg"]
    log = (xdg / "state_home" / "histoguard" / "histoguard.log").read_text()
    assert "<path>" in log and "Open ONNX model" in log and "cannot decode" in log
    settings = (xdg / "config_home" / "HistoGuard" / "HistoGuard.ini").read_text()
    assert "last_dir" in settings and str(workflow["exports"]) in settings  # export folders are kept
    cached = list((xdg / "cache_home" / "histoguard" / "decoded").glob("*"))
    assert {p.suffix for p in cached} == {".npy", ".json"}
    assert any("\\u0000path\\u0000" in p.read_text() for p in cached if p.suffix == ".json")  # a reason, nameless
    assert not list(workflow["base"].rglob("QtProject.conf"))


def test_qt_file_dialog_history_is_what_the_app_prevents(tmp_path):
    """Control: a plain Qt file dialog writes the folder it visited into ~/.config/QtProject.conf."""
    folder = tmp_path / "home" / "patient-13-777"
    folder.mkdir(parents=True)
    code = """if True:
        import sys
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication, QFileDialog
        app = QApplication([])
        accept = lambda: [w.accept() for w in app.topLevelWidgets() if isinstance(w, QFileDialog) and w.isVisible()]
        QTimer.singleShot(300, accept)
        if sys.argv[2] == "app":
            from desktop_app.app import get_app
            get_app()
        assert QFileDialog.getExistingDirectory(None, "folder", sys.argv[1]) == sys.argv[1]
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")} | {"HOME": str(tmp_path / "home")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    for mode in ("plain", "app"):
        proc = subprocess.run([sys.executable, "-c", code, str(folder), mode], env=env, capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr[-2000:]
        conf = tmp_path / "home" / ".config" / "QtProject.conf"
        if mode == "plain":
            assert "patient-13-777" in conf.read_text()
            conf.unlink()
        else:
            assert not conf.exists()


# --- the pieces, one at a time -------------------------------------------------------------------------------
def test_the_app_log_leaves_out_image_paths_that_the_run_log_keeps(tmp_path, monkeypatch):
    import logging

    from desktop_app.app import setup_logging
    from engine.runs.folder import RunFolder

    monkeypatch.setenv("HISTOGUARD_LOG_DIR", str(tmp_path / "logs"))
    run = RunFolder(tmp_path / "run")
    run.root.mkdir()
    (run.root / "config.json").write_text("{}")
    image = tmp_path / "Jane Doe" / "SOB_B_A-13-4242-40-001.png"
    log_file = setup_logging()
    try:
        with run.logging_to_file():
            log = logging.getLogger("engine.privacy_test")
            log.warning("skipped: %s: cannot decode (wrong extension)", image)
            log.warning("epoch 2/3 (90.5 img/s), eps 8/255, %d images in %s, also %s", 24, run.root, image.name)
            try:
                raise ValueError(f"bad file {image}")
            except ValueError:
                log.exception("failed")
    finally:
        for handler in [h for h in logging.getLogger().handlers if getattr(h, "_histoguard", False)]:
            logging.getLogger().removeHandler(handler)
            handler.close()
    app_log, run_log = log_file.read_text(), run.path("log.txt").read_text()
    assert "13-4242" in run_log and "Jane" in run_log  # the run folder's own log keeps everything
    assert "13-4242" not in app_log and "Jane" not in app_log and str(tmp_path) + "/Jane" not in app_log
    assert "skipped: <path>: cannot decode (wrong extension)" in app_log
    assert f"epoch 2/3 (90.5 img/s), eps 8/255, 24 images in {run.root}, also <image>" in app_log
    assert "test_privacy.py" in app_log and "ValueError: bad file <path>" in app_log  # tracebacks keep code


def test_the_decoded_cache_can_be_turned_off(tmp_path, monkeypatch):
    from PIL import Image

    from engine.data.cache import decode_dataset, default_cache_dir
    from engine.data.discover import discover

    for i, label in enumerate(["benign", "benign", "malignant", "malignant"]):
        (tmp_path / "data" / label).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (12, 10), (40 * i, 90, 160)).save(tmp_path / "data" / label / f"img{i}.png")
    dataset = discover(tmp_path / "data")
    monkeypatch.delenv("HISTOGUARD_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HISTOGUARD_CACHE_DIR", "off")
    assert default_cache_dir() is None
    assert decode_dataset(dataset, 8, workers=1).images.shape == (4, 8, 8, 3)
    assert not (tmp_path / "cache").exists()
    monkeypatch.delenv("HISTOGUARD_CACHE_DIR")  # control: the default writes it under XDG_CACHE_HOME
    assert decode_dataset(dataset, 8, workers=1).images.shape == (4, 8, 8, 3)
    assert len(list((tmp_path / "cache" / "histoguard" / "decoded").glob("*.npy"))) == 1


def test_folders_of_images_are_remembered_for_this_session_only(tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    from desktop_app.settings import last_dir, make_settings, remember_dir

    images, runs = tmp_path / "patient-13-4242", tmp_path / "runs"
    images.mkdir()
    runs.mkdir()
    file = tmp_path / "settings.ini"
    old = QSettings(str(file), QSettings.Format.IniFormat)
    old.setValue("last_dir/dataset", str(images))  # as an older version wrote it
    old.sync()
    monkeypatch.setenv("HISTOGUARD_SETTINGS", str(file))
    settings = make_settings()
    assert last_dir(settings, "dataset") == str(Path.home())
    for key in ("dataset", "diagnose", "stress"):
        remember_dir(settings, key, images)
        assert last_dir(settings, key) == str(images)
    remember_dir(settings, "run", runs)
    settings.sync()
    assert "patient-13-4242" not in file.read_text() and str(runs) in file.read_text()
    fresh = QSettings(str(file), QSettings.Format.IniFormat)
    assert last_dir(fresh, "dataset") == str(Path.home()) and last_dir(fresh, "run") == str(runs)
