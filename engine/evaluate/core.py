"""The one evaluation core: a labelled set, perturbed batch by batch and shown to every model, its class
probabilities kept per perturbation.

A perturbation is an attack (``AttackConfig``) made on one model's gradients (its *source*), random noise of
the same size, a natural perturbation (stain, blur, JPEG), or nothing. Each perturbed batch is shown to every
model at once, so one attack run gives the white-box probabilities of its source and the transfer ones of the
others. The study's conditions, the eps sweep, the robustness table, the stress tests and evaluations of one
checkpoint all read their probabilities from here; nothing but the probabilities is kept. The evaluation also
carries the bootstrap settings every table's intervals use, and the set's patients to resample.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.attacks.perturbation import CLEAN, Perturbation, perturbed_batches
from engine.core.intervals import Bootstrap
from engine.core.progress import CancelToken, ProgressCallback
from engine.data.arrays import ArraySet
from engine.models.fast import fast_model


@torch.no_grad()
def softmax(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Class probabilities (float32, on the CPU) of ``model`` in eval mode, through its faster folded copy."""
    model.eval()
    return torch.softmax(fast_model(model)(x).float(), dim=1).cpu().numpy()


class Evaluation:
    """Probabilities of named models on one labelled set, per perturbation, each computed once."""

    def __init__(
        self,
        models: dict[str, nn.Module],
        data: ArraySet,
        device: torch.device,
        batch_size: int = 64,
        on_progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        bootstrap: Bootstrap | None = None,
    ) -> None:
        self.models, self.data, self.device, self.batch_size = models, data, device, batch_size
        self.on_progress, self.cancel = on_progress, cancel
        self.bootstrap = bootstrap or Bootstrap()
        self._cache: dict[tuple, dict[str, np.ndarray]] = {}

    @property
    def groups(self) -> np.ndarray:
        """Each image's patient (the unit the bootstrap resamples); each image its own when the set has none."""
        return np.arange(len(self.data)) if self.data.patients is None else np.asarray(self.data.patients)

    def correct(self, model: str, perturbation: Perturbation = CLEAN, stage: str = "evaluate") -> np.ndarray:
        """Whether ``model``'s call (p >= 0.5) on each perturbed image is its label."""
        return (self.positive(model, perturbation, stage) >= 0.5) == (self.data.labels == 1)

    def probs(self, model: str, perturbation: Perturbation = CLEAN, stage: str = "evaluate") -> np.ndarray:
        """(N, classes) probabilities of ``model`` on the perturbed set (every model's are kept)."""
        key = perturbation.key
        if key not in self._cache:
            self._cache[key] = self._run(perturbation, f"{stage} ({perturbation.describe()})")
        return self._cache[key][model]

    def positive(self, model: str, perturbation: Perturbation = CLEAN, stage: str = "evaluate") -> np.ndarray:
        """P(positive class), the column the metrics threshold."""
        return self.probs(model, perturbation, stage)[:, 1]

    def _run(self, perturbation: Perturbation, stage: str) -> dict[str, np.ndarray]:
        out: dict[str, list] = {name: [] for name in self.models}
        for _, x in perturbed_batches(
            self.data, perturbation, self.models, self.device, self.batch_size, stage, self.on_progress, self.cancel
        ):
            for name, model in self.models.items():
                out[name].append(softmax(model, x))
        return {n: np.concatenate(c) if c else np.zeros((0, 2), np.float32) for n, c in out.items()}


def intervals_record(bootstrap: Bootstrap, data: ArraySet) -> dict:
    """What a report says about its intervals: the method, resamples, seed, confidence and the unit resampled."""
    n_groups = len(set(np.asarray(data.patients).tolist())) if data.patients is not None else len(data)
    unit = "patient" if data.patients is not None else "image (the set has no patient ids)"
    return {**bootstrap.describe(), "unit": unit, "n_units": n_groups}
