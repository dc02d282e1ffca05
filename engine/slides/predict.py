"""Predict a whole slide tile by tile with an ONNX model, streaming: only one batch of tiles is in memory.

The result is one probability of the positive class per tissue tile, laid out on the tile grid as a
heatmap (NaN where there is no tissue), plus the per-slide summary a pathologist reads first: how many
tissue tiles, the fraction predicted positive, how many calls are uncertain (calibrated p(positive) inside the
model's review band), and the most suspicious tiles.
"""

from __future__ import annotations

import logging
from contextlib import closing
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from engine.core.calibration import DEFAULT_REVIEW_BAND, uncertain
from engine.core.errors import ModelError
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.decode import RESAMPLE
from engine.data.stain_norm import model_stain, normalise
from engine.deploy.session import create_session, session_integrity, session_meta
from engine.deploy.smoothed import model_sigma
from engine.slides.grid import Tile, cell_span, cell_values, overlap_stride, tile_grid
from engine.slides.prefetch import read_ahead
from engine.slides.reader import SlideInfo, open_slide, slide_info
from engine.slides.scale import check_workload, plan_tiles, resolve_scale
from engine.slides.tissue import tissue_mask
from engine.slides.tta import check_tta, tta_probabilities, tta_record

log = logging.getLogger(__name__)


@dataclass
class SlidePrediction:
    info: SlideInfo
    tiles: list[Tile]
    probabilities: np.ndarray  # (n_tiles,) probability of the positive class
    grid: tuple[int, int]  # rows, cols of the heatmap's cells (one per tile, or per stride with overlap)
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
    stride: int | None = None  # level-0 px between overlapping tiles; None: side by side (stride = tile_size)
    tta: str = "none"  # test-time augmentation the probabilities are averaged over (engine.slides.tta)

    def uncertain(self) -> np.ndarray:
        """(n_tiles,) bool: the tiles whose call is uncertain (p(positive) inside the review band)."""
        return uncertain(self.probabilities, self.review_band)

    @property
    def cell(self) -> int:
        """Level-0 px a side of one heatmap cell: the stride between tiles (the tile's side without overlap)."""
        return self.stride or self.tile_size

    def heatmap(self) -> np.ndarray:
        """(rows, cols) float32, one cell per stride (``cell`` level-0 px from the slide's top-left corner): the
        mean positive-class probability of the tissue tiles containing the cell's centre, NaN where there are
        none. Without overlap each cell is one tile and holds exactly that tile's probability."""
        return cell_values(self.tiles, self.probabilities, self.grid, self._span())

    def robustness_heatmap(self) -> np.ndarray:
        """(rows, cols) float32 on the same cells as ``heatmap``: the smallest minimal flipping eps (k/255, +inf
        when not flipped) of the tiles containing the cell's centre (the most fragile tile there), NaN where
        there is no tissue or it was not computed."""
        return cell_values(self.tiles, self.flip_eps, self.grid, self._span(), reduce="min")

    def _span(self) -> int:
        return cell_span(self.tile_size, self.cell)

    def tile_at(self, x: float, y: float) -> int | None:
        """The index of the tissue tile containing level-0 ``(x, y)`` (with overlap, the one whose centre is
        nearest), None when no tile does."""
        if not self.tiles:
            return None
        xy = np.array([(t.x, t.y) for t in self.tiles], dtype=np.float64)
        size = self.tile_size
        inside = np.flatnonzero((xy[:, 0] <= x) & (x < xy[:, 0] + size) & (xy[:, 1] <= y) & (y < xy[:, 1] + size))
        if not len(inside):
            return None
        distance = np.hypot(xy[inside, 0] + size / 2 - x, xy[inside, 1] + size / 2 - y)
        return int(inside[np.argmin(distance)])

    def tiling_text(self) -> str:
        """'64 px tiles every 32 px (overlap 50%), heatmap cells of 32 px; TTA d4 (8 transforms per tile, ...)'."""
        text = f"{self.tile_size} px tiles side by side"
        if self.stride:
            overlap = 1 - self.stride / self.tile_size
            text = f"{self.tile_size} px tiles every {self.stride} px (overlap {overlap:.0%}), heatmap cells of "
            text += f"{self.stride} px"
        if self.tta != "none":
            text += (
                f"; TTA {self.tta} ({tta_record(self.tta)['transforms']} transforms per tile, probabilities averaged)"
            )
        return text

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
    slide_mpp: float | None = None,
    min_tissue: float = 0.5,
    overlap: float = 0.0,
    tta: str = "none",
    batch_size: int = 32,
    device: str = "auto",
    prefetch: int = 2,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> SlidePrediction:
    """Run ``model_path`` (a HistoGuard ONNX file) over the tissue tiles of ``slide_path``.

    ``model_mpp``: microns per pixel of the model's input (the training images'); the model's metadata
    ``mpp`` is used when it has one, and without either a tile is ``image_size`` slide pixels at level 0.
    ``slide_mpp``: the slide's µm per level-0 pixel, over what the file records. A scale that cannot be right
    is refused before any tile is read (``engine.slides.scale``); ``info.scale`` keeps where it came from.
    ``overlap``: the fraction of a tile that neighbouring tiles share (0: side by side; 0.5: a tile every half
    tile, the heatmap then has half-tile cells, each the mean of the tiles over it). ``tta``: "none", "flips" or
    "d4", the probabilities averaged over those transforms of each tile (``engine.slides.tta``). ``prefetch``:
    batches read ahead by a background thread while the model runs (0: read in line).
    """
    check_tta(tta)
    session = create_session(model_path, device=device)
    meta = session_meta(session, source=Path(model_path).name)
    if (sigma := model_sigma(meta)) is not None:
        raise ModelError(
            f"{Path(model_path).name} was trained with Gaussian noise (sigma {sigma:g}) for randomized smoothing: "
            "its calls without noise are not its smoothed classifier's, and a smoothed call costs about 100 "
            "passes per tile; predict slides with a model trained without noise, and certify images with "
            "`histoguard certify`"
        )
    size, classes, positive = meta.image_size, list(meta.classes), meta.positive_class
    with open_slide(slide_path) as slide:  # closed on cancel and errors too
        info = slide_info(slide, slide_path)
        scale = resolve_scale(info, meta.mpp, model_mpp=model_mpp, slide_mpp=slide_mpp)
        info = replace(info, scale=scale)
        plan = plan_tiles(info, scale, size)  # SlideError for a scale that cannot be right, before any read
        side, level = plan.side, plan.level
        stride = overlap_stride(side, overlap)
        mask, mask_ds = tissue_mask(slide)
        check_workload(info, scale, plan, size, mask, mask_ds, stride)
        tiles, grid = tile_grid(info.dimensions, side, mask, mask_ds, min_tissue, stride=stride)
        log.info(
            "slide %s: %d tissue tiles of %d px every %d px (heatmap %d x %d cells), read at level %d, TTA %s",
            Path(slide_path).name, len(tiles), side, stride, grid[0], grid[1], level, tta,
        )  # fmt: skip
        load = partial(read_tiles, slide, level=level, size=size, stain=model_stain(meta))
        probs = _predict_tiles(
            session, load, tiles, classes.index(positive), tta, batch_size, prefetch, on_progress, cancel
        )
    return SlidePrediction(
        info, tiles, probs, grid, side, level, classes, positive, session_integrity(session)["sha256"],
        review_band=meta.review_band, calibrated=bool((meta.calibration or {}).get("fitted")),
        stride=stride if stride != side else None, tta=tta,
    )  # fmt: skip


def _predict_tiles(session, load, tiles, pos_index, tta, batch_size, prefetch, on_progress, cancel) -> np.ndarray:
    """(n_tiles,) p(positive): batches of tiles read ``prefetch`` batches ahead (``load`` on a reader thread)
    while the model runs on the current one; the reader stops when this returns, fails or is cancelled."""
    probs = np.empty(len(tiles), dtype=np.float32)
    batches = [tiles[i : i + batch_size] for i in range(0, len(tiles), batch_size)]
    done = 0
    check_cancel(cancel, "slide prediction")
    with closing(read_ahead(load, batches, depth=prefetch)) as loaded:
        for images in loaded:
            check_cancel(cancel, "slide prediction")
            n = len(images)
            probs[done : done + n] = tta_probabilities(session, images, tta, batch_size)[:, pos_index]
            done += n
            report(on_progress, "slide", done, len(tiles), unit="tiles")
    return probs


def read_tile_rgb(slide, tile: Tile, level: int, size: int) -> np.ndarray:
    """One tile of an open slide as (size, size, 3) uint8 RGB: read at ``level`` (one ``read_region``, never
    more of the slide) and resized to the model's input. Prediction, the robustness map and the tile attack
    all read tiles here, so they see the same pixels."""
    read = max(1, round(tile.size / float(slide.level_downsamples[level])))
    region = slide.read_region((tile.x, tile.y), level, (read, read))
    if region.size == (size, size) and region.mode in ("RGBA", "RGB"):  # PIL's convert("RGB") drops alpha too:
        return np.ascontiguousarray(np.asarray(region)[..., :3])  # the same pixels, one copy fewer
    return np.asarray(region.convert("RGB").resize((size, size), RESAMPLE), dtype=np.uint8)


def read_tiles(slide, tiles: list[Tile], *, level: int, size: int, stain: dict | None = None) -> np.ndarray:
    """A batch of tiles as float32 NCHW in [0, 1], contiguous (what the ONNX model takes), stain-normalised to
    ``stain`` (the model's recorded reference, ``engine.data.stain_norm``) when given."""
    rgb = normalise(np.stack([read_tile_rgb(slide, t, level, size) for t in tiles]), stain)
    images = np.empty((len(tiles), 3, size, size), dtype=np.float32)
    images[...] = rgb.transpose(0, 3, 1, 2)
    return np.divide(images, 255.0, out=images)
