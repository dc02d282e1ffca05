"""``histoguard evaluate``: one checkpoint on a dataset split: clean metrics, the study's FGSM conditions, and the
robustness evaluation of ``histoguard experiment`` (white-box FGSM and PGD on the margin loss at every eps, random
noise and natural perturbations, the worst case over the attacks, gradient-masking flags). FGSM alone is not
enough: it is exactly what fools itself on an adversarially trained model (catastrophic overfitting)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.core.config import ExperimentConfig
from engine.core.progress import CancelToken, ProgressCallback
from engine.data.arrays import ArraySet
from engine.data.prepare import PreparedData, prepare_data
from engine.data.split import split_hash
from engine.data.stain_norm import for_model
from engine.evaluate.conditions import entry, sweep
from engine.evaluate.core import Evaluation, intervals_record
from engine.evaluate.masking import masking_flags
from engine.evaluate.robustness import plan_dict, robustness_rows
from engine.evaluate.suite import add_strong, robustness_plan
from engine.models.checkpoint import load_checkpoint
from engine.models.device import resolve_device

log = logging.getLogger(__name__)


def evaluate_checkpoint(
    model_path: str | Path,
    cfg: ExperimentConfig,
    *,
    split: str = "test",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Clean, FGSM and robustness metrics of one checkpoint on a dataset split (``all`` for every image)."""
    model, meta = load_checkpoint(model_path)
    device = resolve_device(cfg.train.device)
    model.to(device)
    data = prepare_data(cfg.data, meta.image_size, on_progress=on_progress, cancel=cancel)
    same_split = meta.split_hash == split_hash(data.dataset, data.split)
    if split != "all" and meta.split_hash and not same_split:
        log.warning(
            "this split differs from the one %s was trained with, so its '%s' images may include training "
            "patients; evaluate it on its run's own split (the run folder's split.csv)",
            Path(model_path).name,
            split,
        )
    test = _all_arrays(data) if split == "all" else data.arrays(split)
    test = replace(test, images=for_model(meta, test.images))  # the model's stain normalisation (none: as they are)
    ev = Evaluation({"M": model}, test, device, cfg.eval_batch_size, on_progress, cancel, bootstrap=cfg.bootstrap())
    evaluations = [entry(ev, "M", s, cfg.eps, level) for level in ("image", "patient") for s in (None, "M")]
    plan = robustness_plan(cfg)
    robustness = {"plan": plan_dict(plan), "rows": robustness_rows(ev, plan)}
    add_strong(robustness, cfg, ev)
    robustness["flags"] = masking_flags(robustness["rows"])
    return {
        "model": str(model_path),
        "metadata": meta.to_dict(),
        "split": split,
        "split_matches_training": same_split,
        "eps": cfg.eps,
        "intervals": intervals_record(ev.bootstrap, test),
        "evaluations": evaluations,
        "sweep": sweep(ev, cfg.sweep_eps, pairs=(("M", "M"),)),
        "robustness": robustness,
        "dataset": data.dataset.summary(),
    }


def _all_arrays(data: PreparedData) -> ArraySet:
    patients = np.array([r.patient_id or f"image-{i}" for i, r in enumerate(data.dataset.records)], dtype=object)
    return ArraySet(np.asarray(data.decoded.images), data.decoded.labels, patients)
