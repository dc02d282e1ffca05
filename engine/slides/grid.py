"""The tile grid of a slide at the model's resolution, keeping the tiles that hold tissue.

A model sees ``image_size`` pixels at ``model_mpp`` microns per pixel; on a slide scanned at ``slide_mpp``
one tile therefore spans ``image_size * model_mpp / slide_mpp`` level-0 pixels. Each tile is read from the
smallest pyramid level that still has at least the model's resolution, then resized to ``image_size``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.core.errors import SlideError

MAX_OVERLAP = 0.9  # tiles overlapping by more cost over 100x the tiles


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
    dimensions: tuple[int, int],
    side: int,
    mask: np.ndarray,
    mask_downsample: float,
    min_tissue: float = 0.5,
    stride: int | None = None,
) -> tuple[list[Tile], tuple[int, int]]:
    """(tiles with at least ``min_tissue`` tissue, (rows, cols) of the heatmap's cells) over level 0.

    Tiles start every ``stride`` level-0 pixels (default ``side``: side by side, no overlap); a tile's ``col`` and
    ``row`` count strides. The heatmap has one cell per stride (``cell_span``): without overlap, one per tile.
    """
    width, height = dimensions
    step = side if stride is None else int(stride)
    if not 1 <= step <= side:
        raise SlideError(f"the tile stride ({step} px) must be between 1 and the tile's side ({side} px)")
    if width < side or height < side:
        raise SlideError(f"the slide ({width} x {height} px) is smaller than one tile ({side} px a side)")
    cols, rows = (width - side) // step + 1, (height - side) // step + 1
    xs, ys = np.arange(cols) * step, np.arange(rows) * step
    fractions = _tissue_fractions(mask, mask_downsample, xs, ys, side)
    keep = zip(*np.nonzero(fractions >= min_tissue))  # row-major: the order tiles are read and listed in
    tiles = [Tile(int(c), int(r), int(xs[c]), int(ys[r]), side, float(fractions[r, c])) for r, c in keep]
    span = cell_span(side, step)
    return tiles, (rows + span - 1, cols + span - 1)


def _tissue_fractions(mask: np.ndarray, downsample: float, xs: np.ndarray, ys: np.ndarray, side: int) -> np.ndarray:
    """(len(ys), len(xs)) float64: the tissue fraction of the mask's window under each tile, from a summed-area
    table (one pass over the mask, whatever the number of tiles); 0 where the window is off the mask."""
    h, w = mask.shape
    table = np.zeros((h + 1, w + 1), dtype=np.int64)
    table[1:, 1:] = np.asarray(mask, dtype=np.int64).cumsum(0).cumsum(1)
    r0, r1 = _window(ys, side, downsample, h)
    c0, c1 = _window(xs, side, downsample, w)
    r0, r1, c0, c1 = r0[:, None], r1[:, None], c0[None, :], c1[None, :]
    total = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
    area = (r1 - r0) * (c1 - c0)
    return np.where(area > 0, total / np.maximum(area, 1), 0.0)


def _window(starts: np.ndarray, side: int, downsample: float, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """First and past-the-end mask indices under tiles starting at ``starts`` (level 0), clipped to the mask."""
    lo = (starts / downsample).astype(np.int64)
    hi = np.maximum(lo + 1, np.ceil((starts + side) / downsample).astype(np.int64))
    return np.minimum(lo, limit), np.minimum(hi, limit)


def cell_span(side: int, stride: int) -> int:
    """How many heatmap cells (``stride`` px a side) one tile covers along each axis: the cells whose centre lies
    inside it. 1 without overlap, 2 at half-tile stride, 4 at a quarter."""
    return (2 * side + stride - 1) // (2 * stride)


def overlap_stride(side: int, overlap: float) -> int:
    """The stride between tiles of ``side`` px overlapping by the fraction ``overlap`` (0 <= overlap <= 0.9)."""
    if not 0.0 <= overlap <= MAX_OVERLAP:
        raise SlideError(f"tile overlap {overlap:g} must be between 0 and {MAX_OVERLAP:g} of a tile (0.5: half)")
    return max(1, round(side * (1.0 - overlap)))


def cell_values(
    tiles: list[Tile], values: np.ndarray | None, grid: tuple[int, int], span: int, reduce: str = "mean"
) -> np.ndarray:
    """(rows, cols) float32 over the heatmap's cells: each cell gets the mean ("mean") or the smallest ("min",
    NaN ignored) value of the tiles whose box contains the cell's centre; NaN where no tile does. Without overlap
    (``span`` 1) every cell is exactly its own tile's value."""
    out = np.full(grid, np.nan, dtype=np.float64)
    if values is None or not tiles:
        return out.astype(np.float32)
    rows = np.fromiter((t.row for t in tiles), np.int64, len(tiles))
    cols = np.fromiter((t.col for t in tiles), np.int64, len(tiles))
    v = np.asarray(values, dtype=np.float64)
    shifts = [(dy, dx) for dy in range(span) for dx in range(span)]
    if reduce == "min":
        for dy, dx in shifts:
            np.fmin.at(out, (rows + dy, cols + dx), v)
        return out.astype(np.float32)
    total, count = np.zeros(grid), np.zeros(grid)
    for dy, dx in shifts:
        np.add.at(total, (rows + dy, cols + dx), v)
        np.add.at(count, (rows + dy, cols + dx), 1.0)
    np.divide(total, count, out=out, where=count > 0)
    return out.astype(np.float32)


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
