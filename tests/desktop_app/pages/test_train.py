"""The Train page: a tiny study run (A, B, C, robustness, black-box) through the UI, a run without Model C,
cancel and resume, a responsive UI while training, a finished run's curves (old runs with A and B only too),
catastrophic overfitting marked on the curves, and bad run folders reaching the one error dialog."""

from __future__ import annotations

import json
import threading
import time

import pytest
from PySide6.QtCore import QTimer

from desktop_app.widgets.stage_list import KEYS
from desktop_app.widgets.train_form import ARCHITECTURES
from engine.core.progress import Progress
from tests.desktop_app.conftest import wait_for_tasks
from tests.desktop_app.widgets.test_training_widgets import _row

ALL_STAGES = ["done"] * len(KEYS)


def _open_tiny_demo(qtbot, window, tiny_demo):
    window.controller.open_dataset(tiny_demo)
    wait_for_tasks(qtbot, window)
    assert window.ctx.state.dataset is not None
    window.show_page("Train")
    return window.page("TrainPage")


def _set_tiny(page, out, epochs: int = 2, batch: int = 16) -> None:
    """small_cnn at 32 px, and a cheap robustness evaluation (2 PGD steps, min. eps up to 2/255, black-box
    on 4 images with 5 queries)."""
    form, robust = page.form, page.form.robust
    form.arch.setCurrentIndex(form.arch.findData("small_cnn"))
    form.image_size.setValue(32)
    form.epochs.setValue(epochs)
    form.batch_size.setValue(batch)
    form.weights.setCurrentIndex(form.weights.findData("none"))
    form.device.setCurrentIndex(form.device.findData("cpu"))
    robust.pgd_steps.setValue(2)
    robust.min_eps_max.setValue(2)
    robust.bb_images.setValue(4)
    robust.bb_queries.setValue(5)
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
    assert page.form.defence.currentData() == "fgsm-rs"  # Model C is trained by default
    assert page.stages.status("train_c") == "waiting" and page.stages.status("blackbox") == "waiting"
    assert page.start_button.text() == "Start training"
    page.start_button.click()
    assert not page.start_button.isEnabled() and not page.form.isEnabled()
    wait_for_tasks(qtbot, window, 180_000)
    assert window.ctx.errors.history == []
    for model in ("A", "B", "C"):
        x, y = page.curves.series(model, "val_acc")
        assert x == [1.0, 2.0] and all(0 <= v <= 1 for v in y)
        assert len(page.curves.series(model, "train_loss")[1]) == 2
    x, y = page.curves.series("C", "val_pgd_acc")
    assert x == [1.0, 2.0] and all(0 <= v <= 1 for v in y)
    assert "Model C (adversarial training)" in page.curves.legend_texts()
    assert [page.stages.status(k) for k in KEYS] == ALL_STAGES
    assert "✓ done" in page.stages.item(KEYS.index("export"), 1).text()
    assert "PGD val. bal. acc." in page.stages.detail("train_c")
    assert "minimal eps of Model A, B, C" in page.stages.detail("robustness")
    assert "Square at 8/255 on Model A, B, C, 5 queries" == page.stages.detail("blackbox")
    assert any("epoch" in line for line in page.log_view.lines())
    report = json.loads((out / "report.json").read_text())
    assert (out / "model_c" / "best.pt").is_file() and (out / "model_c.onnx").is_file()
    assert report["config"]["pgd_steps"] == 2 and report["config"]["blackbox_queries"] == 5
    assert report["robustness"]["min_eps"]["C"]["max_k"] == 2
    assert window.ctx.state.run is not None and window.ctx.state.run.path == out and window.ctx.state.run.finished
    assert page.progress.stage.text() == "Done"
    assert page.folder.path() != out and page.folder.state == "new"  # the next run goes to a new folder
    assert page.start_button.isEnabled()


def test_defence_none_trains_no_model_c_and_shows_the_stage_skipped(qtbot, window, tiny_demo, tmp_path):
    page = _open_tiny_demo(qtbot, window, tiny_demo)
    out = tmp_path / "run"
    _set_tiny(page, out)
    page.form.defence.setCurrentIndex(page.form.defence.findData("none"))
    page.form.robust.min_eps_on.setChecked(False)
    page.form.robust.bb_images.setValue(0)
    assert page.form.robust.bb_images.text() == "off" and not page.form.robust.bb_queries.isEnabled()
    assert page.stages.status("train_c") == "skipped" and page.stages.status("blackbox") == "skipped"
    assert "'none'" in page.stages.detail("train_c")
    cfg = page.build_config()
    assert cfg.defence == "none" and cfg.min_eps_max == 0 and cfg.blackbox_images == 0
    page.start_button.click()
    wait_for_tasks(qtbot, window, 180_000)
    assert window.ctx.errors.history == []
    report = json.loads((out / "report.json").read_text())
    assert "C" not in report["training"] and not (out / "model_c").exists() and not (out / "model_c.onnx").exists()
    assert report["robustness"]["min_eps"] == {}
    statuses = {k: page.stages.status(k) for k in KEYS}
    assert statuses.pop("train_c") == "skipped" and statuses.pop("blackbox") == "skipped"
    assert set(statuses.values()) == {"done"}
    assert "– skipped" in page.stages.item(KEYS.index("train_c"), 1).text()
    assert page.curves.epoch_points("A") == 2 and page.curves.epoch_points("C") == 0
    assert not any("Model C" in text for text in page.curves.legend_texts())


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
    assert [page.stages.status(k) for k in KEYS] == ALL_STAGES
    assert all(page.curves.epoch_points(m) >= 1 for m in ("A", "B", "C"))


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
    for model in ("A", "B", "C"):
        assert page.curves.epoch_points(model) == 2
        x, y = page.curves.series(model, "train_acc")
        assert x == [1.0, 2.0] and len(y) == 2
    assert len(page.curves.series("C", "val_pgd_acc")[1]) == 2
    assert str(tiny_run) in page.curves.caption.text()
    assert page.form.arch.currentData() == "small_cnn" and page.form.image_size.value() == 32
    saved = json.loads((tiny_run / "config.json").read_text())
    assert page.form.defence.currentData() == saved["defence"]
    assert page.form.robust.values()["pgd_steps"] == saved["pgd_steps"]
    assert page.form.robust.bb_queries.value() == saved["blackbox_queries"]
    assert [page.stages.status(k) for k in KEYS] == ALL_STAGES
    assert page.folder.path() != tiny_run  # Start would not overwrite the finished run


def test_a_run_from_before_model_c_shows_a_and_b_only(qtbot, window, tiny_run, tmp_path):
    """Runs made before issue 4 have no Model C, no robustness section and no defence in config.json."""
    old = tmp_path / "old-run"
    old.mkdir()
    config = json.loads((tiny_run / "config.json").read_text())
    for key in ("defence", "robust_attacks", "pgd_steps", "pgd_restarts", "min_eps_max", "blackbox_images"):
        config.pop(key)
    (old / "config.json").write_text(json.dumps(config))
    report = json.loads((tiny_run / "report.json").read_text())
    report["training"].pop("C")
    report.pop("robustness")
    report["onnx"].pop("C")
    (old / "report.json").write_text(json.dumps(report))
    window.controller.open_run(old)
    wait_for_tasks(qtbot, window)
    page = window.page("TrainPage")
    assert window.ctx.errors.history == []
    assert page.curves.epoch_points("A") == 2 and page.curves.epoch_points("B") == 2
    assert page.curves.epoch_points("C") == 0 and page.curves.overfitting_epochs("C") == []
    assert page.curves.legend_texts()[:2] == ["Model A (clean)", "Model B (+ FGSM images)"]
    assert not any("Model C" in text for text in page.curves.legend_texts())
    assert page.stages.status("train_c") == "skipped" and page.stages.status("robustness") == "skipped"
    assert page.stages.status("blackbox") == "skipped" and page.stages.status("export") == "done"
    assert "before the robustness evaluation" in page.stages.detail("robustness")


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


def test_an_overfitting_epoch_while_training_warns_in_the_log_and_status_bar(qtbot, window):
    page = window.page("TrainPage")
    row = _row(4, overfit=True, pgd=0.1) | {"seconds": 1.0}
    page._on_progress(Progress("train Model C", 4, 10, unit="epochs", metrics=row))
    assert page.curves.overfitting_epochs("C") == [4]
    assert any("Model C, epoch 4: catastrophic overfitting" in line for line in page.log_view.lines())
    assert "catastrophic overfitting" in window.statusBar().currentMessage()
    page._on_progress(Progress("train Model C", 5, 10, unit="epochs", metrics=_row(5) | {"seconds": 1.0}))
    assert page.curves.overfitting_epochs("C") == [4] and page.curves.epoch_points("C") == 2


def test_input_scale_goes_into_the_train_config_and_unset_records_none(window):
    from engine.core.config import TrainConfig

    form = window.page("TrainPage").form
    assert form.input_mpp.text() == "not recorded" and form.train_config(TrainConfig()).input_mpp is None
    form.input_mpp.setValue(0.5)
    assert form.train_config(TrainConfig()).input_mpp == 0.5
    form.set_from(TrainConfig(input_mpp=2.0), 4 / 255)
    assert form.input_mpp.value() == 2.0
