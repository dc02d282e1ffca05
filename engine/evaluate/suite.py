"""The robustness section of a run's report: the attack table, per-image minimal eps, the black-box
Square attack on each exported ONNX file, and the gradient-masking flags drawn from all of them."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from engine.core.config import ExperimentConfig
from engine.core.progress import CancelToken, ProgressCallback
from engine.data.arrays import ArraySet
from engine.evaluate.masking import masking_flags
from engine.evaluate.min_eps import min_eps_summary, minimal_eps
from engine.evaluate.robustness import RobustnessEvaluator, RobustnessPlan, plan_dict

log = logging.getLogger(__name__)


def robustness_plan(cfg: ExperimentConfig) -> RobustnessPlan:
    return RobustnessPlan(
        eps_values=tuple(e for e in cfg.sweep_eps if e > 0),
        attacks=cfg.robust_attacks,
        steps=cfg.pgd_steps,
        restarts=cfg.pgd_restarts,
        seed=cfg.train.seed,
    )


def robustness_section(
    cfg: ExperimentConfig,
    models: dict[str, nn.Module],
    test: ArraySet,
    device: torch.device,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[dict, RobustnessEvaluator]:
    """White-box, transfer, baseline and natural rows plus minimal eps; black-box rows are added by
    ``add_blackbox`` once the ONNX files exist, and ``finish`` draws the flags."""
    plan = robustness_plan(cfg)
    ev = RobustnessEvaluator(models, test, device, cfg.eval_batch_size, on_progress, cancel)
    rows = ev.run(plan)
    min_eps = {}
    if cfg.min_eps_max:
        for name, model in models.items():
            values = minimal_eps(
                model,
                test,
                device,
                max_k=cfg.min_eps_max,
                steps=cfg.pgd_steps,
                seed=cfg.train.seed,
                batch_size=cfg.eval_batch_size,
                name=f"Model {name}",
                on_progress=on_progress,
                cancel=cancel,
            )
            min_eps[name] = min_eps_summary(values, cfg.min_eps_max)
    return {"plan": plan_dict(plan), "rows": rows, "min_eps": min_eps, "flags": []}, ev


def add_blackbox(
    section: dict,
    ev: RobustnessEvaluator,
    cfg: ExperimentConfig,
    onnx_paths: dict[str, Path],
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """Square attack (queries only, onnxruntime) on each ONNX file at ``cfg.eps``, compared with the
    white-box attacks on the same images."""
    from engine.blackbox import blackbox_stress, fixed_subset

    if not cfg.blackbox_images or not onnx_paths:
        return
    idx = fixed_subset(len(ev.test), cfg.blackbox_images, cfg.train.seed)
    for name, path in onnx_paths.items():
        res = blackbox_stress(
            path,
            ev.test.images[idx],
            ev.test.labels[idx],
            eps_values=[cfg.eps],
            n_queries=cfg.blackbox_queries,
            seed=cfg.train.seed,
            on_progress=on_progress,
            cancel=cancel,
        )
        r = res["results"][0]
        white = [ev.accuracy_on(name, a, name, cfg.eps, idx) for a in cfg.robust_attacks]
        white = [w for w in white if w is not None]
        section["rows"].append(
            {
                "model": name,
                "attack": "square",
                "kind": "black-box",
                "source": None,
                "eps": cfg.eps,
                "steps": cfg.blackbox_queries,
                "restarts": 1,
                **{k: r[k] for k in ("accuracy", "sensitivity", "specificity", "missed_cancer_rate")},
                "balanced_accuracy": r["balanced_accuracy"],
                "confusion_matrix": r["confusion_matrix"],
                "n": r["n"],
                "clean_accuracy_same_images": ev.accuracy_on(name, "none", None, 0.0, idx),
                "white_box_accuracy_same_images": min(white) if white else None,
                "provider": res["provider"],
                "mean_queries": r["mean_queries"],
                "accuracy_curve": r["accuracy_curve"],
            }
        )


def finish(section: dict) -> dict:
    section["flags"] = masking_flags(section["rows"])
    for f in section["flags"]:
        log.warning("Model %s: possible gradient masking: %s", f["model"], f["message"])
    return section

