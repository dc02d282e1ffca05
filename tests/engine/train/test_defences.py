"""Adversarial training: FGSM-RS, PGD-AT and TRADES in the one loop, robust validation, catastrophic overfitting."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from engine.attacks import pgd
from engine.core.config import TrainConfig
from engine.core.errors import ConfigError
from engine.data.arrays import ArraySet
from engine.models.checkpoint import make_metadata
from engine.models.registry import create_model
from engine.train import session
from engine.train.defences import mixed_batch, trades_adversary
from engine.train.loop import fit
from engine.train.robust_val import catastrophic_overfitting, robust_subset

EPS = 8 / 255
CFG = TrainConfig(
    arch="small_cnn", image_size=16, epochs=4, batch_size=16, lr=5e-3, patience=10, weights="none", device="cpu"
)


def subtle_arrays(n: int, seed: int = 0, size: int = 16):
    """Class 1 has a centre 80 grey levels brighter than class 0: separable with a margin that survives
    eps 16/255 when the model looks at the centre only, but a clean model also uses the background."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.integers(90, 110, size=(n, size, size, 3)).astype(np.int64)
    q = size // 4
    images[labels == 1, q:-q, q:-q, :] += 80
    return images.clip(0, 255).astype(np.uint8), labels.astype(np.int64)


def _fit(tmp_path, cfg, n=128):
    torch.manual_seed(0)
    model = create_model(cfg.arch)
    meta = make_metadata(cfg.arch, ("benign", "malignant"), cfg.image_size, {"method": cfg.adversarial})
    x, y = subtle_arrays(n + 64, seed=1)
    train, val = ArraySet(x[:n], y[:n]), ArraySet(x[n:], y[n:])
    return model, fit(model, train, val, cfg, out_dir=tmp_path, name="T", metadata=meta)


def _pgd_accuracy(model, eps, n=64):
    x, y = subtle_arrays(n, seed=7)
    x = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(y)
    adv = pgd(model, x, y, eps=eps, steps=10, alpha=eps / 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return (model(adv).argmax(1) == y).float().mean().item()


@pytest.mark.parametrize("method", ["fgsm-rs", "pgd", "trades"])
def test_adversarial_training_runs_and_is_selected_by_robust_accuracy(tmp_path, method):
    cfg = TrainConfig(**{**CFG.__dict__, "adversarial": method, "adv_eps": EPS, "adv_steps": 3, "epochs": 2})
    _, result = _fit(tmp_path, cfg)
    rows = result.history
    assert all({"val_pgd_acc", "val_fgsm_acc", "catastrophic_overfitting"} <= set(r) for r in rows)
    summary = result.summary({"method": method})
    assert summary["selected_by"] == "val_pgd_balanced_accuracy"
    assert summary["best_val_balanced_accuracy"] == max(r["val_pgd_balanced_accuracy"] for r in rows)


def test_pgd_training_is_more_robust_than_clean_training(tmp_path):
    eps, base = 16 / 255, {**CFG.__dict__, "epochs": 6}
    clean, _ = _fit(tmp_path / "clean", TrainConfig(**base))
    robust, _ = _fit(tmp_path / "pgd", TrainConfig(**{**base, "adversarial": "pgd", "adv_eps": eps, "adv_steps": 3}))
    acc_clean, acc_robust = _pgd_accuracy(clean.eval(), eps), _pgd_accuracy(robust.eval(), eps)
    assert acc_robust >= acc_clean + 0.3, (acc_clean, acc_robust)


def _attacked(seed, y, ratio=0.5):
    """``mixed_batch`` on random images with labels ``y``: its output, the input and a mask of the changed images."""
    torch.manual_seed(0)
    model = create_model("small_cnn")
    x = torch.rand(len(y), 3, 16, 16, generator=torch.Generator().manual_seed(1))
    cfg = TrainConfig(**{**CFG.__dict__, "adversarial": "fgsm-rs", "adv_ratio": ratio})
    out = mixed_batch(model, x, y, cfg, torch.Generator().manual_seed(seed))
    assert out.shape == x.shape and (out - x).abs().max() <= cfg.adv_eps + 1e-6 and 0 <= out.min() <= out.max() <= 1
    return out, x, (out != x).flatten(1).any(1)


def test_mixed_batch_replaces_only_the_requested_fraction():
    y = torch.arange(8) % 2
    out, x, changed = _attacked(0, y)
    assert changed.sum() == 4 and torch.equal(out[~changed], x[~changed])
    assert (out[changed] != x[changed]).float().mean() > 0.5  # attacked images differ in most pixels
    none = TrainConfig(**{**CFG.__dict__, "adversarial": "fgsm-rs", "adv_ratio": 0.0})
    assert mixed_batch(create_model("small_cnn"), x, y, none, torch.Generator()) is x


def test_mixed_batch_attacks_a_random_class_balanced_subset_in_place():
    y = torch.tensor([0] * 6 + [1] * 10)  # a path-sorted batch: every benign image first
    sets = {}
    for seed in range(4):
        out, x, changed = _attacked(seed, y)
        assert changed.sum() == 8 and changed[:6].sum() == 3 and changed[6:].sum() == 5  # half of each class
        assert torch.equal(out[~changed], x[~changed])  # the others untouched, each image at its own index
        assert (out[changed] != x[changed]).flatten(1).float().mean(1).min() > 0.5
        assert torch.equal(_attacked(seed, y)[0], out), "the same seed gives the same batch"
        sets[seed] = tuple(changed.nonzero().flatten().tolist())
    assert len(set(sets.values())) > 1, "the attacked images depend on the generator's seed"


def test_mixed_batch_rounds_the_class_shares_to_the_batch_total():
    y = torch.tensor([0] * 5 + [1] * 7)  # half of each class is 2.5 and 3.5: one class gets the odd image
    counts = set()
    for seed in range(8):
        _, _, changed = _attacked(seed, y)
        counts.add((int(changed[:5].sum()), int(changed[5:].sum())))
    assert counts <= {(2, 4), (3, 3)} and len(counts) == 2, counts  # 6 in all; the tie broken at random
    _, _, changed = _attacked(0, torch.tensor([0, 0, 0, 1]), ratio=0.25)
    assert changed.sum() == 1


def test_trades_adversary_stays_in_the_ball_and_raises_the_divergence():
    torch.manual_seed(0)
    model = create_model("small_cnn").train()
    x = torch.rand(6, 3, 16, 16)
    adv = trades_adversary(model, x, EPS, 5, torch.Generator().manual_seed(0))
    assert model.training, "mode restored"
    assert (adv - x).abs().max() <= EPS + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    model.eval()
    with torch.no_grad():
        p = torch.softmax(model(x), 1)
        kl = torch.nn.functional.kl_div(torch.log_softmax(model(adv), 1), p, reduction="sum")
        near = torch.clamp(x + 0.001 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0)), 0, 1)
        kl_near = torch.nn.functional.kl_div(torch.log_softmax(model(near), 1), p, reduction="sum")
    assert kl > kl_near


def test_catastrophic_overfitting_rule():
    history = [{"val_pgd_acc": 0.2}, {"val_pgd_acc": 0.6}]
    assert catastrophic_overfitting(history, {"val_pgd_acc": 0.05})
    assert not catastrophic_overfitting(history, {"val_pgd_acc": 0.45})  # a dip, not a collapse
    assert not catastrophic_overfitting([], {"val_pgd_acc": 0.0})


def test_catastrophic_overfitting_needs_fgsm_accuracy_to_stay_high():
    history = [{"val_pgd_acc": 0.2, "val_fgsm_acc": 0.5}, {"val_pgd_acc": 0.6, "val_fgsm_acc": 0.8}]
    assert catastrophic_overfitting(history, {"val_pgd_acc": 0.05, "val_fgsm_acc": 0.85})  # FGSM high: CO
    assert catastrophic_overfitting(history, {"val_pgd_acc": 0.05, "val_fgsm_acc": 0.7})  # within CO_DROP of best
    assert not catastrophic_overfitting(history, {"val_pgd_acc": 0.05, "val_fgsm_acc": 0.1})  # the model got worse
    assert not catastrophic_overfitting(history, {"val_pgd_acc": 0.05, "val_fgsm_acc": 0.5})  # FGSM fell too
    low = [{"val_pgd_acc": 0.5, "val_fgsm_acc": 0.2}]
    assert not catastrophic_overfitting(low, {"val_pgd_acc": 0.1, "val_fgsm_acc": 0.2})  # FGSM not above PGD


def test_catastrophic_overfitting_with_history_rows_lacking_fgsm_accuracy():
    old = [{"val_pgd_acc": 0.6}, {"val_pgd_acc": 0.5, "val_fgsm_acc": None}]  # rows of older runs
    assert catastrophic_overfitting(old, {"val_pgd_acc": 0.05, "val_fgsm_acc": 0.7})
    assert not catastrophic_overfitting(old, {"val_pgd_acc": 0.05, "val_fgsm_acc": 0.1})
    mixed = [*old, {"val_pgd_acc": 0.4, "val_fgsm_acc": 0.9}]
    assert not catastrophic_overfitting(mixed, {"val_pgd_acc": 0.05, "val_fgsm_acc": 0.6})  # 0.3 below its best


def test_collapse_is_flagged_and_the_best_epoch_kept(tmp_path, monkeypatch, caplog):
    accs = iter([0.5, 0.7, 0.02, 0.01])

    def fake_validation(*args, **kwargs):
        a = next(accs)
        return {"val_pgd_acc": a, "val_pgd_balanced_accuracy": a, "val_fgsm_acc": 0.9}

    monkeypatch.setattr(session, "robust_validation", fake_validation)
    cfg = TrainConfig(**{**CFG.__dict__, "adversarial": "fgsm-rs"})
    with caplog.at_level(logging.WARNING, logger="engine.train"):
        _, result = _fit(tmp_path, cfg, n=32)
    assert [r["catastrophic_overfitting"] for r in result.history] == [False, False, True, True]
    assert result.best_epoch == 2
    assert result.summary({})["catastrophic_overfitting_epochs"] == [3, 4]
    assert "catastrophic overfitting" in caplog.text


def test_robust_subset_is_fixed_and_bounded():
    val = ArraySet(np.zeros((600, 4, 4, 3), np.uint8), np.arange(600) % 2)
    a, b = robust_subset(val, 100, seed=3), robust_subset(val, 100, seed=3)
    assert len(a) == 100 and np.array_equal(a, b) and len(set(a)) == 100
    assert len(robust_subset(ArraySet(val.images[:50], val.labels[:50]), 100)) == 50


@pytest.mark.parametrize(
    "change", [{"adversarial": "mart"}, {"adv_eps": 0.0}, {"adv_ratio": 1.5}, {"adv_steps": 0}, {"trades_beta": -1}]
)
def test_bad_adversarial_settings_are_refused(change):
    with pytest.raises(ConfigError):
        TrainConfig(**{**CFG.__dict__, **change})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("method", ["fgsm-rs", "pgd", "trades"])
def test_adversarial_training_on_cuda_with_mixed_precision(tmp_path, method):
    cfg = TrainConfig(
        **{**CFG.__dict__, "device": "cuda", "adversarial": method, "adv_eps": 16 / 255, "adv_steps": 3, "epochs": 3}
    )
    model, result = _fit(tmp_path, cfg)
    assert next(model.parameters()).is_cuda
    assert all(np.isfinite(r["train_loss"]) for r in result.history)
    assert result.best_score >= 0.5, result.history
