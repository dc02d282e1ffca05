"""A SYNTHETIC whole-slide image for trying the Slides page and ``histoguard slide`` without a real slide.

A tiled pyramidal TIFF (what OpenSlide reads as generic-tiff): glass, an elliptical piece of tissue made of
the demo generator's benign patches (engine.data.demo), and a malignant region of its carcinoma patches,
so a model trained on the demo dataset should light up that region. Like the demo images it is drawn from
random numbers, is not real tissue and is marked as synthetic in the TIFF's description.

The slide is written tile by tile (tifffile), so a 20,000 x 20,000 pixel slide never is in memory whole.
Patches come from a small pool rendered once (``POOL`` per class, picked per patch position), and each
lower pyramid level is assembled from the pool downsampled by the level's factor, so levels agree with each other.

Scale: a patch of ``TILE`` slide pixels is rendered as the demo's base 175 x 115 image scaled by
``TILE / 175``; at ``MPP`` microns per slide pixel a demo model of input size S sees
``demo_input_mpp(S)`` microns per input pixel (its 115-pixel short side is resized to S).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from PIL import Image

from engine.core.errors import DataError
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report

log = logging.getLogger(__name__)
TILE = 512  # slide pixels a side of a TIFF tile and of a rendered patch
MPP = 0.5  # microns per slide pixel at level 0
POOL = 12  # patches rendered per class
GLASS = (236, 236, 238)
DESCRIPTION = "SYNTHETIC HistoGuard demo slide - not real tissue"
_BASE_W, _BASE_H = 175, 115  # engine.data.demo's base image


def demo_input_mpp(image_size: int) -> float:
    """Microns per model-input pixel of a model trained on the demo dataset at ``image_size``, on this slide."""
    return _BASE_H * (TILE / _BASE_W) * MPP / image_size


def write_demo_slide(
    path: str | Path,
    side: int = 20000,
    *,
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Write a ``side`` x ``side`` pixel synthetic slide to ``path`` (.tif/.tiff) and return the path."""
    import tifffile

    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff"):
        raise DataError(f"{path}: a demo slide is a tiled pyramidal TIFF; give a .tiff file name")
    if not 2 * TILE <= side <= 200_000:
        raise DataError(f"demo slide side {side} must be between {2 * TILE} and 200,000 pixels")
    levels = _levels(side)
    pools = _pools(seed, levels)
    total = sum(_count(side, 2**level) for level in range(levels))
    done = [0]

    def tiles(level: int):
        f = 2**level
        n = _count(side, f)
        for r in range(n):
            check_cancel(cancel, "demo slide")
            for c in range(n):
                yield _tile(side, f, r, c, pools[level], seed)
            done[0] += n
            report(on_progress, "demo slide", done[0], total, unit="tiles")

    opts = {"tile": (TILE, TILE), "photometric": "rgb", "compression": "zlib", "resolutionunit": "CENTIMETER"}
    tmp = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tifffile.TiffWriter(tmp, bigtiff=side > 30000) as tw:
            for level in range(levels):
                f = 2**level
                size = -(-side // f)
                extra = {"subfiletype": 1} if level else {"description": DESCRIPTION, "metadata": None}
                res = (1e4 / (MPP * f),) * 2
                tw.write(tiles(level), shape=(size, size, 3), dtype=np.uint8, resolution=res, **opts, **extra)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("wrote a %d x %d px SYNTHETIC demo slide with %d levels to %s", side, side, levels, path)
    return path


def _levels(side: int) -> int:
    """Halve until the smallest level fits in about two tiles."""
    levels = 1
    while side / 2**levels >= 2 * TILE and levels < 8:
        levels += 1
    return levels


def _count(side: int, f: int) -> int:
    """Tiles a side at downsample ``f``."""
    return math.ceil(math.ceil(side / f) / TILE)


def _pools(seed: int, levels: int) -> list[dict[str, np.ndarray]]:
    """Per level, per class, the ``POOL`` patches of TILE / f pixels (f = 2**level) as one (POOL, s, s, 3) array."""
    from engine.data.demo import demo_patch

    base = {
        name: [demo_patch(label, i, (TILE, TILE), seed=seed) for i in range(POOL)]
        for label, name in enumerate(("benign", "malignant"))
    }
    out = []
    for level in range(levels):
        s = max(1, TILE >> level)
        out.append({k: np.stack([_shrink(p, s) for p in v]) for k, v in base.items()})
    return out


def _shrink(patch: np.ndarray, s: int) -> np.ndarray:
    return np.asarray(Image.fromarray(patch).resize((s, s), Image.BOX))


def regions(side: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tissue, tumour) boolean masks at level-0 coordinates ``x``, ``y``: an ellipse of tissue and, in
    its right half, a smaller ellipse of carcinoma. Public so tests know where the tumour is."""
    u, v = x / side - 0.5, y / side - 0.5
    tissue = (u / 0.42) ** 2 + (v / 0.32) ** 2 < 1
    tumour = ((u - 0.17) / 0.13) ** 2 + ((v + 0.02) / 0.11) ** 2 < 1
    return tissue, tumour & tissue


def _tile(side: int, f: int, r: int, c: int, pool: dict[str, np.ndarray], seed: int) -> np.ndarray:
    """Level tile (r, c): a mosaic of f x f pool patches (each TILE / f pixels), masked by the regions."""
    s = TILE // f if f <= TILE else 1
    yy, xx = np.mgrid[0:TILE, 0:TILE]
    x, y = (c * TILE + xx) * f, (r * TILE + yy) * f
    tissue, tumour = regions(side, x, y)
    out = np.empty((TILE, TILE, 3), np.uint8)
    out[:] = GLASS
    if not tissue.any():
        return out
    # the level-0 patch under each level pixel, and its pool entry (fixed per patch: levels agree)
    pr, pc = (y // TILE), (x // TILE)
    key = (pr * 7919 + pc * 104729 + seed) % POOL
    ty, tx = (y % TILE) // f, (x % TILE) // f
    for name, mask in (("benign", tissue & ~tumour), ("malignant", tumour)):
        out[mask] = pool[name][key[mask], np.minimum(ty[mask], s - 1), np.minimum(tx[mask], s - 1)]
    return out
