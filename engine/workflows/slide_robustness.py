"""How easily a slide's diagnosis flips: per tissue tile, the smallest eps (k/255) at which a white-box
attack changes the model's own call of the tile; and one slide tile attacked, for the viewer.

The probability heatmap says what the model calls each region; this map says how little it takes to change
that call, so a pathologist can see which "tumour" or "benign" regions rest on a fragile decision. Tiles are
the prediction's own (``SlidePrediction.tiles``/``level``), so the two maps align, and they are streamed in
batches with one ``read_region`` each, as in ``predict_slide``: the slide is never in memory. An ONNX file
carries no gradients: it is attacked through the torch checkpoint it was exported from, after
``engine.export.match`` has shown that the two belong together, and only if it is the file the slide was
predicted with (same sha256).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.attacks._common import attack_mode, input_gradient
from engine.attacks.perturbation import quantised
from engine.core.config import AttackConfig
from engine.core.errors import ConfigError, ModelError
from engine.core.metadata import ModelMeta
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.arrays import ArraySet
from engine.data.stain_norm import for_model
from engine.evaluate.min_eps import minimal_eps
from engine.export.match import load_attack_model
from engine.models.device import resolve_device
from engine.models.tensors import to_tensor
from engine.slides.grid import Tile
from engine.slides.predict import SlidePrediction, read_tile_rgb
from engine.slides.reader import open_slide
from engine.workflows.attack import attack_array

log = logging.getLogger(__name__)
METHODS = ("fgsm", "pgd")
MAP_ATTACK = AttackConfig("fgsm", 16 / 255)  # searched up to 16/255
TILE_ATTACK = AttackConfig("fgsm", 2 / 255)


def slide_robustness(
    slide_path: str | Path,
    model_path: str | Path,
    prediction: SlidePrediction,
    attack: AttackConfig = MAP_ATTACK,
    *,
    limit: int | None = None,
    batch_size: int = 16,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """(n_tiles,) float32: each tissue tile's minimal flipping eps in pixel units (k/255, k in 1..max_k, where
    ``attack.eps`` = max_k/255 is the largest eps searched), +inf where the attack does not flip it at max_k/255,
    NaN where not computed.

    ``limit`` attacks only the ``limit`` most suspicious tiles (highest probability first; the tiles are
    attacked in that order, so the progress bar reaches the important ones first). ``fgsm``: one gradient
    per tile, then a bisection over k with forward passes only; FGSM is not monotone in eps, so k is the
    bisection's answer (the 8-bit FGSM image flips at k and not at k - 1, but a smaller k may flip too).
    ``pgd``: ``engine.evaluate.min_eps.minimal_eps`` (a bisection with PGD of ``attack.n_steps``, random start).
    """
    method, max_k, steps = attack.method, _check_settings(attack, limit, batch_size), attack.n_steps
    check_cancel(cancel, "slide robustness map")
    model, meta = _attack_model(model_path, prediction)
    dev = resolve_device(device)
    model.to(dev).eval()
    size = meta.image_size
    order = np.argsort(-prediction.probabilities, kind="stable")
    chosen = order if limit is None else order[:limit]
    out = np.full(len(prediction.tiles), np.nan, dtype=np.float32)
    stage = f"robustness ({method.upper()})"
    report(on_progress, stage, 0, len(chosen), unit="tiles")
    with open_slide(slide_path) as slide:  # closed on cancel and errors too
        for b, start in enumerate(range(0, len(chosen), batch_size)):
            check_cancel(cancel, "slide robustness map")
            idx = chosen[start : start + batch_size]
            tiles = np.stack([read_tile_rgb(slide, prediction.tiles[i], prediction.level, size) for i in idx])
            images = for_model(meta, tiles)  # the model's stain normalisation, before the attack
            out[idx] = _flip_k(model, images, dev, method, max_k, steps, seed=b, loss=attack.loss) / 255
            report(on_progress, stage, start + len(idx), len(chosen), unit="tiles")
    log.info("robustness map (%s, max %d/255): %d of %d tiles attacked", method, max_k, len(chosen), len(out))
    return out


def attack_tile(
    slide_path: str | Path,
    model_path: str | Path,
    tile: Tile,
    level: int,
    attack: AttackConfig = TILE_ATTACK,
    *,
    device: str = "auto",
) -> dict:
    """One slide tile attacked white-box (its own clean call pushed away), read as ``predict_slide`` reads it:
    ``engine.workflows.attack.attack_array``'s keys (original, adversarial, perturbation_view, probs_clean,
    probs_adv, pred_clean, pred_adv, flipped, linf, ...) with ``image_path`` the slide and ``tile`` its place."""
    model, meta = load_attack_model(model_path)
    with open_slide(slide_path) as slide:
        clean = read_tile_rgb(slide, tile, level, meta.image_size)
    result = attack_array(model, meta, clean, attack, device=device)
    where = {"x": tile.x, "y": tile.y, "size": tile.size, "level": level}
    return {"image_path": str(slide_path), "model": str(model_path), "tile": where, **result}


def _check_settings(attack: AttackConfig, limit: int | None, batch_size: int) -> int:
    """The largest k searched; ConfigError for settings the map cannot use."""
    if attack.method not in METHODS:
        raise ConfigError(f"robustness method {attack.method!r} is not one of {', '.join(METHODS)}")
    max_k = round(attack.eps * 255)
    if not 1 <= max_k <= 255 or abs(attack.eps * 255 - max_k) > 1e-6:
        raise ConfigError(f"max eps {attack.eps * 255:g}/255 must be a whole k/255 in 1..255, e.g. 16/255")
    if batch_size < 1 or (limit is not None and limit < 0):
        raise ConfigError(f"batch size ({batch_size}) must be >= 1, and limit ({limit}) >= 0")
    return max_k


def _attack_model(model_path: str | Path, prediction: SlidePrediction) -> tuple[nn.Module, ModelMeta]:
    """The torch model behind ``model_path``; ModelError unless the ONNX file is the prediction's model."""
    path = Path(model_path)
    if path.suffix.lower() == ".onnx" and path.is_file():
        if hashlib.sha256(path.read_bytes()).hexdigest() != prediction.model_sha256:
            raise ModelError(
                f"{path.name} is not the model this slide was predicted with (its sha256 differs); predict the "
                "slide with it first, or choose the model of the prediction"
            )
    return load_attack_model(path)


def _flip_k(
    model: nn.Module, images: np.ndarray, dev, method: str, max_k: int, steps: int, seed: int, loss: str = "margin"
) -> np.ndarray:
    """float64 k per image (inf: not flipped at ``max_k``); the label attacked is the model's own clean call."""
    x = to_tensor(images, dev)
    with torch.no_grad():
        y = model(x).argmax(1)
    if method == "pgd":
        data = ArraySet(images, y.cpu().numpy())
        found = minimal_eps(model, data, dev, max_k=max_k, steps=steps, seed=seed, batch_size=len(images), loss=loss)
        return np.array([np.inf if v is None else round(v * 255) for v in found], dtype=np.float64)
    return _fgsm_bisect(model, x, y, max_k, loss)


def _fgsm_bisect(model: nn.Module, x: torch.Tensor, y: torch.Tensor, max_k: int, loss: str = "margin") -> np.ndarray:
    """Smallest k (by bisection) whose 8-bit FGSM image x + k/255 * sign(grad), clipped, flips the call."""
    with attack_mode(model) as net:
        sign = input_gradient(net, x, y, loss=loss).sign()

    @torch.no_grad()
    def flipped(rows: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        x_adv = quantised(torch.clamp(x[rows] + k.view(-1, 1, 1, 1).to(x.dtype) / 255 * sign[rows], 0, 1))
        return model(x_adv).argmax(1) != y[rows]

    everyone = torch.arange(len(x), device=x.device)
    lo = torch.zeros(len(x), dtype=torch.long, device=x.device)  # never flipped at lo (0: the clean call)
    hi = torch.full_like(lo, max_k)  # flipped at hi, once checked
    never = ~flipped(everyone, hi)
    lo[never] = max_k  # nothing to search for these
    while bool(((hi - lo) > 1).any()):
        act = (hi - lo > 1).nonzero().squeeze(1)
        mid = (lo[act] + hi[act]) // 2
        flip = flipped(act, mid)
        hi[act] = torch.where(flip, mid, hi[act])
        lo[act] = torch.where(flip, lo[act], mid)
    k = hi.cpu().numpy().astype(np.float64)
    k[never.cpu().numpy()] = np.inf
    return k
