"""Gaussian noise training (the base classifier of randomized smoothing): the loss sees x + N(0, sigma^2), unclamped
and drawn from the epoch's generator; the epoch is selected on noisy validation images; sigma travels with the
model into its checkpoint and ONNX file, where ``histoguard certify`` finds it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.cli.commands import experiment_config
from engine.cli.parser import build_parser
from engine.core.config import TrainConfig
from engine.core.errors import ConfigError
from engine.data.arrays import ArraySet
from engine.deploy.certify_run import model_sigma
from engine.deploy.model_info import onnx_meta
from engine.export.onnx_export import export_onnx
from engine.models.checkpoint import read_checkpoint
from engine.models.registry import create_model
from engine.report.labels import training_text
from engine.train.defences import adversarial_loss, gaussian_noise
from engine.train.study import adversarial_how, defence_config, train_new_model
from tests.conftest import toy_arrays

CFG = TrainConfig(
    arch="small_cnn", image_size=16, epochs=2, batch_size=16, lr=5e-3, patience=10, weights="none", device="cpu",
    adversarial="gaussian", noise_sigma=0.5,
)  # fmt: skip


class Recorder(nn.Module):
    """small_cnn that keeps the last batch it was called on."""

    def __init__(self) -> None:
        super().__init__()
        self.net, self.seen = create_model("small_cnn"), None

    def forward(self, x):
        self.seen = x.detach().clone()
        return self.net(x)


def _batch(n: int = 16):
    x = torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    return x, torch.arange(n) % 2


def test_the_loss_sees_unclamped_noise_of_sigma_from_the_epoch_generator():
    torch.manual_seed(0)
    model, (x, y) = Recorder(), _batch()
    cfg = TrainConfig(**{**CFG.__dict__, "noise_sigma": 1.0})
    weights = torch.ones(2)
    loss, logits = adversarial_loss(model, x, y, cfg, weights, torch.Generator().manual_seed(5), None)
    noise = model.seen - x
    assert noise.std().item() == pytest.approx(1.0, abs=0.03) and abs(noise.mean().item()) < 0.03
    assert model.seen.min() < -1 and model.seen.max() > 2  # not clamped to [0, 1]
    assert torch.equal(model.seen, gaussian_noise(x, 1.0, torch.Generator().manual_seed(5)))  # seeded by ``gen``
    with torch.no_grad():
        clean = F.cross_entropy(model(x), y, weight=weights)
    assert loss.item() != pytest.approx(clean.item(), abs=1e-4)
    assert logits.shape == (16, 2)


def test_gaussian_training_selects_on_noisy_validation_and_records_sigma(tmp_path):
    x, y = toy_arrays(96, 16, seed=1)
    train, val = ArraySet(x[:64], y[:64]), ArraySet(x[64:], y[64:])
    how = adversarial_how(CFG)
    assert how["method"] == "gaussian" and how["sigma"] == 0.5
    _, result, meta = train_new_model(
        CFG, train, val, classes=("benign", "malignant"), how=how, split_hash="0", out_dir=tmp_path, name="G"
    )
    rows = result.history
    assert all("val_noisy_balanced_accuracy" in r and "val_pgd_acc" not in r for r in rows)
    summary = result.summary(how)
    assert summary["selected_by"] == "val_noisy_balanced_accuracy"
    assert summary["best_val_balanced_accuracy"] == pytest.approx(
        max(r["val_noisy_balanced_accuracy"] for r in rows), abs=1e-4
    )
    assert read_checkpoint(result.checkpoint)["metadata"]["training"]["sigma"] == 0.5
    model = create_model("small_cnn")
    model.load_state_dict(read_checkpoint(result.checkpoint)["state_dict"])
    export_onnx(model.eval(), tmp_path / "g.onnx", meta, 16)
    assert model_sigma(onnx_meta(tmp_path / "g.onnx")) == 0.5  # what `histoguard certify` uses by default
    assert "sigma 0.5" in training_text(meta)


def test_noisy_validation_uses_the_same_noise_every_epoch():
    from engine.train.robust_val import noisy_validation

    torch.manual_seed(0)
    model = create_model("small_cnn").eval()
    x, y = toy_arrays(40, 16, seed=2)
    val = ArraySet(x, y)
    first = noisy_validation(model, val, 0.5, 0, torch.device("cpu"), 16)
    assert noisy_validation(model, val, 0.5, 0, torch.device("cpu"), 7) == first
    assert set(first) == {"val_noisy_acc", "val_noisy_balanced_accuracy"}


def test_the_command_line_sets_sigma_for_train_and_experiment():
    args = build_parser().parse_args(["train", "--demo", "--out", "x", "--adversarial", "gaussian", "--sigma", "0.5"])
    train = experiment_config(args).train
    assert (train.adversarial, train.noise_sigma) == ("gaussian", 0.5)
    args = build_parser().parse_args(
        ["experiment", "--data", "d", "--out", "x", "--defence", "gaussian", "--sigma", "0.3"]
    )
    cfg = experiment_config(args)
    c_cfg, how = defence_config(cfg.train, cfg.defence, cfg.eps)
    assert c_cfg.adversarial == "gaussian" and how == {**how, "method": "gaussian", "sigma": 0.3}
    assert TrainConfig().noise_sigma == 0.25


@pytest.mark.parametrize("sigma", [0, -0.1, 1.5, float("nan")])
def test_bad_sigma_is_refused(sigma):
    with pytest.raises(ConfigError, match="sigma"):
        TrainConfig(adversarial="gaussian", noise_sigma=sigma)


def test_the_models_sigma_is_read_only_from_a_gaussian_training_record():
    from engine.core.metadata import ModelMeta

    base = {"arch": "x", "classes": ["a", "b"], "image_size": 16}
    assert model_sigma(ModelMeta.from_dict({**base, "training": {"method": "gaussian", "sigma": 0.12}})) == 0.12
    assert model_sigma(ModelMeta.from_dict({**base, "training": {"method": "clean"}})) is None
    assert model_sigma(ModelMeta.from_dict({**base, "training": {"method": "gaussian", "sigma": "big"}})) is None
