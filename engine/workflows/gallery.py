"""The report's gallery: for each model a few test images it called right, a few it called wrong and a few that the
robustness evaluation's white-box attack flipped at the report's eps (the adversarial image beside the original),
each with its attribution map and the randomisation check (Adebayo et al.) of that map. Every map explains the
model's call on its image: on an adversarial image the new, wrong call (the original's class often has no positive
Grad-CAM evidence left there, which would show as a blank map).

Grad-CAM (one forward and one backward pass per map, ``engine.explain``) is the method; occlusion (about 50 forward
passes) where Grad-CAM cannot run (a model with no convolution). Images are picked at random with the run's seed;
the flipped ones among a fixed pool of correctly called images attacked with the evaluation's settings (the attack,
its steps, restarts, loss and seed; ``engine.evaluate.suite.robustness_plan``), rounded to 8 bits as every
adversarial image the evaluation judges. Nothing is written here: ``gallery_section`` returns the report's record
(file names relative to the run folder) and the files' bytes, which the report writer stores with the report.
"""

from __future__ import annotations

import io
import logging
import time

import numpy as np
from PIL import Image
from torch import nn

from engine.attacks.perturbation import CLEAN, adversarial_images
from engine.core.catalog import ATTACK_INFO, EXPLAIN_INFO
from engine.core.config import AttackConfig, ExperimentConfig
from engine.core.errors import ModelError
from engine.core.metadata import ModelMeta
from engine.core.progress import check_cancel, report
from engine.data.arrays import ArraySet
from engine.deploy.explain_run import OPACITY, explain_image
from engine.deploy.saliency import SANITY_THRESHOLD, overlay_png
from engine.evaluate.core import Evaluation, softmax
from engine.evaluate.suite import robustness_plan
from engine.explain import TorchExplainer
from engine.models.tensors import to_tensor

log = logging.getLogger(__name__)
CATEGORIES = ("correct", "wrong", "flipped")
PER_CATEGORY = 3  # images per category and model
POOL = 24  # at most this many correctly called images are attacked to find the flipped ones,
CHUNK = 8  # this many at a time, until PER_CATEGORY flipped
MIN_SIDE = 128  # the gallery's PNGs are enlarged (nearest neighbour) to at least this many pixels a side
STAGE = "report gallery"


def gallery_attack(cfg: ExperimentConfig) -> AttackConfig:
    """The robustness evaluation's strongest L-inf white-box attack (PGD when it ran) at the report's eps."""
    linf = [a for a in cfg.robust_attacks if ATTACK_INFO[a].kind == "white-box" and ATTACK_INFO[a].norm == "linf"]
    name = "pgd" if "pgd" in linf else (linf[-1] if linf else "pgd")
    return robustness_plan(cfg).attack(name, cfg.eps)


def gallery_section(
    cfg: ExperimentConfig,
    ev: Evaluation,
    metas: dict[str, ModelMeta],
    names: list[str] | None = None,
) -> tuple[dict | None, dict[str, bytes]]:
    """(the report's "gallery" record, {file name in the run folder: PNG/NPZ bytes}); (None, {}) when switched off.
    ``ev``: the test set's evaluation (its clean probabilities pick the images); ``names``: the test images' file
    names, in the set's order."""
    if not cfg.gallery or not len(ev.data):
        return None, {}
    t0 = time.perf_counter()
    attack = gallery_attack(cfg)
    files: dict[str, bytes] = {}
    models = {}
    for i, (name, model) in enumerate(ev.models.items()):
        report(ev.on_progress, STAGE, i, len(ev.models), unit="models")
        models[name] = _model_gallery(name, model, metas[name], ev, attack, cfg.train.seed, names, files)
    report(ev.on_progress, STAGE, len(ev.models), len(ev.models), unit="models")
    seconds = round(time.perf_counter() - t0, 2)
    log.info("report gallery: %d images of %d models in %.1f s", sum(len(m["items"]) for m in models.values()),
             len(models), seconds)  # fmt: skip
    record = {
        "attack": {"method": attack.method, "eps": attack.eps, "describe": attack.describe()},
        "per_category": PER_CATEGORY, "pool": POOL, "sanity_threshold": SANITY_THRESHOLD, "opacity": OPACITY,
        "models": models, "seconds": seconds,
    }  # fmt: skip
    return record, files


def _model_gallery(name, model, meta, ev, attack, seed, names, files) -> dict:
    grads = [p.requires_grad for p in model.parameters()]
    try:
        explainer = _explainer(model, meta, ev)
        picked = _pick(ev, name, seed)
        adversarial, attacked = _flipped(model, ev, picked["candidates"], attack)
        picked["flipped"] = list(adversarial)
        folder = f"gallery/model_{name.lower()}"
        items, maps = [], {}
        for category in CATEGORIES:
            for k, idx in enumerate(picked[category], start=1):
                check_cancel(ev.cancel, STAGE)
                stem = f"{folder}/{category}_{k}"
                adv = adversarial[idx] if category == "flipped" else None
                items.append(_item(explainer, ev, idx, category, stem, names, files, maps, adv))
    finally:
        for p, g in zip(model.parameters(), grads):
            p.requires_grad_(g)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **maps)
    files[f"{folder}/maps.npz"] = buffer.getvalue()
    checks = [c for it in items for c in (it["sanity"], it.get("sanity_adversarial")) if c]
    rhos = [c["rank_correlation"] for c in checks]
    return {
        "method": explainer.method, "label": EXPLAIN_INFO[explainer.method].label, "settings": explainer.settings(),
        "items": items, "attacked": attacked, "maps": f"{folder}/maps.npz",
        "sanity": {"passed": sum(c["passed"] for c in checks), "of": len(checks),
                   "flat": sum(bool(c.get("inconclusive")) for c in checks),
                   "median_rank_correlation": float(np.median(rhos)) if rhos else None},
    }  # fmt: skip


def _explainer(model: nn.Module, meta: ModelMeta, ev: Evaluation) -> TorchExplainer:
    """Grad-CAM on the model, or occlusion when it has no convolution for Grad-CAM."""
    explainer = TorchExplainer(model, meta, "gradcam", device=str(ev.device))
    try:
        explainer.settings()  # finds Grad-CAM's layer
        return explainer
    except ModelError as exc:
        log.info("report gallery: %s; occlusion instead", exc)
        return TorchExplainer(model, meta, "occlusion", device=str(ev.device))


def _pick(ev: Evaluation, name: str, seed: int) -> dict:
    """Test indices, in a random order of the run's seed: ``PER_CATEGORY`` called right, ``PER_CATEGORY`` called
    wrong, and the pool of ``POOL`` other right ones to attack."""
    order = np.random.default_rng(seed).permutation(len(ev.data))
    right = ev.correct(name, CLEAN, stage=STAGE)[order]
    correct, wrong = order[right], order[~right]
    return {"correct": [int(i) for i in correct[:PER_CATEGORY]], "wrong": [int(i) for i in wrong[:PER_CATEGORY]],
            "candidates": [int(i) for i in correct[PER_CATEGORY : PER_CATEGORY + POOL]]}  # fmt: skip


def _flipped(model, ev: Evaluation, idx: list[int], attack: AttackConfig) -> tuple[dict[int, np.ndarray], int]:
    """({test index: its 8-bit adversarial image} for the first ``PER_CATEGORY`` images of ``idx`` whose call the
    attack flipped (the model's call on the saved 8-bit image), how many were attacked): ``CHUNK`` at a time until
    enough flipped."""
    found: dict[int, np.ndarray] = {}
    attacked = 0
    for start in range(0, len(idx), CHUNK):
        chunk = idx[start : start + CHUNK]
        subset = ArraySet(ev.data.images[chunk], ev.data.labels[chunk])
        adv = adversarial_images(model, subset, attack, ev.device, ev.batch_size, STAGE, None, ev.cancel)
        flipped = softmax(model, to_tensor(adv.images, ev.device)).argmax(1) != subset.labels
        found |= {i: image for i, image, f in zip(chunk, adv.images, flipped) if f}
        attacked += len(chunk)
        if len(found) >= PER_CATEGORY:
            break
    return dict(list(found.items())[:PER_CATEGORY]), attacked


def _item(explainer, ev, idx, category, stem, names, files, maps, adversarial) -> dict:
    image = ev.data.images[idx]
    r = explain_image(explainer, image, sanity=True, cancel=ev.cancel)
    files[f"{stem}.png"] = _png(image)
    files[f"{stem}_map.png"] = overlay_png(image, r["shown"], OPACITY, MIN_SIDE)
    maps[stem.rsplit("/", 1)[-1]] = r["map"]
    label, p = r["classes"][int(ev.data.labels[idx])], r["probabilities"][r["classes"].index(r["predicted"])]
    item = {
        "category": category, "index": int(idx), "name": names[idx] if names else f"test image {idx}",
        "label": label, "predicted": r["predicted"], "p_predicted": p,
        "target": r["target"], "map_size": list(r["map"].shape), "image_size": list(image.shape[:2]),
        "sanity": _sanity(r["sanity"]), "files": {"image": f"{stem}.png", "map": f"{stem}_map.png"},
    }  # fmt: skip
    if adversarial is not None:
        a = explain_image(explainer, adversarial, sanity=True, cancel=ev.cancel)  # why the new call
        files[f"{stem}_adv.png"] = _png(adversarial)
        files[f"{stem}_adv_map.png"] = overlay_png(adversarial, a["shown"], OPACITY, MIN_SIDE)
        maps[stem.rsplit("/", 1)[-1] + "_adv"] = a["map"]
        item |= {
            "predicted_adversarial": a["predicted"],
            "p_adversarial": a["probabilities"][a["classes"].index(a["predicted"])],
            "linf": float(np.abs(adversarial.astype(np.int16) - image.astype(np.int16)).max()) / 255,
            "sanity_adversarial": _sanity(a["sanity"]),
        }
        item["files"] |= {"adversarial": f"{stem}_adv.png", "adversarial_map": f"{stem}_adv_map.png"}
    return item


def _sanity(check: dict | None) -> dict | None:
    if check is None:
        return None
    return {"rank_correlation": float(check["rank_correlation"]), "passed": check["passed"],
            "inconclusive": bool(check.get("inconclusive"))}  # fmt: skip


def _png(image: np.ndarray) -> bytes:
    picture = Image.fromarray(image)
    scale = max(1, -(-MIN_SIDE // max(picture.size)))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
