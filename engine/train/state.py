"""Optimizer, schedule, class weights and the resumable training state kept in ``last.pt``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from engine.core.config import TrainConfig


@dataclass
class TrainState:
    epoch: int = 0  # last completed epoch
    best_epoch: int = 0
    best_score: float = -1.0
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)
    # where a cancelled epoch stopped: epoch, batches_done, the augmentation generator's state and the
    # running sums, so a resumed run continues with the next batch instead of redoing the epoch
    partial: dict | None = None

    def to_payload(self, opt, sched, cfg: TrainConfig) -> dict:
        return {
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "epoch": self.epoch,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "partial": self.partial,
            "train_config": dict(cfg.__dict__),
        }

    @classmethod
    def from_payload(cls, p: dict) -> TrainState:
        return cls(p["epoch"], p["best_epoch"], p["best_score"], p["bad_epochs"], list(p["history"]), p.get("partial"))


def class_weights(labels: np.ndarray, num_classes: int = 2) -> torch.Tensor:
    """n / (k * count_c): the loss weighs each class as if the classes were balanced."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    counts[counts == 0] = 1
    return torch.tensor(len(labels) / (num_classes * counts), dtype=torch.float32)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW without weight decay on biases and normalisation parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def make_scheduler(opt: torch.optim.Optimizer, steps_per_epoch: int, epochs: int):
    """Linear warm-up over the first epoch, then cosine decay to 1% of the peak, stepped per batch."""
    total = max(steps_per_epoch * epochs, 2)
    warm = max(1, min(steps_per_epoch, total // 2))
    warmup = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=warm)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=total - warm, eta_min=opt.param_groups[0]["lr"] * 0.01
    )
    return torch.optim.lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[warm])
