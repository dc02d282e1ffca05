"""The tile grid of a slide at the model's resolution, keeping the tiles that hold tissue.

A model sees ``image_size`` pixels at ``model_mpp`` microns per pixel; on a slide scanned at ``slide_mpp``
one tile therefore spans ``image_size * model_mpp / slide_mpp`` level-0 pixels. Each tile is read from the
smallest pyramid level that still has at least the model's resolution, then resized to ``image_size``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.core.errors import SlideError


@dataclass(frozen=True)
class Tile:
    col: int
    row: int
    x: int  # level-0 pixels, top-left
    y: int
    size: int  # level-0 pixels a side
    tissue: float  # fraction of the tile's area that is tissue


def tile_side(image_size: int, model_mpp: float | None, slide_mpp: float | None) -> int:
    """Level-0 pixels a side of one model input; without both mpp values, one slide pixel per model pixel."""
    if model_mpp is None or slide_mpp is None:
        return int(image_size)
    if model_mpp <= 0 or slide_mpp <= 0:
        raise SlideError(f"microns per pixel must be positive (model {model_mpp}, slide {slide_mpp})")
    return max(1, round(image_size * model_mpp / slide_mpp))


def tile_grid(
    dimensions: tuple[int, int], side: int, mask: np.ndarray, mask_downsample: float, min_tissue: float = 0.5
) -> tuple[list[Tile], tuple[int, int]]:
    """(tiles with at least ``min_tissue`` tissue, (rows, cols) of the whole grid) over level 0."""
    width, height = dimensions
    cols, rows = width // side, height // side
    if cols == 0 or rows == 0:
        raise SlideError(f"the slide ({width} x {height} px) is smaller than one tile ({side} px a side)")
    tiles = []
    for row in range(rows):
        for col in range(cols):
            x, y = col * side, row * side
            frac = _tissue_fraction(mask, mask_downsample, x, y, side)
            if frac >= min_tissue:
                tiles.append(Tile(col, row, x, y, side, frac))
    return tiles, (rows, cols)


def _tissue_fraction(mask: np.ndarray, downsample: float, x: int, y: int, side: int) -> float:
    r0, c0 = int(y / downsample), int(x / downsample)
    r1 = max(r0 + 1, math.ceil((y + side) / downsample))
    c1 = max(c0 + 1, math.ceil((x + side) / downsample))
    window = mask[r0:r1, c0:c1]
    return float(window.mean()) if window.size else 0.0


def best_level(downsamples: tuple[float, ...], side: int, image_size: int) -> int:
    """The coarsest level whose downsample is at most ``side / image_size`` (no upsampling of detail)."""
    wanted = side / image_size
    candidates = [i for i, d in enumerate(downsamples) if d <= wanted + 1e-6]
    return max(candidates, key=lambda i: downsamples[i]) if candidates else 0


@dataclass(frozen=True)
class Tiling:
    """How a model's input maps onto a slide: ``side`` level-0 pixels a tile, read at pyramid ``level``; ``scaled``
    when both the model's and the slide's microns per pixel were known (else one slide pixel per model pixel)."""

    side: int
    level: int
    scaled: bool


def tiling(image_size: int, model_mpp: float | None, slide_mpp: float | None, downsamples: tuple[float, ...]) -> Tiling:
    """The tiles ``predict_slide`` reads for a model of ``image_size`` px at ``model_mpp`` on a slide at
    ``slide_mpp``."""
    side = tile_side(image_size, model_mpp, slide_mpp)
    return Tiling(side, best_level(downsamples, side, image_size), model_mpp is not None and slide_mpp is not None)
