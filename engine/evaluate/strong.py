"""The "strong" evaluation for the final report of a model a lab means to deploy, after AutoAttack (Croce & Hein,
ICML 2020): on a fixed subset of the test images, APGD on cross-entropy and APGD on the margin loss at 100
steps each, and the Square attack (queries only, no gradient: it cannot be fooled by a masked gradient) with a
large query budget; per image the worst case over the three (robust accuracy = the image survived them all).

It costs far more than the standard table (about 200 gradient passes and up to ``queries`` forward passes per
image, model and eps), so it is opt-in (``--strong``) and runs at the study's eps only unless told otherwise.
Every adversarial image is judged after rounding to 8 bits, as in every other evaluation.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch

from engine.attacks._common import quantised
from engine.attacks.perturbation import Perturbation
from engine.core.config import AttackConfig
from engine.core.progress import check_cancel
from engine.data.arrays import ArraySet
from engine.deploy.square import square_attack
from engine.evaluate.core import Evaluation, softmax
from engine.evaluate.robustness import row_metrics
from engine.models.tensors import to_tensor
from engine.runs.images import fixed_subset

log = logging.getLogger(__name__)
KIND = "strong"
SQUARE_P_INIT = 0.3  # engine.deploy.blackbox's choice for small images (the paper's 0.05 is tuned for 224 px)


@dataclass(frozen=True)
class StrongPlan:
    eps_values: tuple[float, ...]
    images: int = 100  # a fixed random subset of the test images (the same for every model)
    steps: int = 100  # APGD steps, per loss
    queries: int = 5000  # Square queries per image
    seed: int = 0

    @property
    def attacks(self) -> dict[str, AttackConfig]:
        """APGD on each loss, by the name the report gives it."""
        return {
            f"APGD-{name}": AttackConfig("apgd", 0.0, steps=self.steps, seed=self.seed, loss=loss)
            for name, loss in (("CE", "ce"), ("margin", "margin"))
        }


def strong_rows(ev: Evaluation, plan: StrongPlan) -> list[dict]:
    """Per model and eps: a row per attack and the worst-case row, each with its metrics and intervals."""
    idx = fixed_subset(len(ev.data), plan.images, plan.seed)
    sub = _subset(ev, idx)
    rows = []
    for eps in plan.eps_values:
        for name, model in ev.models.items():
            check_cancel(ev.cancel, "strong evaluation")
            found = {
                label: sub.positive(name, Perturbation(cfg.at(eps), name), "strong:")
                for label, cfg in plan.attacks.items()
            }
            found["Square"] = _square(model, sub, eps, plan, ev.device)
            for label, p in found.items():
                rows.append(_row(sub, name, label, eps, plan, p))
            p = np.stack(list(found.values()))
            worst = np.where(sub.data.labels == 1, p.min(0), p.max(0))
            rows.append(_row(sub, name, "worst case", eps, plan, worst))
            log.info("strong evaluation, model %s at %.3g/255: worst-case accuracy %s", name, eps * 255,
                     rows[-1]["accuracy"])  # fmt: skip
    return rows


def plan_record(plan: StrongPlan, n_images: int) -> dict:
    return {**asdict(plan), "n_images": n_images, "square_p_init": SQUARE_P_INIT}


def _subset(ev: Evaluation, idx: np.ndarray) -> Evaluation:
    d = ev.data
    data = ArraySet(d.images[idx], d.labels[idx], None if d.patients is None else d.patients[idx])
    return Evaluation(ev.models, data, ev.device, ev.batch_size, ev.on_progress, ev.cancel, bootstrap=ev.bootstrap)


def _square(model: torch.nn.Module, ev: Evaluation, eps: float, plan: StrongPlan, device) -> np.ndarray:
    """P(positive) of each image after the Square attack on ``model``'s scores, judged at 8 bits."""

    @torch.no_grad()
    def predict(x: np.ndarray) -> np.ndarray:
        return model.eval()(torch.from_numpy(x).to(device)).float().cpu().numpy()

    x = to_tensor(ev.data.images, torch.device("cpu")).numpy()
    res = square_attack(predict, x, ev.data.labels, eps=eps, n_queries=plan.queries, p_init=SQUARE_P_INIT,
                        seed=plan.seed, cancel=ev.cancel)  # fmt: skip
    return softmax(model, quantised(torch.from_numpy(res.x_adv)).to(device))[:, 1]


def _row(ev: Evaluation, model: str, attack: str, eps: float, plan: StrongPlan, p: np.ndarray) -> dict:
    return {"model": model, "attack": attack, "kind": KIND, "eps": eps, "source": None, "n_images": len(p),
            "queries": plan.queries if attack == "Square" else None, **row_metrics(ev, p)}  # fmt: skip
