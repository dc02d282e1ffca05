"""White-box attacks of single images: one image for the Stress page (and one slide tile), or many files
written as adversarial PNGs (``histoguard attack``).

Adversarial images are rounded to 8 bits (what a saved PNG holds, and what the page shows), so the predictions
reported are those of images a user could look at. ONNX files carry no gradients: they are attacked through the
torch checkpoint they were exported from, after checking that the two belong together.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from engine.attacks import attack_from
from engine.attacks.perturbation import quantised
from engine.core.calibration import with_temperature
from engine.core.config import AttackConfig
from engine.core.errors import ConfigError, DecodeError
from engine.core.fileio import atomic_open
from engine.core.metadata import ModelMeta
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.decode import decode_image
from engine.data.inputs import collect_images
from engine.data.stain_norm import for_model
from engine.evaluate.core import softmax
from engine.export.match import load_attack_model
from engine.models.device import resolve_device
from engine.models.tensors import to_tensor, to_uint8

log = logging.getLogger(__name__)


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
    attack: AttackConfig,
    *,
    label: int | str | None = None,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Attack one image (white-box) and return what the page shows (see ``attack_array``), with "image_path" and
    "model". ``checkpoint``: a .pt file, or an .onnx file whose checkpoint lies beside it in its run folder."""
    report(on_progress, f"attack ({attack.method})", 0, 1, unit="images")
    model, meta = load_attack_model(checkpoint)
    clean = decode_image(image_path, meta.image_size)
    check_cancel(cancel, "attack")
    result = attack_array(model, meta, clean, attack, label=label, device=device)
    report(on_progress, f"attack ({attack.method})", 1, 1, unit="images")
    return {"image_path": str(image_path), "model": str(checkpoint), **result}


def attack_array(
    model: nn.Module,
    meta: ModelMeta,
    clean: np.ndarray,
    attack: AttackConfig,
    *,
    label: int | str | None = None,
    device: str = "auto",
) -> dict:
    """One image in memory (``clean``: (H, W, 3) uint8 at the model's input size) attacked with ``attack``.

    ``original`` and ``adversarial`` are (H, W, 3) uint8; ``perturbation`` is the signed difference in pixel
    units (within [-eps, eps]) and ``perturbation_view`` its picture, scaled by ``view_scale`` (eps; for an L2
    attack the largest pixel change). The label attacked is ``attack.target``
    (targeted: pulled towards it), else ``label`` (a class name or index, e.g. the true label), else the
    model's own clean call (pushed away). ``linf`` is max |delta| in pixel units (k/255). ``probs_clean`` and
    ``probs_adv`` are calibrated with the model's temperature, as the Diagnose page shows them (the attack
    itself works on the logits; no call changes).
    """
    fn = attack_from(attack)
    dev = resolve_device(device)
    model.to(dev)
    classes = list(meta.classes)
    clean = for_model(meta, clean)  # the model's stain normalisation first: the attack acts on what the model sees
    x = to_tensor(clean[None], dev)
    p_clean = softmax(model, x)[0]
    if attack.targeted:
        goal = _label_index(attack.target, classes)
    else:
        goal = _label_index(label, classes) if label is not None else int(predicted(p_clean)[0])
    x_adv = x if fn is None else quantised(fn(model, x, torch.tensor([goal], device=dev)))
    p_adv = softmax(model, x_adv)[0]
    adv = to_uint8(x_adv)[0]
    delta = (adv.astype(np.int16) - clean.astype(np.int16)).astype(np.float32) / 255.0
    linf = float(np.abs(delta).max())
    # the picture's scale: the L-inf ball; an L2 change is spread thin, so its picture is scaled by its largest pixel
    scale = linf if attack.info.norm == "l2" and linf > 0 else attack.eps
    pred_clean, pred_adv = classes[int(predicted(p_clean)[0])], classes[int(predicted(p_adv)[0])]
    p_clean, p_adv = with_temperature(np.stack([p_clean, p_adv]), meta.temperature)
    return {
        "method": attack.method,
        "eps": attack.eps,
        "attack": attack,
        "original": clean,
        "adversarial": adv,
        "perturbation": delta,
        "perturbation_view": perturbation_view(delta, scale),
        "view_scale": scale,
        "classes": classes,
        "positive_class": meta.positive_class,
        "probs_clean": [float(p) for p in p_clean],
        "probs_adv": [float(p) for p in p_adv],
        "pred_clean": pred_clean,
        "pred_adv": pred_adv,
        "flipped": pred_clean != pred_adv,
        "linf": linf,
        "label_attacked": classes[goal],
        "targeted": fn is not None and attack.targeted,
    }


def _label_index(label: int | str, classes: list[str]) -> int:
    if isinstance(label, str):
        if label not in classes:
            raise ConfigError(f"label {label!r} is not one of the model's classes {classes}")
        return classes.index(label)
    if not 0 <= int(label) < len(classes):
        raise ConfigError(f"label index {label} is out of range for the classes {classes}")
    return int(label)


def attack_files(
    model_path: str | Path,
    inputs: list,
    out_dir: str | Path,
    attack: AttackConfig,
    *,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[dict]:
    """Write an adversarial PNG of every input image (at the model's input size) into ``out_dir``: one row per
    image with the predictions before and after (or the reason it could not be read)."""
    model, meta = load_attack_model(model_path)
    if attack.targeted:
        _label_index(attack.target, list(meta.classes))  # a wrong class fails before any image is attacked
    out_dir = Path(out_dir)
    paths, rows = collect_images(inputs), []
    for i, path in enumerate(paths, start=1):
        check_cancel(cancel, "attack")
        rows.append(_attack_file(model, meta, path, out_dir, attack, device))
        report(on_progress, f"attack ({attack.method})", i, len(paths), unit="images")
    return rows


def _attack_file(model, meta: ModelMeta, path: Path, out_dir: Path, attack: AttackConfig, device: str) -> dict:
    try:
        clean = decode_image(path, meta.image_size)
    except DecodeError as exc:
        log.warning("%s", exc)
        return {"path": str(path), "error": str(exc)}
    r = attack_array(model, meta, clean, attack, device=device)
    target = out_dir / f"{path.stem}_{attack.method}.png"
    with atomic_open(target, "wb") as handle:
        Image.fromarray(r["adversarial"]).save(handle, format="PNG")
    return {
        "path": str(path),
        "adversarial": str(target),
        "clean_pred": r["pred_clean"],
        "clean_prob": max(r["probs_clean"]),
        "adv_pred": r["pred_adv"],
        "adv_prob": max(r["probs_adv"]),
        "error": "",
    }
