"""Fixtures for the desktop app, driven offscreen with pytest-qt: a window with its own settings file,
a tiny synthetic dataset and a tiny finished run; no test may leave a worker thread running."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.cli import main as cli_main

TINY_TRAIN = ["--arch", "small_cnn", "--image-size", "32", "--epochs", "2", "--batch-size", "16", "--weights", "none"]


@pytest.fixture(autouse=True)
def _isolated_app_files(tmp_path, monkeypatch):
    """Settings and logs of the app under test go to a temporary folder, never the user's."""
    monkeypatch.setenv("HISTOGUARD_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("HISTOGUARD_LOG_DIR", str(tmp_path / "logs"))


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    """The main window at 1280x800; afterwards every task is cancelled and must end within 20 s."""
    from desktop_app.app import build_window, get_app

    get_app()
    gc.collect()  # earlier tests' closed windows are freed here, on the UI thread, not by a worker's collector
    win = build_window(settings)
    qtbot.addWidget(win, before_close_func=_end_tasks)
    win.resize(1280, 800)
    win.show()
    yield win
    win.ctx.tasks.cancel_all()
    assert win.ctx.tasks.wait(20_000), "a worker thread was still running 20 s after the test"
    assert win.ctx.tasks.pool.activeThreadCount() == 0
    for w in QApplication.topLevelWidgets():
        if isinstance(w, QMessageBox):
            w.close()


def _end_tasks(win) -> None:
    """Before pytest-qt closes the window: cancel every task and let its ending arrive, so that closing
    does not open the modal "still running, quit?" question that nobody answers (the test would hang)."""
    win.ctx.tasks.cancel_all()
    deadline = time.monotonic() + 20
    while win.ctx.tasks.busy and time.monotonic() < deadline:
        QApplication.processEvents()
        win.ctx.tasks.wait(50)


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    """A synthetic dataset of 4 patients per class, 6 images each."""
    root = tmp_path_factory.mktemp("gui-demo") / "data"
    assert cli_main(["demo-data", str(root), "--patients-per-class", "4", "--images-per-patient", "6"]) == 0
    return root


@pytest.fixture(scope="session")
def tiny_run(tiny_demo, tmp_path_factory) -> Path:
    """A finished run folder (models A and B, ONNX files, report) trained on ``tiny_demo`` in seconds."""
    out = tmp_path_factory.mktemp("gui-runs") / "run"
    assert cli_main(["experiment", "--data", str(tiny_demo), "--out", str(out), *TINY_TRAIN, "--device", "cpu"]) == 0
    return out


def wait_for_tasks(qtbot, window, timeout: int = 60_000) -> None:
    """Let the event loop run until no task is running (their signals are delivered queued)."""
    qtbot.waitUntil(lambda: not window.ctx.tasks.busy, timeout=timeout)
