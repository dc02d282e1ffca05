"""The study's evaluation conditions and the eps sweep, at image and patient level.

Conditions: A clean; A under white-box FGSM; B clean; B under FGSM made on A (transfer, the study's setting);
B under white-box FGSM made on B itself. Probabilities come from the shared ``Evaluation``, so the conditions,
the sweep, the robustness table and the confusion matrices never attack the same way twice.
"""

from __future__ import annotations

from engine.attacks.perturbation import CLEAN, Perturbation
from engine.core.config import AttackConfig
from engine.core.intervals import metrics_with_intervals
from engine.core.metrics import patient_level
from engine.evaluate.core import Evaluation

CONDITIONS = (("A", None), ("A", "A"), ("B", None), ("B", "A"), ("B", "B"))
SWEEP_PAIRS = (("A", "A"), ("B", "A"), ("B", "B"))
SWEEP_KEYS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "missed_cancer_rate")


def fgsm_from(source: str | None, eps: float) -> Perturbation:
    """FGSM at ``eps`` made on ``source``'s gradients (the clean images without a source or at eps 0)."""
    return Perturbation(AttackConfig("fgsm", eps), source) if source and eps else CLEAN


def entry(ev: Evaluation, model: str, source: str | None, eps: float, level: str) -> dict:
    """One condition's metrics and their intervals: ``model`` on FGSM images from ``source`` at ``eps``, per image
    (patients resampled) or per patient (the mean probability of each)."""
    p, y, groups = ev.positive(model, fgsm_from(source, eps)), ev.data.labels, ev.groups
    if level == "patient":
        p, y = patient_level(p, y, groups)
        groups = None
    return {
        "model": model,
        "condition": "fgsm" if source else "clean",
        "attack_source": source,
        "eps": eps if source else 0.0,
        "level": level,
        **metrics_with_intervals(y, p, groups=groups, bootstrap=ev.bootstrap),
    }


def conditions(ev: Evaluation, eps: float, pairs=CONDITIONS) -> list[dict]:
    return [entry(ev, m, s, eps, level) for level in ("image", "patient") for m, s in pairs]


def sweep(ev: Evaluation, eps_values, pairs=SWEEP_PAIRS) -> list[dict]:
    rows = []
    for eps in eps_values:
        for m, s in pairs:
            e = entry(ev, m, s if eps > 0 else None, eps, "image")
            ci = {k: e["ci"].get(k) for k in SWEEP_KEYS}
            rows.append({"model": m, "attack_source": s, "eps": eps, **{k: e[k] for k in SWEEP_KEYS}, "ci": ci})
    return rows
