"""The training levers in the one loop: EMA of the weights, HED stain jitter, AWP, and TRADES with them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.core.config import DataConfig, ExperimentConfig, TrainConfig
from engine.core.errors import ConfigError
from engine.data.arrays import ArraySet
from engine.models.checkpoint import make_metadata, read_checkpoint
from engine.models.registry import create_model
from engine.train import awp, ema, epoch
from engine.train.awp import awp_on, perturb
from engine.train.ema import WeightEMA, decay_at
from engine.train.loop import fit
from engine.train.session import TrainSession
from engine.train.study import lever_record, train_new_model
from engine.workflows.train import train_model
from tests.engine.train.test_defences import CFG, subtle_arrays

LEVERS = {"ema_decay": 0.99, "hed_scale": 0.05, "hed_shift": 0.05, "awp_gamma": 5e-3}


def _cfg(**changes) -> TrainConfig:
    return TrainConfig(**{**CFG.__dict__, **changes})


def _sets(n: int = 32):
    x, y = subtle_arrays(n + 32, seed=1)
    return ArraySet(x[:n], y[:n]), ArraySet(x[n:], y[n:])


def _fit(tmp_path, cfg, n=32):
    torch.manual_seed(0)
    model = create_model(cfg.arch)
    meta = make_metadata(cfg.arch, ("benign", "malignant"), cfg.image_size, {"method": cfg.adversarial})
    train, val = _sets(n)
    return model, fit(model, train, val, cfg, out_dir=tmp_path, name="T", metadata=meta)


# --- EMA ------------------------------------------------------------------------------------------------
def _toy() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


@pytest.mark.parametrize("decay", [0.1, 0.999])
def test_ema_is_the_hand_computed_average_of_two_steps(decay):
    torch.manual_seed(0)
    model = _toy().train()
    average = WeightEMA(model, decay)
    states = []
    for _ in range(2):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(8, 3))  # moves the BatchNorm statistics
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        average.update(model)
    d = min(decay, 2 / 11)  # the warm-up caps the decay of the second update
    assert decay_at(decay, 1) == d
    got = average.module.state_dict()
    for key, first in states[0].items():
        if first.is_floating_point():
            assert torch.allclose(got[key], d * first + (1 - d) * states[1][key], atol=1e-6), key
            assert not torch.allclose(got[key], states[1][key]), f"{key}: the EMA differs from the raw weights"
        else:
            assert torch.equal(got[key], states[1][key])  # the batch counter is copied
    assert average.updates == 2


def test_ema_state_restores_the_average():
    model = _toy()
    a, b = WeightEMA(model, 0.9), WeightEMA(_toy(), 0.9)
    a.update(model)
    a.update(model)
    b.load(a.state())
    assert b.updates == 2
    assert all(torch.equal(x, y) for x, y in zip(a.module.state_dict().values(), b.module.state_dict().values()))


def test_the_loop_validates_and_saves_the_ema_copy(tmp_path, monkeypatch):
    raw_states = []
    update = WeightEMA.update

    def recording(self, model):
        raw_states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        update(self, model)

    monkeypatch.setattr(ema.WeightEMA, "update", recording)
    cfg = _cfg(epochs=1, ema_decay=0.5)  # 32 images, batches of 16: two steps
    model, result = _fit(tmp_path, cfg)
    assert len(raw_states) == 2
    last, best = read_checkpoint(tmp_path / "last.pt"), read_checkpoint(tmp_path / "best.pt")
    d = decay_at(0.5, 1)
    for key, first in raw_states[0].items():
        if first.is_floating_point():  # weights and BatchNorm statistics
            expected = d * first + (1 - d) * raw_states[1][key]
            assert torch.allclose(last["ema_state_dict"][key], expected, atol=1e-6), key
        assert torch.equal(last["state_dict"][key], raw_states[1][key]), "last.pt keeps the raw weights to resume"
        assert torch.equal(best["state_dict"][key], last["ema_state_dict"][key]), "best.pt holds the EMA copy"
        assert torch.equal(model.state_dict()[key], best["state_dict"][key]), "fit returns the kept (EMA) weights"
    assert any(not torch.equal(best["state_dict"][k], last["state_dict"][k]) for k in raw_states[0])
    assert result.best_epoch == 1 and last["ema_updates"] == 2
    _, val = _sets(32)
    val_loss = epoch.evaluate_loss(model, val, None, torch.device("cpu"), 16)["loss"]
    assert val_loss == pytest.approx(result.history[0]["val_loss"], rel=1e-3), "validated on the EMA copy"


# --- HED jitter in training ---------------------------------------------------------------------------
def test_hed_jitter_runs_after_the_augmentation_and_before_the_attack(tmp_path, monkeypatch):
    calls = []
    for name in ("augment", "hed_jitter", "adversarial_inputs"):
        original = getattr(epoch, name)

        def spy(*args, _name=name, _original=original, **kw):
            calls.append(_name)
            out = _original(*args, **kw)
            if _name == "hed_jitter":
                assert out.device == args[0].device and 0 <= out.min() <= out.max() <= 1
            return out

        monkeypatch.setattr(epoch, name, spy)
    _fit(tmp_path, _cfg(epochs=1, adversarial="fgsm-rs", hed_scale=0.1, hed_shift=0.05))
    assert calls == ["augment", "hed_jitter", "adversarial_inputs"] * 2


# --- AWP ------------------------------------------------------------------------------------------------
def _batch(n=8):
    x, y = subtle_arrays(n, seed=3)
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255, torch.from_numpy(y)


def test_awp_raises_the_loss_and_moves_only_the_weights():
    torch.manual_seed(0)
    model = create_model("small_cnn").train()
    x, y = _batch()
    loss_fn = lambda: F.cross_entropy(model(x), y)  # noqa: E731
    clean_loss = loss_fn().item()  # train mode: BatchNorm's statistics move here, not in perturb
    before = {k: v.clone() for k, v in model.state_dict().items()}
    step = perturb(model, loss_fn, 5e-3)
    after = {k: v.clone() for k, v in model.state_dict().items()}
    assert loss_fn().item() > clean_loss, "the loss at the perturbed weights is higher"
    for name, p in model.named_parameters():
        moved = not torch.equal(after[name], before[name])
        assert moved == (p.ndim > 1), name  # biases and BatchNorm stay
        if moved:
            ratio = (after[name] - before[name]).norm() / before[name].norm()
            assert ratio == pytest.approx(5e-3, rel=1e-3), name  # gamma of the layer's norm
    for name, _ in model.named_buffers():
        assert torch.equal(after[name], before[name]), f"{name}: the extra pass leaves BatchNorm's statistics alone"
    step.restore()
    assert all(torch.equal(p, before[k]) for k, p in model.named_parameters())


def test_a_loop_step_with_awp_restores_the_weights_exactly_at_lr_zero(tmp_path, monkeypatch):
    cfg = _cfg(adversarial="pgd", adv_steps=2, awp_gamma=0.01)
    torch.manual_seed(0)
    model = create_model(cfg.arch)
    meta = make_metadata(cfg.arch, ("benign", "malignant"), cfg.image_size, {"method": "pgd"})
    train, _ = _sets(16)
    run = TrainSession.start(model, train, cfg, out_dir=tmp_path, name="T", metadata=meta, resume=False,
                             on_progress=None, cancel=None)  # fmt: skip
    for group in run.opt.param_groups:
        group["lr"] = 0.0
    steps = []
    monkeypatch.setattr(epoch, "perturb", lambda *a, **k: steps.append(awp.perturb(*a, **k)) or steps[-1])
    before = [p.detach().clone() for p in model.parameters()]
    epoch._step(run, train.images[:16], train.labels[:16], torch.Generator().manual_seed(0), 1)
    assert len(steps) == 1 and any(not torch.equal(a, b) for a, b in zip(steps[0].before, steps[0].after))
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before)), "weights restored exactly"


def test_awp_starts_after_its_warmup_and_only_for_adversarial_defences():
    cfg = _cfg(adversarial="fgsm-rs", awp_gamma=5e-3, awp_warmup=2)
    assert [awp_on(cfg, e) for e in (1, 2, 3)] == [False, False, True]
    assert not awp_on(_cfg(awp_gamma=5e-3), 5) and not awp_on(_cfg(adversarial="gaussian", awp_gamma=5e-3), 5)
    assert not awp_on(_cfg(adversarial="pgd"), 5)


def test_histoguard_train_refuses_awp_without_a_defence(tmp_path):
    cfg = ExperimentConfig(DataConfig(data=str(tmp_path / "none")), _cfg(awp_gamma=5e-3))
    with pytest.raises(ConfigError, match="AWP.*--adversarial"):
        train_model(cfg, tmp_path / "out")


# --- together -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["fgsm-rs", "trades"])
def test_every_lever_together_trains_and_is_recorded(tmp_path, method):
    cfg = _cfg(epochs=2, adversarial=method, adv_steps=2, trades_beta=3.0, adv_ratio=0.5, **LEVERS)
    train, val = _sets(32)
    model, result, meta = train_new_model(cfg, train, val, classes=("benign", "malignant"), how={"method": "x"},
                                          split_hash="-", out_dir=tmp_path, name="T")  # fmt: skip
    assert result.epochs_run == 2 and all(np.isfinite(r["train_loss"]) for r in result.history)
    assert meta.training["ema"]["decay"] == 0.99 and meta.training["awp"] == {"gamma": 5e-3, "warmup_epochs": 0}
    assert meta.training["hed_jitter"]["scale"] == 0.05
    assert read_checkpoint(tmp_path / "best.pt")["metadata"]["training"] == meta.training


def test_lever_record_names_only_the_levers_that_are_on():
    assert lever_record(_cfg()) == {}
    assert set(lever_record(_cfg(**LEVERS))) == {"ema", "hed_jitter"}  # AWP needs an adversarial defence
    assert set(lever_record(_cfg(adversarial="pgd", **LEVERS))) == {"ema", "hed_jitter", "awp"}


def test_the_report_names_the_levers_of_each_model():
    from engine.report.labels import levers_text

    how = {"method": "adversarial-training", **lever_record(_cfg(adversarial="pgd", **LEVERS))}
    assert levers_text(how) == "; EMA 0.99, HED jitter 0.05/0.05, AWP 0.005"
    assert levers_text({"method": "clean"}) == ""


@pytest.mark.parametrize(
    "change",
    [{"ema_decay": 1.0}, {"ema_decay": -0.1}, {"hed_scale": 1.0}, {"hed_shift": -0.1}, {"awp_gamma": -1e-3},
     {"awp_warmup": -1}],
)  # fmt: skip
def test_bad_lever_settings_are_refused(change):
    with pytest.raises(ConfigError):
        _cfg(**change)


def test_the_cli_sets_every_lever_for_train_and_experiment():
    from engine.cli.commands import experiment_config
    from engine.cli.parser import build_parser

    flags = ["--ema-decay", "0.999", "--hed-scale", "0.05", "--hed-shift", "0.02", "--awp-gamma", "0.005",
             "--awp-warmup", "1", "--trades-beta", "3", "--adv-ratio", "0.5"]  # fmt: skip
    for command in (["train", "--adversarial", "trades"], ["experiment", "--defence", "trades"]):
        args = build_parser().parse_args([*command, "--data", "x", "--out", "y", *flags])
        train = experiment_config(args).train
        assert (train.ema_decay, train.hed_scale, train.hed_shift) == (0.999, 0.05, 0.02)
        assert (train.awp_gamma, train.awp_warmup, train.trades_beta, train.adv_ratio) == (0.005, 1, 3.0, 0.5)
    assert TrainConfig().ema_decay == TrainConfig().awp_gamma == TrainConfig().hed_scale == 0  # off by default
