"""Robust validation of adversarially trained models: PGD and FGSM accuracy on validation images each epoch.

It selects the kept epoch (robust balanced accuracy) and detects catastrophic overfitting, the failure of
fast (FGSM) adversarial training where accuracy under PGD collapses within an epoch while accuracy under
FGSM stays high (Wong, Rice & Kolter, ICLR 2020; Andriushchenko & Flammarion, NeurIPS 2020).

A model trained with Gaussian noise (``gaussian``, the base classifier of randomized smoothing) is attacked by no
one here: its epoch is selected by balanced accuracy on the validation images with the training noise added
(``noisy_validation``), which is what the smoothed classifier and its certificate rest on (Cohen et al. certify
the majority vote of the model over such noisy copies); its accuracy on clean images is kept in the history too.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.attacks import fgsm, pgd
from engine.core.config import TrainConfig
from engine.core.metrics import classification_metrics
from engine.data.arrays import ArraySet, batches
from engine.models.tensors import to_tensor

VAL_LIMIT = 256  # validation images attacked per epoch (a class-stratified, fixed subset)
CO_DROP = 0.2  # a fall of PGD accuracy by this much (and by half) from its best epoch, FGSM staying high, is flagged


def robust_subset(val: ArraySet, limit: int = VAL_LIMIT, seed: int = 0) -> np.ndarray:
    """Indices of at most ``limit`` validation images, the same every epoch, both classes kept in proportion."""
    if len(val) <= limit:
        return np.arange(len(val))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(len(val), size=limit, replace=False))


def robust_validation(model: nn.Module, val: ArraySet, idx: np.ndarray, cfg: TrainConfig, device, batch_size: int):
    """Accuracy, and balanced accuracy, under PGD-``adv_steps`` (random start, seeded) and under FGSM at ``adv_eps``."""
    gen = torch.Generator().manual_seed(cfg.seed)
    eps, steps = cfg.adv_eps, cfg.adv_steps
    pred_pgd, pred_fgsm = [], []
    for b in batches(len(idx), batch_size):
        x = to_tensor(val.images[idx[b]], device)
        y = torch.from_numpy(val.labels[idx[b]]).to(device)
        x_pgd = pgd(model, x, y, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True, generator=gen)
        x_fgsm = fgsm(model, x, y, eps=eps)
        with torch.no_grad():
            pred_pgd.append(model(x_pgd).argmax(1).cpu().numpy())
            pred_fgsm.append(model(x_fgsm).argmax(1).cpu().numpy())
    y = val.labels[idx]
    p_pgd, p_fgsm = np.concatenate(pred_pgd), np.concatenate(pred_fgsm)
    pgd_metrics = classification_metrics(y, p_pgd)
    balanced = pgd_metrics["balanced_accuracy"]  # a subset of one class: its accuracy (the mean recall of one)
    return {
        "val_pgd_acc": pgd_metrics["accuracy"],
        "val_pgd_balanced_accuracy": balanced if balanced is not None else pgd_metrics["accuracy"],
        "val_fgsm_acc": float((p_fgsm == y).mean()),
    }


@torch.no_grad()
def noisy_validation(model: nn.Module, val: ArraySet, sigma: float, seed: int, device, batch_size: int) -> dict:
    """Accuracy, and balanced accuracy, on every validation image plus N(0, sigma^2) noise (pixel units, not
    clamped), one noisy copy per image drawn from a generator seeded with ``seed``: the same noise every epoch, so
    epochs are compared on the same images."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    preds = []
    for b in batches(len(val), batch_size):
        x = to_tensor(val.images[b], device)
        noise = torch.randn(x.shape, generator=gen).to(x.device, x.dtype)
        preds.append(model(x + sigma * noise).argmax(1).cpu().numpy())
    m = classification_metrics(val.labels, np.concatenate(preds))
    balanced = m["balanced_accuracy"]
    return {
        "val_noisy_acc": m["accuracy"],
        "val_noisy_balanced_accuracy": balanced if balanced is not None else m["accuracy"],
    }


def catastrophic_overfitting(history: list[dict], current: dict) -> bool:
    """True when PGD validation accuracy collapsed while FGSM validation accuracy stayed high.

    PGD accuracy fell by at least ``CO_DROP`` and by half from its best earlier epoch, and FGSM accuracy is
    still within ``CO_DROP`` of its best earlier epoch and at least ``CO_DROP`` above the PGD accuracy. When
    FGSM accuracy fell with PGD the model simply got worse (e.g. the learning rate blew up): not flagged.
    History rows without ``val_fgsm_acc`` (older runs) are skipped for the FGSM best; a ``current`` without
    it is judged on the PGD collapse alone.
    """
    best = max((row.get("val_pgd_acc", 0.0) for row in history), default=0.0)
    pgd_acc = current["val_pgd_acc"]
    if not (best - pgd_acc >= CO_DROP and pgd_acc <= best / 2):
        return False
    fgsm_acc = current.get("val_fgsm_acc")
    if fgsm_acc is None:
        return True
    best_fgsm = max((row["val_fgsm_acc"] for row in history if row.get("val_fgsm_acc") is not None), default=0.0)
    return fgsm_acc >= best_fgsm - CO_DROP and fgsm_acc >= pgd_acc + CO_DROP
