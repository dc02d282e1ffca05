"""The training loop on tiny data: it learns, keeps the best checkpoint, resumes, cancels, stops early."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.core.config import TrainConfig
from engine.core.errors import Cancelled, ConfigError, DataError
from engine.core.progress import CancelToken
from engine.data.arrays import ArraySet
from engine.models.checkpoint import load_checkpoint, make_metadata, read_checkpoint
from engine.models.registry import create_model
from engine.train.loop import fit
from engine.train.state import class_weights
from tests.conftest import toy_arrays

CFG = TrainConfig(
    arch="small_cnn", image_size=16, epochs=4, batch_size=16, lr=5e-3, patience=10, weights="none", device="cpu"
)


def _sets():
    x, y = toy_arrays(96, 16, seed=1)
    return ArraySet(x[:64], y[:64]), ArraySet(x[64:], y[64:])


def _fit(tmp_path, cfg=CFG, **kw):
    torch.manual_seed(0)
    model = create_model(cfg.arch)
    meta = make_metadata(cfg.arch, ("benign", "malignant"), cfg.image_size, {"method": "clean"})
    train, val = _sets()
    return model, fit(model, train, val, cfg, out_dir=tmp_path, name="T", metadata=meta, **kw)


def test_fit_learns_and_saves_best_checkpoint(tmp_path):
    model, result = _fit(tmp_path)
    assert result.epochs_run == 4 and len(result.history) == 4
    assert result.best_score >= 0.9, result.history
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    loaded, meta = load_checkpoint(tmp_path / "best.pt")
    assert meta.arch == "small_cnn" and meta.classes == ("benign", "malignant")
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(loaded(x), model.eval()(x), atol=1e-6), "returned model holds the best weights"


def test_progress_reports_batches_and_epochs(tmp_path):
    events = []
    _fit(tmp_path, on_progress=events.append)
    epochs = [e for e in events if e.unit == "epochs"]
    assert [e.done for e in epochs] == [1, 2, 3, 4]
    assert {"train_loss", "val_loss", "val_balanced_accuracy"} <= set(epochs[0].metrics)
    assert any(e.unit == "batches" and "loss" in e.metrics for e in events)


def test_resume_refuses_another_config(tmp_path):
    short = TrainConfig(**{**CFG.__dict__, "epochs": 2})
    _fit(tmp_path, short)
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    with pytest.raises(ConfigError):  # another config must not silently continue
        _fit(tmp_path, TrainConfig(**{**CFG.__dict__, "lr": 1e-2}))


def test_resume_after_cancel_finishes_the_run(tmp_path):
    token, seen = CancelToken(), []

    def cancel_in_epoch_two(p):
        seen.append(p)
        if p.unit == "epochs" and p.done == 1:
            token.cancel()

    with pytest.raises(Cancelled):
        _fit(tmp_path, on_progress=cancel_in_epoch_two, cancel=token)
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    _, result = _fit(tmp_path)
    assert result.epochs_run == 4
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]


def test_early_stopping(tmp_path):
    cfg = TrainConfig(**{**CFG.__dict__, "epochs": 30, "patience": 1, "lr": 1e-7})
    _, result = _fit(tmp_path, cfg)
    assert result.stopped_early and result.epochs_run < 30


def test_one_class_training_set_is_refused(tmp_path):
    x, y = toy_arrays(16, 16)
    model = create_model("small_cnn")
    meta = make_metadata("small_cnn", ("a", "b"), 16, {"method": "clean"})
    with pytest.raises(DataError, match="both classes"):
        fit(model, ArraySet(x, np.zeros_like(y)), None, CFG, out_dir=tmp_path, name="T", metadata=meta)


def test_class_weights_balance_the_classes():
    w = class_weights(np.array([0, 0, 0, 1]))
    assert torch.allclose(w, torch.tensor([4 / 6, 4 / 2]))


def test_cancel_mid_epoch_resumes_at_the_next_batch_with_the_same_result(tmp_path):
    _, straight = _fit(tmp_path / "straight")
    token = CancelToken()

    def cancel_after_two_batches_of_epoch_two(p):
        if p.unit == "batches" and p.metrics.get("epoch") == 2 and p.done == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        _fit(tmp_path / "cut", on_progress=cancel_after_two_batches_of_epoch_two, cancel=token)
    saved = read_checkpoint(tmp_path / "cut" / "last.pt")
    assert saved["epoch"] == 1 and saved["partial"]["epoch"] == 2 and saved["partial"]["batches_done"] == 2
    batches_seen = []
    _, resumed = _fit(tmp_path / "cut", on_progress=lambda p: batches_seen.append((p.metrics.get("epoch"), p.done)))
    assert (2, 1) not in batches_seen and (2, 3) in batches_seen  # continued with batch 3, not from the start
    assert read_checkpoint(tmp_path / "cut" / "last.pt")["partial"] is None
    for a, b in zip(straight.history, resumed.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)


def test_bf16_mixed_precision_trains_on_the_cpu(tmp_path):
    """The path 'auto' takes on CPUs with native bf16 (AMX); forced here, where it may be slow."""
    cfg = TrainConfig(**{**CFG.__dict__, "precision": "bf16", "epochs": 3})
    _, result = _fit(tmp_path, cfg)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert all(np.isfinite(row["val_loss"]) for row in result.history)


def test_training_without_a_validation_set_selects_by_training_accuracy(tmp_path):
    torch.manual_seed(0)
    model = create_model("small_cnn")
    meta = make_metadata("small_cnn", ("benign", "malignant"), 16, {"method": "clean"})
    train, _ = _sets()
    result = fit(model, train, None, CFG, out_dir=tmp_path, name="T", metadata=meta)
    assert result.best_score == max(row["train_acc"] for row in result.history)


def test_resume_of_a_run_written_before_a_setting_existed(tmp_path):
    """last.pt from an older version lacks newer settings (here ``precision``): they take their defaults."""
    short = TrainConfig(**{**CFG.__dict__, "epochs": 2})
    _fit(tmp_path, short)
    payload = read_checkpoint(tmp_path / "last.pt")
    del payload["train_config"]["precision"]
    torch.save(payload, tmp_path / "last.pt")
    _, result = _fit(tmp_path, short)  # accepted as the same configuration: nothing left to train
    assert result.epochs_run == 2 and len(result.history) == 2
