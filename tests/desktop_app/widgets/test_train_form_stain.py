"""The Train page's form: stain normalisation (none / Macenko / Reinhard) and HED jitter, shown from a config and
read back into the TrainConfig the engine trains with; and the same options on the command line."""

from __future__ import annotations

import pytest

from desktop_app.widgets.train_form import TrainForm
from engine.core.config import TrainConfig


def test_the_form_shows_and_returns_stain_normalisation_and_hed_jitter(qtbot):
    form = TrainForm()
    qtbot.addWidget(form)
    assert [form.stain_norm.itemText(i) for i in range(form.stain_norm.count())] == ["none", "Macenko", "Reinhard"]
    assert form.stain_norm.currentData() == "none" and form.hed_scale.value() == 0 == form.hed_shift.value()
    form.set_from(TrainConfig(stain_norm="reinhard", hed_scale=0.2, hed_shift=0.05), 4 / 255)
    cfg = form.train_config(TrainConfig())
    assert (cfg.stain_norm, cfg.hed_scale, cfg.hed_shift) == ("reinhard", 0.2, 0.05)
    form.stain_norm.setCurrentIndex(form.stain_norm.findData("macenko"))
    assert form.train_config(TrainConfig()).stain_norm == "macenko"
    form.stain_norm.setCurrentIndex(form.stain_norm.findData("none"))  # a reference image of the base is dropped
    cfg = form.train_config(TrainConfig(stain_norm="macenko", stain_reference="ref.png"))
    assert cfg.stain_norm == "none" and cfg.stain_reference is None


@pytest.mark.parametrize("command", ["train", "experiment"])
def test_train_and_experiment_take_the_stain_options(command):
    from engine.cli.commands import experiment_config
    from engine.cli.parser import build_parser

    args = ["--demo", "--out", "x", "--stain-norm", "macenko", "--stain-reference", "r.png", "--hed-scale", "0.1"]
    train = experiment_config(build_parser().parse_args([command, *args])).train
    assert (train.stain_norm, train.stain_reference, train.hed_scale) == ("macenko", "r.png", 0.1)
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--demo", "--out", "x", "--stain-norm", "vahadane"])
