"""The Train page: a tiny study run through the UI, cancel and resume, a responsive UI while training,
a finished run's curves, and bad run folders reaching the one error dialog."""

from __future__ import annotations

import json
import threading
import time

import pytest
from PySide6.QtCore import QTimer

from desktop_app.widgets.stage_list import KEYS
from desktop_app.widgets.train_form import ARCHITECTURES
from tests.desktop_app.conftest import wait_for_tasks


def _open_tiny_demo(qtbot, window, tiny_demo):
    window.controller.open_dataset(tiny_demo)
    wait_for_tasks(qtbot, window)
    assert window.ctx.state.dataset is not None
    window.show_page("Train")
    return window.page("TrainPage")


def _set_tiny(page, out, epochs: int = 2, batch: int = 16) -> None:
    form = page.form
    form.arch.setCurrentIndex(form.arch.findData("small_cnn"))
    form.image_size.setValue(32)
    form.epochs.setValue(epochs)
    form.batch_size.setValue(batch)
    form.weights.setCurrentIndex(form.weights.findData("none"))
    form.device.setCurrentIndex(form.device.findData("cpu"))
    page.folder.edit.setText(str(out))


def test_architectures_match_the_engine_registry():
    from engine import api

    assert sorted(name for name, *_ in ARCHITECTURES) == api.list_models()


def test_start_needs_a_dataset_and_synthetic_data_gets_the_demo_defaults(qtbot, window, tiny_demo):
    page = window.page("TrainPage")
    assert not page.start_button.isEnabled()
    assert "Open a dataset first" in page.start_hint.text()
    page = _open_tiny_demo(qtbot, window, tiny_demo)
    assert page.start_button.isEnabled() and page.start_hint.text() == ""
    assert page.form.arch.currentData() == "densenet121" and page.form.image_size.value() == 64  # DEMO_TRAIN
    assert page.form.eps_k.value() == 8 and "eps = 8/255" in page.form.eps_text.text()
    assert page.form.epochs.minimum() == 1 and page.form.batch_size.minimum() == 2  # 0 epochs cannot be typed
    assert "SYNTHETIC" in page.dataset_label.text() and "malignant" in page.dataset_label.text()


def test_tiny_training_runs_to_the_end_through_the_ui(qtbot, window, tiny_demo, tmp_path):
    page = _open_tiny_demo(qtbot, window, tiny_demo)
    out = tmp_path / "run"
    _set_tiny(page, out)
    assert page.start_button.text() == "Start training"
    page.start_button.click()
    assert not page.start_button.isEnabled() and not page.form.isEnabled()
    wait_for_tasks(qtbot, window, 120_000)
    assert window.ctx.errors.history == []
    for model in ("A", "B"):
        x, y = page.curves.series(model, "val_acc")
        assert x == [1.0, 2.0] and all(0 <= v <= 1 for v in y)
        assert len(page.curves.series(model, "train_loss")[1]) == 2
    assert [page.stages.status(k) for k in KEYS] == ["done"] * len(KEYS)
    assert "✓ done" in page.stages.item(KEYS.index("export"), 1).text()
    assert any("epoch" in line for line in page.log_view.lines())
    assert (out / "report.json").is_file()
    assert window.ctx.state.run is not None and window.ctx.state.run.path == out and window.ctx.state.run.finished
    assert page.progress.stage.text() == "Done"
    assert page.folder.path() != out and page.folder.state == "new"  # the next run goes to a new folder
    assert page.start_button.isEnabled()


def _hold_after_first_batch_of_a(monkeypatch) -> threading.Event:
    """Make the worker wait after Model A's first batch until the user has pressed Cancel, so the cancel
    lands inside an epoch whatever the machine's speed (the engine itself is not changed)."""
    import desktop_app.pages.train as train_page

    real, held = train_page.run_training, threading.Event()

    def gated(*args, on_progress, cancel, **kwargs):
        def progress(p):
            on_progress(p)
            if p.stage == "train Model A" and p.unit == "batches" and not held.is_set():
                held.set()
                deadline = time.monotonic() + 30
                while not cancel.cancelled and time.monotonic() < deadline:
                    time.sleep(0.01)

        return real(*args, on_progress=progress, cancel=cancel, **kwargs)

    monkeypatch.setattr(train_page, "run_training", gated)
    return held


def test_cancel_stops_within_one_batch_and_resume_completes_the_run(qtbot, window, tiny_demo, tmp_path, monkeypatch):
    from engine.models.checkpoint import read_checkpoint

    held = _hold_after_first_batch_of_a(monkeypatch)
    page = _open_tiny_demo(qtbot, window, tiny_demo)
    out = tmp_path / "run"
    _set_tiny(page, out, epochs=6, batch=4)
    page.start_button.click()
    qtbot.waitUntil(lambda: held.is_set() and page.stages.status("train_a") == "running", timeout=60_000)
    page.progress.cancel_button.click()
    assert page.progress.cancel_button.text() == "Cancelling…"
    wait_for_tasks(qtbot, window, 60_000)
    assert page.progress.stage.text() == "Cancelled"
    assert page.stages.status("train_a") == "cancelled" and page.stages.status("train_b") == "waiting"
    assert "■ cancelled" in page.stages.item(1, 1).text()
    assert "Resume" in page.eta_label.text()
    assert window.ctx.errors.history == []
    last = read_checkpoint(out / "model_a" / "last.pt")
    assert last["partial"]["epoch"] == 1 and last["partial"]["batches_done"] == 1  # stopped within one batch
    assert not (out / "report.json").exists()
    assert page.folder.state == "resumable" and page.folder.resume_box.isVisible()
    assert page.start_button.text() == "Resume training"
    # later, the interrupted run is opened from disk with its own dataset settings (as the CLI writes them)
    saved = json.loads((out / "config.json").read_text())
    saved["data"]["positive_class"] = "malignant"
    (out / "config.json").write_text(json.dumps(saved))
    page.folder.new_folder()
    assert window.controller.open_run(out) is not None
    assert page.folder.path() == out and page.folder.state == "resumable"
    assert "not finished" in page.curves.caption.text()
    page.start_button.click()
    wait_for_tasks(qtbot, window, 180_000)
    assert window.ctx.errors.history == []
    assert (out / "report.json").is_file() and window.ctx.state.run.path == out
    assert any("resuming epoch 1 after batch 1" in line for line in page.log_view.lines())
    assert [page.stages.status(k) for k in KEYS] == ["done"] * len(KEYS)
    assert page.curves.epoch_points("A") >= 1 and page.curves.epoch_points("B") >= 1


def test_ui_thread_keeps_ticking_while_training(qtbot, window, tiny_demo, tmp_path):
    page = _open_tiny_demo(qtbot, window, tiny_demo)
    _set_tiny(page, tmp_path / "run", epochs=20, batch=4)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))  # a test probe, not a task signal
    page.start_button.click()
    timer.start()
    qtbot.waitUntil(lambda: len(ticks) >= 60 or not page.running, timeout=120_000)
    timer.stop()
    trained = page.curves.epoch_points("A")
    page.progress.cancel_button.click()
    wait_for_tasks(qtbot, window, 60_000)
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert trained >= 1, "no epoch finished while the timer ran"
    assert len(ticks) >= 30, f"only {len(ticks)} ticks: training ended too soon to observe the UI"
    assert max(gaps) < 1.0, f"the UI thread stalled for {max(gaps):.2f} s while the worker trained"


def test_opening_a_finished_run_shows_its_curves(qtbot, window, tiny_run):
    window.controller.open_run(tiny_run)
    wait_for_tasks(qtbot, window)
    page = window.page("TrainPage")
    for model in ("A", "B"):
        assert page.curves.epoch_points(model) == 2
        x, y = page.curves.series(model, "train_acc")
        assert x == [1.0, 2.0] and len(y) == 2
    assert str(tiny_run) in page.curves.caption.text()
    assert page.form.arch.currentData() == "small_cnn" and page.form.image_size.value() == 32
    assert [page.stages.status(k) for k in KEYS] == ["done"] * len(KEYS)
    assert page.folder.path() != tiny_run  # Start would not overwrite the finished run


def test_a_page_created_after_the_run_was_opened_shows_it(qtbot, window, tiny_run):
    from desktop_app.pages.train import TrainPage

    window.controller.open_run(tiny_run)
    wait_for_tasks(qtbot, window)
    late = TrainPage(window.ctx)
    qtbot.addWidget(late)
    assert late.curves.epoch_points("A") == 2 and late.curves.epoch_points("B") == 2


@pytest.mark.parametrize("case", ["file", "other run", "finished run", "not a run folder"])
def test_bad_run_folders_reach_the_error_dialog(qtbot, window, tiny_demo, tiny_run, tmp_path, case):
    page = _open_tiny_demo(qtbot, window, tiny_demo)
    _set_tiny(page, tmp_path / "run")
    if case == "file":
        target = tmp_path / "a-file.txt"
        target.write_text("x")
        expected = "is a file"
    elif case == "other run":
        target = tiny_run  # trained with other settings (e.g. eps 4/255, not the demo's 8/255)
        expected = "with other settings"
    elif case == "finished run":
        target = tmp_path / "finished"
        target.mkdir()
        (target / "config.json").write_text(json.dumps(page.build_config().to_dict()))
        (target / "report.json").write_text("{}")
        expected = "already holds a finished run"
    else:
        target = tmp_path / "stuff"
        target.mkdir()
        (target / "notes.txt").write_text("x")
        expected = "not a HistoGuard run folder"
    page.folder.edit.setText(str(target))
    page.start_button.click()
    assert not window.ctx.tasks.busy
    title, message = window.ctx.errors.history[-1]
    assert title == "Train" and expected in message and str(target) in message
    if case != "file":
        assert (target / "notes.txt").exists() or (target / "report.json").is_file()  # nothing deleted


def test_a_missing_weights_file_is_a_config_error(qtbot, window, tiny_demo, tmp_path):
    page = _open_tiny_demo(qtbot, window, tiny_demo)
    _set_tiny(page, tmp_path / "run")
    page.form.weights.setCurrentIndex(page.form.weights.findData("file"))
    assert page.form.weights_file.isVisible()
    page.start_button.click()
    assert "no weights file chosen" in window.ctx.errors.history[-1][1]
    assert not window.ctx.tasks.busy and not (tmp_path / "run").exists()
