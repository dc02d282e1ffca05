"""The Stress page's set mode: every named model swept over eps on a labelled set, each attacked white-box on
its own gradients with the images' true labels (or pulled towards a target class), the adversarial images
rounded to 8 bits; the images whose call flipped are listed. Probabilities come from the evaluation core."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
from torch import nn

from engine.attacks.perturbation import Perturbation
from engine.core.calibration import with_temperature
from engine.core.config import AttackConfig
from engine.core.eps import format_eps
from engine.core.errors import ConfigError, ModelError, message
from engine.core.intervals import Bootstrap, metrics_with_intervals
from engine.core.metadata import ModelMeta
from engine.core.metrics import majority_baseline
from engine.core.progress import CancelToken, Progress, ProgressCallback, report
from engine.data.arrays import ArraySet
from engine.data.stain_norm import for_model
from engine.evaluate.core import Evaluation, intervals_record
from engine.export.match import load_attack_model
from engine.models.device import resolve_device
from engine.runs.images import ImageSource, LabelledImages, labelled_images
from engine.workflows.attack import _label_index, predicted

log = logging.getLogger(__name__)
DEFAULT_SET_EPS = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255)
DEFAULT_ATTACK = AttackConfig("fgsm")
CURVE_KEYS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "missed_cancer_rate", "n")


def stress_test_set(
    checkpoints: dict[str, str | Path],
    source: ImageSource,
    attack: AttackConfig = DEFAULT_ATTACK,
    *,
    eps_values=DEFAULT_SET_EPS,
    flip_eps: float | None = None,
    device: str = "auto",
    batch_size: int = 64,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Metrics against eps for every named model on ``source``'s images (eps 0, clean, always included).

    Returns {"curves": {name: [point per eps]}, "flips": images whose call at ``flip_eps`` (default the largest
    eps) differs from the clean one, "classes", "positive_class", "n", "paths", "attack", ...}. Each flip gives
    the true label, the model, the calls before and after, and the probability of each. With ``attack.target``
    every image is pulled towards that class: the missed-cancer rate with target 'benign' is the dangerous
    direction's success.
    """
    if not checkpoints:
        raise ConfigError("no model to stress-test; choose at least one checkpoint")
    eps_list = _eps_list(eps_values)
    flip_eps = eps_list[-1] if flip_eps is None else flip_eps
    if not any(abs(flip_eps - e) < 1e-9 for e in eps_list):
        raise ConfigError(f"flip eps {format_eps(flip_eps)} is not one of the eps values tested")
    attacks = {eps: attack.at(eps) for eps in eps_list}  # bad settings fail before anything is decoded
    models = {name: _load_named(name, path) for name, path in checkpoints.items()}
    sets = _labelled_sets(source, models, on_progress, cancel)
    progress = _Total(on_progress, sum(len(sets[m.image_size].arrays) for _, m in models.values()) * len(eps_list))
    dev = resolve_device(device)
    bootstrap = Bootstrap(seed=attack.seed)
    curves, flips = {}, []
    for name, (model, meta) in models.items():
        images = sets[meta.image_size]
        goal = _label_index(attack.target, images.classes) if attack.targeted else None
        seen = replace(images.arrays, images=for_model(meta, images.arrays.images))  # its stain normalisation
        ev = Evaluation({name: model.to(dev)}, seen, dev, batch_size, progress.for_stage, cancel)
        probs = {}
        for eps, cfg in attacks.items():
            progress.stage = f"{attack.method.upper()} on {name}, eps {format_eps(eps)}"
            probs[eps] = ev.probs(name, Perturbation(cfg, name, target=goal), stage=progress.stage)
        curves[name] = _curve(images.arrays, probs, bootstrap)
        shown = {e: with_temperature(p, meta.temperature) for e, p in probs.items()}  # the calls stay the same
        flips += _flips(name, images, shown[0.0], _at(shown, flip_eps), flip_eps)
        model.cpu()
    first = next(iter(sets.values()))
    y = first.arrays.labels
    return {
        "curves": curves,
        "flips": flips,
        "flip_eps": flip_eps,
        "eps_values": eps_list,
        "method": attack.method,
        "attack": attack,
        "steps": attack.n_steps if attack.info.iterative else None,
        "restarts": attack.n_restarts,
        "target": attack.target if attack.targeted else None,
        "classes": first.classes,
        "positive_class": first.classes[1],
        "majority_baseline": majority_baseline(y),
        "intervals": intervals_record(bootstrap, first.arrays),
        "n": int(len(y)),
        "paths": [str(p) for p in first.paths],
        "checkpoints": {name: str(path) for name, path in checkpoints.items()},
        "synthetic_data": first.synthetic,
    }


def _eps_list(eps_values) -> list[float]:
    values = sorted({0.0, *(float(e) for e in eps_values)})
    bad = [e for e in values if not 0 <= e <= 1]
    if bad:
        raise ConfigError(f"eps values {bad} are outside [0, 1]; give them in pixel units, e.g. 4/255")
    return values


def _at(probs: dict[float, np.ndarray], eps: float) -> np.ndarray:
    return next(p for e, p in probs.items() if abs(e - eps) < 1e-9)


def _load_named(name: str, path) -> tuple[nn.Module, ModelMeta]:
    try:
        return load_attack_model(path)
    except ModelError as exc:
        raise ModelError(f"Model {name}: {message(exc)}") from exc


def _labelled_sets(source: ImageSource, models: dict, on_progress, cancel) -> dict[int, LabelledImages]:
    """The images at each input size the models need, checked against each model's classes."""
    out: dict[int, LabelledImages] = {}
    for name, (_, meta) in models.items():
        try:
            if meta.image_size not in out:
                out[meta.image_size] = labelled_images(
                    source, meta.image_size, list(meta.classes), on_progress=on_progress, cancel=cancel
                )
            elif out[meta.image_size].classes != list(meta.classes):
                raise ModelError(f"the model's classes {list(meta.classes)} are not the images' labels")
        except ModelError as exc:
            raise ModelError(f"Model {name}: {message(exc)}") from exc
    return out


class _Total:
    """One progress bar over every (model, eps) pass: each pass counts its own images, this adds them up."""

    def __init__(self, on_progress: ProgressCallback | None, total: int) -> None:
        self.on_progress, self.total, self.base, self.stage = on_progress, total, 0, ""

    def for_stage(self, p: Progress) -> None:
        report(self.on_progress, self.stage, self.base + p.done, self.total, unit="images")
        if p.done >= p.total:
            self.base += p.total


def _curve(arrays: ArraySet, probs: dict[float, np.ndarray], bootstrap: Bootstrap) -> list[dict]:
    """One point per eps: the curve's metrics with their patient-level intervals, and how many calls flipped."""
    clean = predicted(probs[0.0])
    points = []
    for eps, p in probs.items():
        m = metrics_with_intervals(arrays.labels, p[:, 1], groups=arrays.patients, bootstrap=bootstrap)
        point = {"eps": eps, **{k: m[k] for k in CURVE_KEYS}, "ci": {k: m["ci"].get(k) for k in CURVE_KEYS[:-1]}}
        point.update(confusion_matrix=m["confusion_matrix"], n_flipped=int((predicted(p) != clean).sum()))
        points.append(point)
    return points


def _flips(name, images: LabelledImages, p_clean, p_adv, eps) -> list[dict]:
    before, after = predicted(p_clean), predicted(p_adv)
    labels, classes = images.arrays.labels, images.classes
    return [
        {
            "path": str(images.paths[i]),
            "label": classes[int(labels[i])],
            "model": name,
            "eps": eps,
            "clean_pred": classes[int(before[i])],
            "adv_pred": classes[int(after[i])],
            "p_clean": float(p_clean[i, before[i]]),
            "p_adv": float(p_adv[i, after[i]]),
        }
        for i in np.flatnonzero(before != after)
    ]
