"""The main window: pages, status bar, settings, opening data and runs, the one error path."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QMessageBox

from engine.data.demo import IMAGES_PER_PATIENT, PATIENTS_PER_CLASS
from tests.desktop_app.conftest import wait_for_tasks


def test_window_has_every_page_and_a_file_menu(window):
    titles = [window.sidebar.item(i).text() for i in range(window.sidebar.count())]
    assert titles == ["Start", "Data", "Train", "Stress test", "Results", "Diagnose", "Slides", "Cohort"]
    actions = [a.text().replace("&", "") for a in window.file_menu.actions() if a.text()]
    assert actions == ["Open dataset folder…", "Open run folder…", "Open ONNX model…", "Export report…", "Quit"]
    window.show_page("Results")
    assert window.stack.currentWidget() is window.page("ResultsPage")


def test_status_bar_shows_the_device_after_detection(qtbot, window):
    window.controller.detect_device()
    qtbot.waitUntil(lambda: "detecting" not in window.device_label.text(), timeout=30_000)
    assert window.device_label.text().startswith(("Device: CPU", "Device: CUDA"))


def test_demo_opens_and_is_marked_synthetic(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setenv("HISTOGUARD_DATA_DIR", str(tmp_path / "user-data"))
    start = window.page("StartPage")
    assert "synthetic" in start.notice.text()
    start.demo_button.click()
    wait_for_tasks(qtbot, window, 120_000)
    ds = window.ctx.state.dataset
    assert ds is not None and ds.synthetic and len(ds.records) == PATIENTS_PER_CLASS * 2 * IMAGES_PER_PATIENT
    assert (tmp_path / "user-data" / "demo-synthetic").is_dir()
    assert window.stack.currentWidget() is window.page("DataPage")


def test_open_run_shows_it_in_the_status_bar(window, tiny_run):
    assert window.controller.open_run(tiny_run) is not None
    assert str(tiny_run) in window.run_label.text() and "finished" in window.run_label.text()
    assert set(window.ctx.state.run.checkpoints) == set(window.ctx.state.run.onnx) == {"A", "B", "C"}
    assert window.ctx.state.onnx_path == tiny_run / "model_b.onnx"


def test_bad_run_folder_reaches_the_user_in_one_dialog(qtbot, window, tmp_path):
    assert window.controller.open_run(tmp_path) is None
    boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    assert len(boxes) == 1
    assert "not a HistoGuard run folder" in boxes[0].text() and str(tmp_path) in boxes[0].text()
    assert window.ctx.errors.history[-1][0] == "Open run folder"


def test_bad_dataset_error_comes_from_the_worker_to_the_dialog(qtbot, window, tmp_path):
    (tmp_path / "empty").mkdir()
    window.controller.open_dataset(tmp_path / "empty")
    wait_for_tasks(qtbot, window)
    qtbot.waitUntil(lambda: bool(window.ctx.errors.history))
    title, message = window.ctx.errors.history[-1]
    assert title == "Open dataset" and "has no images" in message and "class folders" in message
    assert window.ctx.state.dataset is None


def test_window_size_and_last_folder_are_remembered(qtbot, settings, tiny_run):
    from desktop_app.app import build_window

    first = build_window(settings)
    qtbot.addWidget(first)
    first.show()
    first.resize(1100, 720)
    first.controller.open_run(tiny_run)
    qtbot.waitUntil(lambda: not first.ctx.tasks.busy, timeout=60_000)  # it also opens the run's dataset
    first.close()
    second = build_window(settings)
    qtbot.addWidget(second)
    assert (second.width(), second.height()) == (1100, 720)
    assert settings.value("last_dir/run") == str(tiny_run.parent)
