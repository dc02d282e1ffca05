"""An exponential moving average (EMA) of a model's weights, BatchNorm buffers included (``TrainConfig.ema_decay``).

torch's ``AveragedModel`` keeps the copy; the update is timm's ``ModelEmaV2`` rule with the warm-up of TensorFlow's
``ExponentialMovingAverage(num_updates=...)``: after the first update (a plain copy) each update n = 1, 2, ...
moves the copy to ``decay_n * ema + (1 - decay_n) * weights`` with ``decay_n = min(decay, (1 + n) / (10 + n))``,
so a short run is not averaged over weights of its first steps. Integer buffers (BatchNorm's batch counter) are
copied. When on, the loop validates, selects and saves the EMA copy (so best.pt and its ONNX file hold it), while
the optimizer keeps stepping the raw weights; last.pt holds both, so a resumed run continues the same average.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

WARMUP = 10  # decay_n = min(decay, (1 + n) / (WARMUP + n))


def decay_at(decay: float, n: int) -> float:
    """The decay of update ``n`` (1 for the second update; the first copies the weights)."""
    return min(decay, (1 + n) / (WARMUP + n))


def _ema_update(decay: float):
    @torch.no_grad()
    def update(ema: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        d = decay_at(decay, int(n_averaged))
        if torch.is_floating_point(ema[0]):  # AveragedModel groups the tensors by dtype and device
            torch._foreach_lerp_(ema, current, 1 - d)
        else:
            torch._foreach_copy_(ema, current)

    return update


class WeightEMA:
    """The EMA copy of ``model`` (same device, memory format and mode-independent weights)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.averaged = AveragedModel(model, multi_avg_fn=_ema_update(decay), use_buffers=True)

    @property
    def module(self) -> nn.Module:
        """The averaged network: what is validated, selected and saved."""
        return self.averaged.module

    @property
    def updates(self) -> int:
        return int(self.averaged.n_averaged)

    def update(self, model: nn.Module) -> None:
        """Fold the current weights and buffers of ``model`` (the raw, unwrapped network) into the average."""
        self.averaged.update_parameters(model)

    def state(self) -> dict:
        """What last.pt keeps to resume the average."""
        return {"ema_state_dict": self.module.state_dict(), "ema_updates": self.updates}

    def load(self, payload: dict) -> None:
        """Restore the average from a last.pt payload (``state``)."""
        self.module.load_state_dict(payload["ema_state_dict"])
        self.averaged.n_averaged.fill_(int(payload["ema_updates"]))


def make_ema(model: nn.Module, decay: float) -> WeightEMA | None:
    """A ``WeightEMA`` of ``model``, or None when ``decay`` is 0 (off)."""
    return WeightEMA(model, decay) if decay > 0 else None
