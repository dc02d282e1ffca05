"""Robustness evaluation that resists false robustness: every model attacked white-box with its own
gradients (FGSM, PGD-k with restarts, APGD), by transfer from every other model, against random-noise
baselines of the same L-inf size and against natural perturbations (stain, blur, JPEG).

Each source model's adversarial batch is made once and shown to every model, so one attack run gives the
white-box row of its source and the transfer rows of the others. Every row carries accuracy, balanced
accuracy, sensitivity, specificity, the missed-cancer rate and the confusion matrix at that eps.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from engine.attacks import ATTACK_INFO, make_attack
from engine.attacks.natural import NATURAL, apply_natural
from engine.core.metrics import binary_metrics
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.arrays import ArraySet, batches
from engine.models.tensors import to_tensor

log = logging.getLogger(__name__)

ROW_METRICS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "missed_cancer_rate", "confusion_matrix")


@dataclass(frozen=True)
class RobustnessPlan:
    """What to run. ``eps_values`` in pixel units (> 0); ``attacks`` are white-box attacks of the registry."""

    eps_values: tuple[float, ...] = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
    attacks: tuple[str, ...] = ("fgsm", "pgd")
    steps: int = 10  # PGD / BIM / APGD steps
    restarts: int = 1
    baselines: tuple[str, ...] = ("uniform-noise",)
    natural: bool = True
    seed: int = 0


class RobustnessEvaluator:
    """Runs a plan on one test set and keeps each row's per-image probabilities for later checks."""

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
        self.rows: list[dict] = []
        self.probs: dict[tuple, np.ndarray] = {}  # (model, attack, source, eps or level) -> P(positive)

    def run(self, plan: RobustnessPlan) -> list[dict]:
        for m in self.models.values():
            m.eval()
        self._add({"attack": "none", "kind": "clean", "eps": 0.0}, None, lambda x, y: x)
        for name in plan.attacks:
            info = ATTACK_INFO[name]
            for source in self.models:
                for eps in plan.eps_values:
                    attack = make_attack(name, eps, steps=plan.steps, restarts=plan.restarts, seed=plan.seed)
                    steps = plan.steps if info.iterative else 1
                    row = {"attack": name, "eps": eps, "steps": steps, "restarts": plan.restarts if steps > 1 else 1}
                    self._add(row, source, lambda x, y, a=attack, s=self.models[source]: a(s, x, y))
        for name in plan.baselines:
            for eps in plan.eps_values:
                attack = make_attack(name, eps, seed=plan.seed)
                self._add({"attack": name, "kind": "baseline", "eps": eps}, None, lambda x, y, a=attack: a(None, x, y))
        if plan.natural:
            for name, spec in NATURAL.items():
                for level in spec.levels:
                    gen = torch.Generator().manual_seed(plan.seed)
                    row = {"attack": name, "kind": "natural", "eps": None, "level": level}
                    self._add(row, None, lambda x, y, n=name, v=level, g=gen: apply_natural(n, x, v, generator=g))
        return self.rows

    def _add(self, row: dict, source: str | None, perturb) -> None:
        """Perturb the test set batch by batch (on ``source`` when given) and score every model on it."""
        what = "clean images" if row["attack"] == "none" else row["attack"]
        stage = f"robustness: {what}" + (f" on {source}" if source else "")
        if row.get("eps"):
            stage += f" at {row['eps'] * 255:.3g}/255"
        out = {name: [] for name in self.models}
        n = len(self.test)
        for b, idx in enumerate(batches(n, self.batch_size), start=1):
            check_cancel(self.cancel, stage)
            x = to_tensor(self.test.images[idx], self.device)
            y = torch.from_numpy(self.test.labels[idx]).to(self.device)
            x_p = perturb(x, y)
            with torch.no_grad():
                for name, model in self.models.items():
                    out[name].append(torch.softmax(model(x_p).float(), 1)[:, 1].cpu().numpy())
            report(self.on_progress, stage, min(b * self.batch_size, n), n, unit="images")
        for name, chunks in out.items():
            p = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
            kind = row.get("kind") or ("white-box" if name == source else "transfer")
            key = row["level"] if row.get("kind") == "natural" else row["eps"]
            self.probs[(name, row["attack"], source, key)] = p
            self.rows.append({"model": name, **row, "kind": kind, "source": source, **self._metrics(p)})

    def _metrics(self, p: np.ndarray, idx: np.ndarray | None = None) -> dict:
        y = self.test.labels if idx is None else self.test.labels[idx]
        m = binary_metrics(y, p if idx is None else p[idx])
        return {k: m[k] for k in ROW_METRICS} | {"n": m["n"]}

    def accuracy_on(self, model: str, attack: str, source: str | None, eps: float, idx: np.ndarray) -> float | None:
        """Accuracy of a finished row on the images ``idx`` (to compare with a black-box run on a subset)."""
        p = self.probs.get((model, attack, source, eps))
        return None if p is None else self._metrics(p, idx)["accuracy"]


def plan_dict(plan: RobustnessPlan) -> dict:
    return asdict(plan)
