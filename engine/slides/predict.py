"""Predict a whole slide tile by tile with an ONNX model, streaming: only one batch of tiles is in memory.

The result is one probability of the positive class per tissue tile, laid out on the tile grid as a
heatmap (NaN where there is no tissue), plus the per-slide summary a pathologist reads first: how many
tissue tiles, the fraction predicted positive, how many calls are uncertain (calibrated p(positive) inside the
model's review band), and the most suspicious tiles.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.core.calibration import DEFAULT_REVIEW_BAND, uncertain
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.decode import RESAMPLE
from engine.deploy.session import create_session, run_session, session_integrity, session_meta
from engine.slides.grid import Tile, tile_grid, tiling
from engine.slides.reader import SlideInfo, open_slide, slide_info
from engine.slides.tissue import tissue_mask

log = logging.getLogger(__name__)


@dataclass
class SlidePrediction:
    info: SlideInfo
    tiles: list[Tile]
    probabilities: np.ndarray  # (n_tiles,) probability of the positive class
    grid: tuple[int, int]  # rows, cols
    tile_size: int  # level-0 pixels a side
    level: int  # the pyramid level tiles were read from
    classes: list[str]
    positive: str
    model_sha256: str
    # minimal flipping eps per tile in pixel units (k/255; engine.workflows.slide_robustness): +inf where
    # not flipped within the search, NaN where not computed; None when no robustness map was made
    flip_eps: np.ndarray | None = None
    review_band: tuple[float, float] = DEFAULT_REVIEW_BAND  # the model's: calls inside it are "uncertain"
    calibrated: bool = False  # the model file's probabilities are temperature-scaled

    def uncertain(self) -> np.ndarray:
        """(n_tiles,) bool: the tiles whose call is uncertain (p(positive) inside the review band)."""
        return uncertain(self.probabilities, self.review_band)

    def heatmap(self) -> np.ndarray:
        """(rows, cols) float32: the positive-class probability of each tissue tile, NaN elsewhere."""
        return self._on_grid(self.probabilities)

    def robustness_heatmap(self) -> np.ndarray:
        """(rows, cols) float32: each tile's minimal flipping eps (k/255, +inf when not flipped), NaN where
        there is no tissue or it was not computed; on the same grid as ``heatmap``."""
        return self._on_grid(self.flip_eps)

    def _on_grid(self, values: np.ndarray | None) -> np.ndarray:
        out = np.full(self.grid, np.nan, dtype=np.float32)
        if values is not None and len(self.tiles):
            rows, cols = zip(*((t.row, t.col) for t in self.tiles))
            out[list(rows), list(cols)] = values
        return out

    def predicted(self, probability: float) -> str:
        """The class a tile is called: the positive class at p >= 0.5, else the other one."""
        return self.positive if probability >= 0.5 else next(c for c in self.classes if c != self.positive)

    def summary(self, top: int = 10) -> dict:
        positive = self.probabilities >= 0.5
        order = np.argsort(-self.probabilities)[:top]
        return {
            "tissue_tiles": len(self.tiles),
            "positive_tiles": int(positive.sum()),
            "positive_fraction": float(positive.mean()) if len(self.tiles) else None,
            "uncertain_tiles": int(self.uncertain().sum()),
            "review_band": list(self.review_band),
            "calibrated": self.calibrated,
            "top_tiles": [
                {"x": self.tiles[i].x, "y": self.tiles[i].y, "probability": float(self.probabilities[i])} for i in order
            ],
            **({"robustness": self.robustness_summary()} if self.flip_eps is not None else {}),
        }

    def robustness_summary(self) -> dict:
        """Over the tiles whose flip eps was computed (in /255 units): the median (inf when more than half are
        not flipped), the fractions flipped at <= 2/255 and <= 8/255, and how many were not flipped at all."""
        eps = np.asarray(self.flip_eps, dtype=np.float64)
        k = np.round(eps[~np.isnan(eps)] * 255)  # +inf stays inf
        n = len(k)
        return {
            "tiles_computed": n,
            "median_flip_eps_255": float(np.median(k)) if n else None,
            "flipped_at_2_255_fraction": float((k <= 2).mean()) if n else None,
            "flipped_at_8_255_fraction": float((k <= 8).mean()) if n else None,
            "not_flipped": int(np.isinf(k).sum()),
        }


def predict_slide(
    slide_path: str | Path,
    model_path: str | Path,
    *,
    model_mpp: float | None = None,
    min_tissue: float = 0.5,
    batch_size: int = 32,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> SlidePrediction:
    """Run ``model_path`` (a HistoGuard ONNX file) over the tissue tiles of ``slide_path``.

    ``model_mpp``: microns per pixel of the model's input (the training images'); the model's metadata
    ``mpp`` is used when it has one, and without either a tile is ``image_size`` slide pixels at level 0.
    """
    session = create_session(model_path, device=device)
    meta = session_meta(session, source=Path(model_path).name)
    size, classes, positive = meta.image_size, list(meta.classes), meta.positive_class
    with open_slide(slide_path) as slide:  # closed on cancel and errors too
        info = slide_info(slide, slide_path)
        mpp = model_mpp if model_mpp is not None else meta.mpp
        if mpp is None:
            log.warning(
                "the model records no microns per pixel: one tile is %d slide pixels (give the model's resolution)",
                size,
            )
        plan = tiling(size, mpp, info.mpp[0] if info.mpp else None, info.level_downsamples)
        side, level = plan.side, plan.level
        mask, mask_ds = tissue_mask(slide)
        tiles, grid = tile_grid(info.dimensions, side, mask, mask_ds, min_tissue)
        log.info(
            "slide %s: %d tissue tiles of %d px on a %d x %d grid, read at level %d",
            Path(slide_path).name,
            len(tiles),
            side,
            grid[0],
            grid[1],
            level,
        )
        pos_index = classes.index(positive)
        probs = np.empty(len(tiles), dtype=np.float32)
        for start in range(0, len(tiles), batch_size):
            check_cancel(cancel, "slide prediction")
            batch = tiles[start : start + batch_size]
            images = np.stack([_read_tile(slide, t, level, size) for t in batch])
            probs[start : start + len(batch)] = run_session(session, images, batch_size)[:, pos_index]
            report(on_progress, "slide", start + len(batch), len(tiles), unit="tiles")
    return SlidePrediction(
        info, tiles, probs, grid, side, level, classes, positive, session_integrity(session)["sha256"],
        review_band=meta.review_band, calibrated=bool((meta.calibration or {}).get("fitted")),
    )  # fmt: skip


def read_tile_rgb(slide, tile: Tile, level: int, size: int) -> np.ndarray:
    """One tile of an open slide as (size, size, 3) uint8 RGB: read at ``level`` (one ``read_region``, never
    more of the slide) and resized to the model's input. Prediction, the robustness map and the tile attack
    all read tiles here, so they see the same pixels."""
    read = max(1, round(tile.size / float(slide.level_downsamples[level])))
    region = slide.read_region((tile.x, tile.y), level, (read, read)).convert("RGB")
    if region.size != (size, size):
        region = region.resize((size, size), RESAMPLE)
    return np.asarray(region, dtype=np.uint8)


def _read_tile(slide, tile: Tile, level: int, size: int) -> np.ndarray:
    """One tile as float32 CHW in [0, 1] (what the ONNX model takes)."""
    return read_tile_rgb(slide, tile, level, size).astype(np.float32).transpose(2, 0, 1) / 255.0
