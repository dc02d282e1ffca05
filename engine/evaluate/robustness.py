"""Robustness evaluation that resists false robustness: every model attacked white-box with its own
gradients (FGSM, PGD-k with restarts, APGD; on the margin loss by default, which does not saturate), by
transfer from every other model, against random-noise baselines of the same L-inf size and against natural
perturbations (stain, blur, JPEG). Per eps, each model's **worst case** row counts an image as right only when
it survived every attack run at that eps, white-box and transfer (AutoAttack's robust accuracy).

Each source model's adversarial batch is made once and shown to every model (``engine.evaluate.core``), so
one attack run gives the white-box row of its source and the transfer rows of the others. Every row carries
accuracy, balanced accuracy, sensitivity, specificity, the missed-cancer rate and the confusion matrix, each
metric with its patient-level bootstrap interval ("ci").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from engine.attacks.natural import NATURAL
from engine.attacks.perturbation import CLEAN, Perturbation
from engine.core.catalog import ATTACK_INFO, DEFAULT_LOSS, WORST_CASE
from engine.core.config import AttackConfig
from engine.core.intervals import metrics_with_intervals
from engine.evaluate.core import Evaluation

ROW_METRICS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "missed_cancer_rate", "confusion_matrix")
STAGE = "robustness:"


@dataclass(frozen=True)
class RobustnessPlan:
    """What to run. ``eps_values`` in pixel units (> 0); ``attacks`` are white-box attacks of the registry."""

    eps_values: tuple[float, ...] = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
    attacks: tuple[str, ...] = ("fgsm", "pgd")
    steps: int = 10  # PGD / BIM / APGD steps
    restarts: int = 1
    loss: str = DEFAULT_LOSS  # what the gradient attacks climb (engine.attacks._common): "margin" or "ce"
    baselines: tuple[str, ...] = ("uniform-noise",)
    natural: bool = True
    seed: int = 0

    def attack(self, name: str, eps: float) -> AttackConfig:
        return AttackConfig(name, eps, steps=self.steps, restarts=self.restarts, seed=self.seed, loss=self.loss)


def robustness_rows(ev: Evaluation, plan: RobustnessPlan) -> list[dict]:
    """The clean, white-box, transfer, baseline and natural rows of every model of ``ev``."""
    rows = _rows(ev, {"attack": "none", "kind": "clean", "eps": 0.0}, CLEAN)
    for name in plan.attacks:
        for source in ev.models:
            for eps in plan.eps_values:
                cfg = plan.attack(name, eps)
                row = {"attack": name, "eps": eps, "steps": cfg.n_steps, "restarts": cfg.n_restarts}
                rows += _rows(ev, row, Perturbation(cfg, source))
    for name in plan.baselines:
        for eps in plan.eps_values:
            rows += _rows(ev, {"attack": name, "kind": "baseline", "eps": eps}, Perturbation(plan.attack(name, eps)))
    for eps in plan.eps_values:
        rows += _worst_case_rows(ev, plan, eps)
    if plan.natural:
        for name, spec in NATURAL.items():
            for level in spec.levels:
                row = {"attack": name, "kind": "natural", "eps": None, "level": level}
                rows += _rows(ev, row, Perturbation(natural=(name, level), seed=plan.seed))
    return rows


def _rows(ev: Evaluation, row: dict, perturbation: Perturbation) -> list[dict]:
    out = []
    for name in ev.models:
        p = ev.positive(name, perturbation, stage=STAGE)
        kind = row.get("kind") or ("white-box" if name == perturbation.source else "transfer")
        out.append({"model": name, **row, "kind": kind, "source": perturbation.source, **row_metrics(ev, p)})
    return out


def worst_case_perturbations(ev: Evaluation, plan: RobustnessPlan, eps: float) -> list[Perturbation]:
    """Every L-inf attack of ``plan`` at ``eps`` made on every model of ``ev``: for each model its white-box
    attacks and the transfer attacks from the others, the set its worst case is taken over."""
    attacks = [a for a in plan.attacks if ATTACK_INFO[a].norm == "linf"]
    return [Perturbation(plan.attack(a, eps), source) for a in attacks for source in ev.models]


def worst_case_positive(ev: Evaluation, plan: RobustnessPlan, model: str, eps: float) -> np.ndarray:
    """Per image, P(positive) under the attack that did the most harm: the lowest for a positive image, the
    highest for a negative one. The call is right exactly when the image survived every attack (AutoAttack's
    robust accuracy)."""
    p = np.stack([ev.positive(model, q, stage=STAGE) for q in worst_case_perturbations(ev, plan, eps)])
    return np.where(ev.data.labels == 1, p.min(0), p.max(0))


def _worst_case_rows(ev: Evaluation, plan: RobustnessPlan, eps: float) -> list[dict]:
    perturbations = worst_case_perturbations(ev, plan, eps)
    if len(perturbations) < 2:  # one attack: its own row says it all
        return []
    rows = []
    for model in ev.models:
        row = {"model": model, "attack": WORST_CASE, "kind": WORST_CASE, "eps": eps, "source": None,
               "of": [q.describe() for q in perturbations]}  # fmt: skip
        rows.append({**row, **row_metrics(ev, worst_case_positive(ev, plan, model, eps))})
    return rows


def row_metrics(ev: Evaluation, p: np.ndarray, idx: np.ndarray | None = None) -> dict:
    """A row's metrics with their patient-level intervals, on all images or those of ``idx``."""
    idx = np.arange(len(ev.data)) if idx is None else idx
    return metrics_with_intervals(ev.data.labels[idx], p[idx], groups=ev.groups[idx], bootstrap=ev.bootstrap,
                                  keys=ROW_METRICS)  # fmt: skip


def accuracy_on(ev: Evaluation, model: str, perturbation: Perturbation, idx: np.ndarray) -> float | None:
    """Accuracy of ``model`` under ``perturbation`` on the images ``idx`` (to compare with a black-box run on a
    subset); the probabilities come from the cache when the row was computed."""
    return row_metrics(ev, ev.positive(model, perturbation, stage=STAGE), idx)["accuracy"]


def plan_dict(plan: RobustnessPlan) -> dict:
    return asdict(plan)
