"""Paired comparisons of a run's models on the same test images: clean, and under each white-box attack of
the robustness table at each eps (every model attacked on its own gradients, so "C is more robust than B"
compares the two models' robust accuracy against their own strongest attacker), and in the worst case over every
attack at each eps. Each comparison carries the
accuracy difference with its patient-level paired-bootstrap interval and the exact McNemar p-value
(``engine.core.paired``). The probabilities come from the shared evaluation cache: nothing is attacked again.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from engine.attacks.perturbation import CLEAN, Perturbation
from engine.core.catalog import WORST_CASE
from engine.core.paired import compare
from engine.evaluate.core import Evaluation
from engine.evaluate.robustness import STAGE, RobustnessPlan, worst_case_perturbations, worst_case_positive


def comparisons(ev: Evaluation, plan: RobustnessPlan) -> list[dict]:
    """One entry per pair of models (x before y in the run's order) and condition: clean, each white-box attack
    at each eps, and the worst case over every attack at each eps (where more than one attack was run)."""
    conditions = [("none", 0.0)] + [(a, e) for a in plan.attacks for e in plan.eps_values]
    conditions += [(WORST_CASE, e) for e in plan.eps_values if len(worst_case_perturbations(ev, plan, e)) > 1]
    out = []
    for attack, eps in conditions:
        for x, y in combinations(ev.models, 2):
            result = compare(_correct(ev, plan, attack, eps, x), _correct(ev, plan, attack, eps, y), ev.groups,
                             ev.bootstrap)  # fmt: skip
            out.append({"x": x, "y": y, "attack": attack, "eps": eps, **result})
    return out


def _correct(ev: Evaluation, plan: RobustnessPlan, attack: str, eps: float, model: str) -> np.ndarray:
    """Whether ``model`` is right on each image: clean, under its own white-box ``attack``, or in the worst case."""
    if attack == WORST_CASE:
        return (worst_case_positive(ev, plan, model, eps) >= 0.5) == (ev.data.labels == 1)
    return ev.correct(model, CLEAN if attack == "none" else Perturbation(plan.attack(attack, eps), model), STAGE)
