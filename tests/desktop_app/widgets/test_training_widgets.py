"""The Train page's widgets: the training curves (catastrophic overfitting marked, written not colour alone) and
the stage list (engine stage names mapped to rows, stages that only move forward, a skipped Model C)."""

from __future__ import annotations

import json

import pytest

from desktop_app.widgets.stage_list import StageList, stage_key
from desktop_app.widgets.training_curves import TrainingCurves
from engine.core.progress import Progress


def _row(epoch: int, overfit: bool = False, pgd: float = 0.6) -> dict:
    return {
        "epoch": epoch,
        "train_loss": 0.5,
        "train_acc": 0.8,
        "val_loss": 0.6,
        "val_acc": 0.75,
        "val_pgd_acc": pgd,
        "val_pgd_balanced_accuracy": pgd,
        "val_fgsm_acc": 0.5,
        "catastrophic_overfitting": overfit,
    }


def test_catastrophic_overfitting_is_marked_on_the_curves(qtbot):
    curves = TrainingCurves(vertical=True)
    qtbot.addWidget(curves)
    curves.show()
    curves.add_epoch("C", _row(1))
    assert curves.overfitting_epochs("C") == [] and curves.warning.isHidden()
    curves.add_epoch("C", _row(2, overfit=True, pgd=0.04))
    curves.add_epoch("C", _row(2, overfit=True, pgd=0.04))  # a repeated epoch adds no second marker
    assert curves.overfitting_epochs("C") == [2]
    lines = curves.marker_lines("C", 2)
    assert [line.value() for line in lines] == [2, 2]
    assert lines[0] in curves.loss_plot.getPlotItem().items and lines[1] in curves.acc_plot.getPlotItem().items
    assert "overfitting (C, epoch 2)" in lines[1].label.toPlainText()  # written, not colour alone
    assert curves.warning.isVisible() and "epoch 2: catastrophic overfitting" in curves.warning.text()
    assert "fell to 0.04" in curves.warning.text()
    assert curves.series("C", "val_pgd_acc") == ([1.0, 2.0], [0.6, 0.04])
    curves.clear()
    assert curves.overfitting_epochs("C") == [] and curves.warning.isHidden()
    assert lines[0] not in curves.loss_plot.getPlotItem().items
    # a finished run's report marks it too; A and B rows have no flag
    curves.set_training({"A": {"history": [_row(1)]}, "C": {"history": [_row(1), _row(2), _row(3, overfit=True)]}})
    assert curves.overfitting_epochs("C") == [3] and curves.overfitting_epochs("A") == []
    assert curves.epoch_points("B") == 0 and curves.epoch_points("C") == 3


@pytest.mark.parametrize(
    ("stage", "key"),
    [
        ("decode", "prepare"),
        ("train Model C", "train_c"),
        ("FGSM from A (train)", "fgsm"),
        ("evaluate B (FGSM 8/255 from A)", "evaluate"),
        ("robustness: pgd on C at 8/255", "robustness"),
        ("robustness: jpeg", "robustness"),
        ("minimal eps of Model B", "robustness"),
        ("export ONNX", "export"),
        ("square attack eps 8/255", "blackbox"),
        ("black-box stress", "blackbox"),
        ("done", None),
    ],
)
def test_engine_stage_names_map_to_rows(stage, key):
    assert stage_key(stage) == key


def test_stages_move_forward_past_a_skipped_model_c(qtbot, tiny_run):
    from engine.core.config import ExperimentConfig

    cfg = ExperimentConfig.from_dict(json.loads((tiny_run / "config.json").read_text()) | {"defence": "none"})
    stages = StageList()
    qtbot.addWidget(stages)
    stages.reset(cfg)
    for stage in ("decode", "train Model A", "FGSM from A (val)", "train Model B", "evaluate A clean"):
        stages.on_progress(Progress(stage, 1, 2, unit="images"))
    stages.on_progress(Progress("train Model B", 2, 2, unit="epochs"))  # late: ignored
    assert stages.status("train_b") == "done" and stages.status("train_c") == "skipped"
    assert stages.current() == "evaluate"
    stages.on_progress(Progress("square attack eps 8/255", 3, 5, unit="queries"))
    assert stages.detail("blackbox") == "Model A: square attack eps 8/255, 3 of 5 queries"
    stages.on_progress(Progress("black-box stress", 1, 1, unit="eps"))
    stages.on_progress(Progress("square attack eps 8/255", 1, 5, unit="queries"))
    assert stages.detail("blackbox").startswith("Model B:")
    assert stages.status("robustness") == "done" and stages.status("train_c") == "skipped"
    stages.set_all("done")
    assert stages.status("train_c") == "skipped" and stages.status("blackbox") == "done"
