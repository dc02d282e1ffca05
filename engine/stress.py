"""Stress tests behind the Stress-test page: one image attacked, or several models swept over eps on a set.

White-box throughout: each model is attacked on its own gradients. Adversarial images are rounded to
8 bits (what a saved PNG holds, and what the page shows), so the predictions reported are those of the
images a user could look at. ONNX files carry no gradients: they are attacked through the torch
checkpoint they were exported from, after checking that the two belong together.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.attacks import ATTACK_INFO
from engine.attacks import make_attack as registry_attack
from engine.core.config import ExperimentConfig
from engine.core.eps import format_eps
from engine.core.errors import ConfigError, DataError, ModelError, RunFolderError
from engine.core.metrics import binary_metrics
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.arrays import ArraySet, batches
from engine.data.cache import decode_dataset
from engine.data.decode import decode_image
from engine.data.discover import discover
from engine.data.prepare import prepare_data
from engine.data.split import SPLITS
from engine.export.match import load_attack_model
from engine.models.device import resolve_device
from engine.models.tensors import to_tensor, to_uint8

log = logging.getLogger(__name__)
DEFAULT_SET_EPS = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255)
CURVE_KEYS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "missed_cancer_rate", "n")


# --- attacks -----------------------------------------------------------------------------------------
def make_attack(
    method: str,
    eps: float,
    steps: int = 10,
    alpha: float | None = None,
    seed: int = 0,
    restarts: int = 1,
    targeted: bool = False,
):
    """``attack(model, x, y)`` for ``method`` at ``eps`` (None at eps 0: the clean images), checked now."""
    if not 0 <= eps <= 1:
        raise ConfigError(f"eps {eps} is outside [0, 1]; give it in pixel units, e.g. 4/255")
    kwargs = {"steps": steps, "alpha": alpha, "restarts": restarts, "seed": seed, "targeted": targeted}
    if eps == 0:
        registry_attack(method, 1 / 255, **kwargs)  # the name and settings are still checked
        return None
    return registry_attack(method, eps, **kwargs)


def _quantised(x: torch.Tensor) -> torch.Tensor:
    """Round to 8-bit levels, as a saved PNG would."""
    return x.mul(255.0).round_().div_(255.0)


@torch.no_grad()
def _softmax(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    return torch.softmax(model(x).float(), dim=1).cpu().numpy()


def predicted(probs: np.ndarray) -> np.ndarray:
    """Class index per row; for two classes the rule of the metrics (p(positive) >= 0.5)."""
    probs = np.atleast_2d(probs)
    return (probs[:, 1] >= 0.5).astype(np.int64) if probs.shape[1] == 2 else probs.argmax(1)


def perturbation_view(delta: np.ndarray, eps: float) -> np.ndarray:
    """uint8 picture of a signed perturbation: 0.5 + delta / (2 eps), so -eps is black, +eps white, grey none."""
    if eps <= 0:
        return np.full(delta.shape, 128, dtype=np.uint8)
    return np.round(np.clip(0.5 + delta / (2 * eps), 0, 1) * 255).astype(np.uint8)


def attack_image(
    checkpoint: str | Path,
    image_path: str | Path,
    *,
    method: str = "fgsm",
    eps: float,
    steps: int = 10,
    alpha: float | None = None,
    seed: int = 0,
    restarts: int = 1,
    label: int | str | None = None,
    target: str | None = None,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Attack one image (white-box) and return what the page shows.

    ``original`` and ``adversarial`` are (H, W, 3) uint8 at the model's input size; ``perturbation`` is the
    signed difference adversarial - original as float32 in pixel units (within [-eps, eps]);
    ``perturbation_view`` is it amplified to the full uint8 range (see ``perturbation_view``). The label
    attacked is ``label`` (class name or index, e.g. the true label) or, when None, the model's own clean
    prediction (untargeted: push it away). With ``target`` (a class name) the attack is targeted: it pulls
    the image towards that class (malignant -> benign is the dangerous direction). ``linf`` is max |delta|
    in pixel units (k/255).
    """
    make_attack(method, eps, steps, alpha, seed, restarts, targeted=target is not None)  # bad settings fail first
    report(on_progress, f"attack ({method})", 0, 1, unit="images")
    model, meta = load_attack_model(checkpoint)
    clean = decode_image(image_path, meta["image_size"])
    check_cancel(cancel, "attack")
    settings = {"steps": steps, "alpha": alpha, "seed": seed, "restarts": restarts, "label": label, "target": target}
    result = attack_array(model, meta, clean, method=method, eps=eps, device=device, **settings)
    report(on_progress, f"attack ({method})", 1, 1, unit="images")
    return {"image_path": str(image_path), "model": str(checkpoint), **result}


def attack_array(
    model: nn.Module,
    meta: dict,
    clean: np.ndarray,
    *,
    method: str = "fgsm",
    eps: float,
    steps: int = 10,
    alpha: float | None = None,
    seed: int = 0,
    restarts: int = 1,
    label: int | str | None = None,
    target: str | None = None,
    device: str = "auto",
) -> dict:
    """``attack_image`` on an image already in memory: ``clean`` is (H, W, 3) uint8 at the model's input size,
    ``model``/``meta`` a loaded attack model (``load_attack_model``). The image and slide-tile attacks share it."""
    attack = make_attack(method, eps, steps, alpha, seed, restarts, targeted=target is not None)
    dev = resolve_device(device)
    model.to(dev)
    classes = list(meta["classes"])
    x = to_tensor(clean[None], dev)
    p_clean = _softmax(model, x)[0]
    if target is not None:
        target = _label_index(target, classes)
    else:
        target = _label_index(label, classes) if label is not None else int(predicted(p_clean)[0])
    x_adv = x if attack is None else _quantised(attack(model, x, torch.tensor([target], device=dev)))
    p_adv = _softmax(model, x_adv)[0]
    adv = to_uint8(x_adv)[0]
    delta = (adv.astype(np.int16) - clean.astype(np.int16)).astype(np.float32) / 255.0
    pred_clean, pred_adv = classes[int(predicted(p_clean)[0])], classes[int(predicted(p_adv)[0])]
    return {
        "method": method,
        "eps": eps,
        "original": clean,
        "adversarial": adv,
        "perturbation": delta,
        "perturbation_view": perturbation_view(delta, eps),
        "classes": classes,
        "positive_class": meta.get("positive_class", classes[-1]),
        "probs_clean": [float(p) for p in p_clean],
        "probs_adv": [float(p) for p in p_adv],
        "pred_clean": pred_clean,
        "pred_adv": pred_adv,
        "flipped": pred_clean != pred_adv,
        "linf": float(np.abs(delta).max()),
        "label_attacked": classes[target],
        "targeted": attack is not None and target is not None and bool(attack.keywords.get("targeted")),
    }


def _label_index(label: int | str, classes: list[str]) -> int:
    if isinstance(label, str):
        if label not in classes:
            raise ConfigError(f"label {label!r} is not one of the model's classes {classes}")
        return classes.index(label)
    if not 0 <= int(label) < len(classes):
        raise ConfigError(f"label index {label} is out of range for the classes {classes}")
    return int(label)


# --- a set of images ---------------------------------------------------------------------------------
def stress_test_set(
    checkpoints: dict[str, str | Path],
    images: dict,
    *,
    method: str = "fgsm",
    eps_values=DEFAULT_SET_EPS,
    steps: int = 10,
    alpha: float | None = None,
    seed: int = 0,
    restarts: int = 1,
    target: str | None = None,
    flip_eps: float | None = None,
    device: str = "auto",
    batch_size: int = 64,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Metrics against eps for every named model, each attacked white-box with the images' true labels.

    ``images``: {"run": run_dir} (its test split; {"run": ..., "split": "val"} for another one) or
    {"folder": path} (every image of a labelled folder, <class>/<image>). Eps 0 (clean) is always included.
    Returns {"curves": {name: [point per eps]}, "flips": images whose prediction at ``flip_eps`` (default
    the largest eps) differs from the clean one, "classes", "positive_class", "n", "paths", ...}. Each flip
    gives the true label, the model, the predictions before and after, and the probability of each.
    With ``target`` (a class name) the attack is targeted: every image is pulled towards that class, so
    the missed-cancer rate with target 'benign' is the dangerous direction's success.
    """
    if not checkpoints:
        raise ConfigError("no model to stress-test; choose at least one checkpoint")
    eps_list = _eps_list(eps_values)
    flip_eps = eps_list[-1] if flip_eps is None else flip_eps
    if not any(abs(flip_eps - e) < 1e-9 for e in eps_list):
        raise ConfigError(f"flip eps {format_eps(flip_eps)} is not one of the eps values tested")
    settings = {"steps": steps, "alpha": alpha, "seed": seed, "restarts": restarts, "targeted": target is not None}
    for eps in eps_list:
        make_attack(method, eps, **settings)  # bad settings fail before anything is decoded
    models = {name: _load_named(name, path) for name, path in checkpoints.items()}
    dev = resolve_device(device)
    sets = _labelled_sets(images, models, on_progress, cancel)
    total = sum(len(sets[meta["image_size"]][0]) for _, meta in models.values()) * len(eps_list)
    progress = _Progress(on_progress, total)
    curves, flips = {}, []
    for name, (model, meta) in models.items():
        data, paths, classes = sets[meta["image_size"]]
        model.to(dev)
        probs = {}
        for eps in eps_list:
            stage = f"{method.upper()} on {name}, eps {format_eps(eps)}"
            attack = make_attack(method, eps, **settings)
            goal = None if target is None else _label_index(target, classes)
            probs[eps] = _set_probs(model, data, dev, attack, batch_size, stage, progress, cancel, goal)
        curves[name] = _curve(data.labels, probs)
        flips += _flips(name, data.labels, probs[0.0], _at(probs, flip_eps), flip_eps, paths, classes)
        model.cpu()
    first = next(iter(sets.values()))
    y, classes = first[0].labels, first[2]
    return {
        "curves": curves,
        "flips": flips,
        "flip_eps": flip_eps,
        "eps_values": eps_list,
        "method": method,
        "steps": steps if ATTACK_INFO[method].iterative else None,
        "restarts": restarts,
        "target": target,
        "classes": classes,
        "positive_class": classes[1],
        "majority_baseline": binary_metrics(y, np.zeros(len(y)))["majority_baseline"],
        "n": int(len(y)),
        "paths": [str(p) for p in first[1]],
        "checkpoints": {name: str(path) for name, path in checkpoints.items()},
    }


def blackbox_images(
    onnx: str | Path,
    images: dict,
    *,
    eps_values=(8 / 255,),
    n_queries: int = 300,
    limit: int = 100,
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """The Square attack (queries only) on an ONNX file over ``images`` ({"run": run folder}: its test split,
    or {"folder": labelled folder}), at most ``limit`` of them (a fixed random subset); eps 0 (clean) is
    added. Returns ``blackbox_stress``'s result with "model", "classes" and "n_images"."""
    from engine.blackbox import blackbox_stress, fixed_subset, onnx_model_info

    classes, size = onnx_model_info(onnx)
    meta = {"image_size": size, "classes": classes, "positive_class": classes[1]}
    data, _, _ = _labelled_sets(images, {Path(onnx).name: (None, meta)}, on_progress, cancel)[size]
    keep = fixed_subset(len(data), limit, seed)
    eps = [0.0, *(float(e) for e in eps_values if e > 0)]
    result = blackbox_stress(
        onnx,
        data.images[keep],
        data.labels[keep],
        eps_values=eps,
        n_queries=n_queries,
        seed=seed,
        on_progress=on_progress,
        cancel=cancel,
    )
    return {**result, "model": str(onnx), "classes": classes, "n_images": len(keep)}


def _eps_list(eps_values) -> list[float]:
    values = sorted({0.0, *(float(e) for e in eps_values)})
    bad = [e for e in values if not 0 <= e <= 1]
    if bad:
        raise ConfigError(f"eps values {bad} are outside [0, 1]; give them in pixel units, e.g. 4/255")
    return values


def _at(probs: dict[float, np.ndarray], eps: float) -> np.ndarray:
    return next(p for e, p in probs.items() if abs(e - eps) < 1e-9)


def _load_named(name: str, path) -> tuple[nn.Module, dict]:
    try:
        return load_attack_model(path)
    except ModelError as exc:
        raise ModelError(f"Model {name}: {exc}") from exc


class _Progress:
    """One progress bar over every (model, eps) pass."""

    def __init__(self, on_progress: ProgressCallback | None, total: int) -> None:
        self.on_progress, self.total, self.done = on_progress, total, 0

    def add(self, stage: str, n: int) -> None:
        self.done += n
        report(self.on_progress, stage, self.done, self.total, unit="images")


def _set_probs(model, data: ArraySet, dev, attack, batch_size: int, stage: str, progress: _Progress, cancel, goal=None):
    """Probabilities on the (attacked) set; ``goal`` is the target class of a targeted attack."""
    out = []
    for idx in batches(len(data), batch_size):
        check_cancel(cancel, "stress test")
        x = to_tensor(data.images[idx], dev)
        if attack is not None:
            y = torch.from_numpy(data.labels[idx]) if goal is None else torch.full((len(idx),), goal)
            x = _quantised(attack(model, x, y.to(dev)))
        out.append(_softmax(model, x))
        progress.add(stage, len(idx))
    return np.concatenate(out)


def _curve(labels: np.ndarray, probs: dict[float, np.ndarray]) -> list[dict]:
    clean = predicted(probs[0.0])
    points = []
    for eps, p in probs.items():
        m = binary_metrics(labels, p[:, 1])
        point = {"eps": eps, **{k: m[k] for k in CURVE_KEYS}}
        point.update(confusion_matrix=m["confusion_matrix"], n_flipped=int((predicted(p) != clean).sum()))
        points.append(point)
    return points


def _flips(name, labels, p_clean, p_adv, eps, paths, classes) -> list[dict]:
    before, after = predicted(p_clean), predicted(p_adv)
    return [
        {
            "path": str(paths[i]),
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


def _labelled_sets(images: dict, models: dict, on_progress, cancel) -> dict[int, tuple[ArraySet, list, list]]:
    """(arrays, paths, classes) per input size the models need, checked against each model's classes."""
    if not isinstance(images, dict) or not ({"run", "folder"} & set(images)):
        raise ConfigError("images must be {'run': run folder} (its test split) or {'folder': labelled folder}")
    out = {}
    for name, (_, meta) in models.items():
        size = meta["image_size"]
        if size not in out:
            out[size] = (_run_split if "run" in images else _folder_set)(images, meta, on_progress, cancel)
        if list(meta["classes"]) != out[size][2]:
            raise ModelError(
                f"Model {name} was trained on the classes {list(meta['classes'])} but the images are labelled "
                f"{out[size][2]}; choose images of the same classes"
            )
    return out


def _run_split(images: dict, meta: dict, on_progress, cancel) -> tuple[ArraySet, list, list]:
    run, split = Path(images["run"]), images.get("split", "test")
    if split not in SPLITS:
        raise ConfigError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    for name in ("config.json", "split.csv"):
        if not (run / name).is_file():
            raise RunFolderError(
                f"{run} has no {name}, so its {split} split is unknown; open a run folder made by the Train page "
                "or by `histoguard experiment`"
            )
    try:
        cfg = ExperimentConfig.from_dict(json.loads((run / "config.json").read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise RunFolderError(f"{run / 'config.json'} cannot be read ({exc})") from exc
    data = prepare_data(
        cfg.data, meta["image_size"], split_file=run / "split.csv", on_progress=on_progress, cancel=cancel
    )
    idx = data.split.indices(split)
    if not idx:
        raise DataError(f"the {split} split of {run} has no images")
    return data.arrays(split), [data.dataset.records[i].path for i in idx], list(data.dataset.classes)


def _folder_set(images: dict, meta: dict, on_progress, cancel) -> tuple[ArraySet, list, list]:
    folder = Path(images["folder"])
    try:
        dataset = discover(folder, positive_class=meta.get("positive_class", meta["classes"][-1]))
    except DataError as exc:
        raise DataError(
            f"a stress test needs labelled images (class sub-folders <folder>/<class>/<image>): {exc}"
        ) from exc
    decoded = decode_dataset(dataset, meta["image_size"], on_progress=on_progress, cancel=cancel)
    if not len(decoded.labels):
        raise DataError(f"no image in {folder} could be decoded")
    arrays = ArraySet(np.asarray(decoded.images), decoded.labels)
    return arrays, [r.path for r in decoded.dataset.records], list(decoded.dataset.classes)
