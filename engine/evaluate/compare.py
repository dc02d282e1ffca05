"""Paired comparisons of a run's models on the same test images: clean, and under each white-box attack of
the robustness table at each eps (every model attacked on its own gradients, so "C is more robust than B"
compares the two models' robust accuracy against their own strongest attacker). Each comparison carries the
accuracy difference with its patient-level paired-bootstrap interval and the exact McNemar p-value
(``engine.core.paired``). The probabilities come from the shared evaluation cache: nothing is attacked again.
"""

from __future__ import annotations

from itertools import combinations

from engine.attacks.perturbation import CLEAN, Perturbation
from engine.core.paired import compare
from engine.evaluate.core import Evaluation
from engine.evaluate.robustness import STAGE, RobustnessPlan


def comparisons(ev: Evaluation, plan: RobustnessPlan) -> list[dict]:
    """One entry per pair of models (x before y in the run's order) and condition."""
    conditions = [("none", 0.0)] + [(a, e) for a in plan.attacks for e in plan.eps_values]
    out = []
    for attack, eps in conditions:
        for x, y in combinations(ev.models, 2):
            px, py = (CLEAN, CLEAN) if attack == "none" else (_own(plan, attack, eps, x), _own(plan, attack, eps, y))
            result = compare(ev.correct(x, px, STAGE), ev.correct(y, py, STAGE), ev.groups, ev.bootstrap)
            out.append({"x": x, "y": y, "attack": attack, "eps": eps, **result})
    return out


def _own(plan: RobustnessPlan, attack: str, eps: float, model: str) -> Perturbation:
    return Perturbation(plan.attack(attack, eps), model)
