"""The study's evaluation conditions and the eps sweep, at image and patient level.

Conditions: A clean; A under white-box FGSM; B clean; B under FGSM made on A (transfer, the study's
setting); B under white-box FGSM made on B itself. Probabilities are computed once per
(model, attack source, eps) and reused by the conditions, the sweep and the confusion matrices.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from torch import nn

from engine.attacks import fgsm
from engine.core.metrics import binary_metrics, patient_level
from engine.core.progress import CancelToken, ProgressCallback
from engine.data.arrays import ArraySet
from engine.evaluate.predict import predict_proba

CONDITIONS = (("A", None), ("A", "A"), ("B", None), ("B", "A"), ("B", "B"))
SWEEP_PAIRS = (("A", "A"), ("B", "A"), ("B", "B"))
SWEEP_KEYS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "missed_cancer_rate")


class Evaluator:
    """Caches FGSM-attacked probabilities of named models on one test set."""

    def __init__(
        self,
        models: dict[str, nn.Module],
        test: ArraySet,
        device: torch.device,
        batch_size: int = 64,
        on_progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        self.models, self.test, self.device, self.batch_size = models, test, device, batch_size
        self.on_progress, self.cancel = on_progress, cancel
        self._cache: dict[tuple, np.ndarray] = {}

    def probs(self, model: str, source: str | None, eps: float) -> np.ndarray:
        if source is None or eps == 0:
            source, eps = None, 0.0
        key = (model, source, round(eps, 10))
        if key not in self._cache:
            stage = f"evaluate {model}" + (f" (FGSM {eps * 255:.0f}/255 from {source})" if source else " clean")
            attack = partial(fgsm, eps=eps) if source else None
            self._cache[key] = predict_proba(
                self.models[model],
                self.test,
                self.device,
                self.batch_size,
                attack=attack,
                source=self.models[source] if source else None,
                stage=stage,
                on_progress=self.on_progress,
                cancel=self.cancel,
            )[:, 1]
        return self._cache[key]

    def entry(self, model: str, source: str | None, eps: float, level: str) -> dict:
        p, y = self.probs(model, source, eps), self.test.labels
        if level == "patient":
            p, y = patient_level(p, y, self.test.patients)
        return {
            "model": model,
            "condition": "fgsm" if source else "clean",
            "attack_source": source,
            "eps": eps if source else 0.0,
            "level": level,
            **binary_metrics(y, p),
        }

    def conditions(self, eps: float) -> list[dict]:
        return [self.entry(m, s, eps, level) for level in ("image", "patient") for m, s in CONDITIONS]

    def sweep(self, eps_values) -> list[dict]:
        rows = []
        for eps in eps_values:
            for m, s in SWEEP_PAIRS:
                e = self.entry(m, s if eps > 0 else None, eps, "image")
                rows.append({"model": m, "attack_source": s, "eps": eps, **{k: e[k] for k in SWEEP_KEYS}})
        return rows
