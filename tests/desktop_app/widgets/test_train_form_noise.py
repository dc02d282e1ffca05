"""The Train page's form: Model C's randomized-smoothing settings (noise sigma, certified images), enabled only for
the 'gaussian' defence, shown from a run and read back into the configs the engine runs."""

from __future__ import annotations

from desktop_app.widgets.train_form import TrainForm
from engine.core.config import DataConfig, ExperimentConfig, TrainConfig


def test_sigma_and_certified_images_reach_the_experiment_only_for_gaussian(qtbot):
    form = TrainForm()
    qtbot.addWidget(form)
    form.set_experiment(None)
    assert form.defence.currentData() == "fgsm-rs" and not form.sigma.isEnabled() and not form.certified.isEnabled()
    assert form.certified.value() == ExperimentConfig(DataConfig(demo=True), TrainConfig()).certified_images
    run = ExperimentConfig(DataConfig(demo=True), TrainConfig(noise_sigma=0.5), defence="gaussian", certified_images=40)
    form.set_from(run.train, run.eps)
    form.set_experiment(run)
    assert form.sigma.isEnabled() and form.certified.isEnabled()
    assert form.train_config(TrainConfig()).noise_sigma == 0.5
    assert form.experiment_values()["certified_images"] == 40 and form.experiment_values()["defence"] == "gaussian"
    form.sigma.setValue(0.12)
    assert form.train_config(TrainConfig()).noise_sigma == 0.12
    form.defence.setCurrentIndex(form.defence.findData("fgsm-rs"))
    assert not form.sigma.isEnabled()
