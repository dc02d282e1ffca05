"""The robustness section of a run's report: the attack table, per-image minimal eps, the black-box
Square attack on each exported ONNX file, and the gradient-masking flags drawn from all of them; and the
certified section: Model C's ONNX file certified by randomized smoothing when it was trained with Gaussian noise."""

from __future__ import annotations

import logging
from pathlib import Path

from engine.attacks.perturbation import CLEAN, Perturbation
from engine.core.config import CertifyConfig, ExperimentConfig
from engine.core.progress import CancelToken, ProgressCallback
from engine.deploy.blackbox import blackbox_stress
from engine.deploy.certify_run import certify_set
from engine.evaluate.compare import comparisons
from engine.evaluate.core import Evaluation
from engine.evaluate.masking import masking_flags
from engine.evaluate.min_eps import min_eps_summary, minimal_eps
from engine.evaluate.robustness import RobustnessPlan, accuracy_on, plan_dict, robustness_rows
from engine.evaluate.strong import StrongPlan, plan_record, strong_rows
from engine.runs.images import fixed_subset

log = logging.getLogger(__name__)


def robustness_plan(cfg: ExperimentConfig) -> RobustnessPlan:
    return RobustnessPlan(
        eps_values=tuple(e for e in cfg.sweep_eps if e > 0),
        attacks=cfg.robust_attacks,
        steps=cfg.pgd_steps,
        restarts=cfg.pgd_restarts,
        seed=cfg.train.seed,
        loss=cfg.attack_loss,
    )


def robustness_section(cfg: ExperimentConfig, ev: Evaluation) -> dict:
    """White-box, transfer, baseline and natural rows, the paired comparisons of the models and minimal eps;
    black-box rows are added by ``add_blackbox`` once the ONNX files exist, and ``finish`` draws the flags."""
    plan = robustness_plan(cfg)
    rows = robustness_rows(ev, plan)
    min_eps = {}
    if cfg.min_eps_max:
        for name, model in ev.models.items():
            values = minimal_eps(
                model, ev.data, ev.device, max_k=cfg.min_eps_max, steps=cfg.pgd_steps, seed=cfg.train.seed,
                batch_size=cfg.eval_batch_size, name=f"Model {name}", loss=cfg.attack_loss, on_progress=ev.on_progress,
                cancel=ev.cancel,
            )  # fmt: skip
            min_eps[name] = min_eps_summary(values, cfg.min_eps_max)
    paired = comparisons(ev, plan)
    section = {"plan": plan_dict(plan), "rows": rows, "comparisons": paired, "min_eps": min_eps, "flags": []}
    add_strong(section, cfg, ev)
    return section


def add_strong(section: dict, cfg: ExperimentConfig, ev: Evaluation) -> None:
    """The strong evaluation's rows (kind "strong") and its plan, at the study's eps, when ``cfg.strong``."""
    if not cfg.strong:
        return
    plan = StrongPlan((cfg.eps,), cfg.strong_images, cfg.strong_steps, cfg.strong_queries, cfg.train.seed)
    section["rows"] += strong_rows(ev, plan)
    section["strong"] = plan_record(plan, min(len(ev.data), plan.images))


def add_blackbox(
    section: dict,
    ev: Evaluation,
    cfg: ExperimentConfig,
    onnx_paths: dict[str, Path],
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """Square attack (queries only, onnxruntime) on each ONNX file at ``cfg.eps``, compared with the
    white-box attacks on the same images."""
    if not cfg.blackbox_images or not onnx_paths:
        return
    plan = robustness_plan(cfg)
    idx = fixed_subset(len(ev.data), cfg.blackbox_images, cfg.train.seed)
    for name, path in onnx_paths.items():
        res = blackbox_stress(
            path, ev.data.images[idx], ev.data.labels[idx], eps_values=[cfg.eps], n_queries=cfg.blackbox_queries,
            seed=cfg.train.seed, groups=ev.groups[idx], bootstrap=ev.bootstrap, on_progress=on_progress, cancel=cancel,
        )  # fmt: skip
        r = res["results"][0]
        white = [accuracy_on(ev, name, Perturbation(plan.attack(a, cfg.eps), name), idx) for a in cfg.robust_attacks]
        white = [w for w in white if w is not None]
        keys = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "missed_cancer_rate")
        section["rows"].append(
            {
                "model": name,
                "attack": "square",
                "kind": "black-box",
                "source": None,
                "eps": cfg.eps,
                "steps": cfg.blackbox_queries,
                "restarts": 1,
                **{k: r[k] for k in keys},
                "confusion_matrix": r["confusion_matrix"],
                "n": r["n"],
                "ci": {k: r["ci"].get(k) for k in keys},
                "clean_accuracy_same_images": accuracy_on(ev, name, CLEAN, idx),
                "white_box_accuracy_same_images": min(white) if white else None,
                "provider": res["provider"],
                "mean_queries": r["mean_queries"],
                "accuracy_curve": r["accuracy_curve"],
            }
        )


def certified_section(
    cfg: ExperimentConfig,
    ev: Evaluation,
    onnx_paths: dict[str, Path],
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict | None:
    """Model C's certificates (``certify_set``: onnxruntime, its own sigma, CertifyConfig's n0, n and alpha, seeded
    with the run's seed) on a fixed subset of ``cfg.certified_images`` test images, with the certified accuracy curve
    and its patient-level intervals; None unless Model C was trained with ``gaussian`` and exported."""
    if cfg.defence != "gaussian" or not cfg.certified_images or "C" not in onnx_paths:
        return None
    idx = fixed_subset(len(ev.data), cfg.certified_images, cfg.train.seed)
    log.info("certifying Model C (randomized smoothing) on %d test images", len(idx))
    section = certify_set(
        onnx_paths["C"], ev.data.images[idx], ev.data.labels[idx], groups=ev.groups[idx],
        config=CertifyConfig(seed=cfg.train.seed), bootstrap=ev.bootstrap, on_progress=on_progress, cancel=cancel,
    )  # fmt: skip
    return {**section, "model": "C", "file": section["model"], "images": f"a fixed subset of {len(idx)} test images"}


def finish(section: dict) -> dict:
    section["flags"] = masking_flags(section["rows"])
    for f in section["flags"]:
        log.warning("Model %s: possible gradient masking: %s", f["model"], f["message"])
    return section
