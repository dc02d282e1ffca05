"""The scale tiles are cut at, where it came from, and whether it can be trusted: decided before any tile is read.

A model sees ``image_size`` pixels at ``model_mpp`` microns per pixel, so on a slide at ``slide_mpp`` one tile
is ``image_size * model_mpp / slide_mpp`` level-0 pixels. Both numbers can be wrong: a generic TIFF's
resolution tags are often a print resolution (72 dpi reads as 352.8 µm/px), which made 1-pixel tiles, each
enlarged 224 times, and tens of thousands of them. So a scale is refused, with what the file records and how
to override it (``--slide-mpp`` / ``--model-mpp``, or the Slides page's fields), when:

* the slide's µm/px is outside ``MPP_RANGE`` (0.05-20: from a 100x oil objective to a low-power overview);
* a tile would be smaller than ``MIN_TILE_PX`` level-0 pixels, or would be enlarged more than ``MAX_UPSCALE``
  times from the pyramid level it is read at;
* the tissue tiles would cover more than a whole 75 x 25 mm glass slide at the model's scale (so the slide's
  scale, or its absence, cannot be right).

Where each number came from is kept (``Scale.record``, written to slide.json): the slide's from the ``file``,
the ``user`` or, when neither gives one, the ``model`` (one slide pixel per model pixel); the model's from its
``metadata``, the ``user`` or ``none``. A model without µm/px still works, one slide pixel per model pixel,
and says so. Torch-free.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.core.errors import ConfigError, SlideError, option
from engine.slides.grid import Tiling, tiling
from engine.slides.reader import MAX_READ_PIXELS, SlideInfo

log = logging.getLogger(__name__)

MPP_RANGE = (0.05, 20.0)  # µm per level-0 pixel of any microscope scan
MIN_TILE_PX = 16  # level-0 pixels a side: below this the slide's scale is wrong
MAX_UPSCALE = 4.0  # a tile enlarged more than this from its read level has no detail left to classify
GLASS_MM2 = 75.0 * 25.0  # a whole standard glass slide: no tissue covers more
MAX_GRID_CELLS = 10_000_000  # tile positions on the slide (each is looked at for tissue)
LONG_TILES = 100_000  # more tissue tiles than this: say up front that it will take long
TYPICAL = "about 0.25 µm/px at 40x, 0.5 at 20x"


@dataclass(frozen=True)
class Scale:
    """The µm per pixel tiles are cut at. ``slide_source`` "model": the slide's scale is not used (the file has
    none, or the model has none), one slide pixel per model pixel, and ``slide_mpp`` is the model's (or None).
    ``file_mpp``: what the file records, also when it is overridden or not used."""

    slide_mpp: float | None
    slide_source: str  # "file", "user" or "model"
    model_mpp: float | None
    model_source: str  # "metadata", "user" or "none"
    file_mpp: float | None = None

    @property
    def scaled(self) -> bool:
        """Tiles are cut at the model's physical scale: both µm/px known, the slide's from its file or the user."""
        return self.model_mpp is not None and self.slide_source != "model"

    def record(self) -> dict:
        """What slide.json keeps under "scale"."""
        return {
            "slide_mpp": self.slide_mpp,
            "slide_mpp_source": self.slide_source,
            "file_mpp": self.file_mpp,
            "model_mpp": self.model_mpp,
            "model_mpp_source": self.model_source,
        }

    def describe(self) -> str:
        """One line for people: "slide 0.5 µm/px (from the file), model 1 µm/px (from its metadata)"."""
        model = {"metadata": "from its metadata", "user": "given", "none": "not recorded"}[self.model_source]
        if self.slide_source == "model" and self.file_mpp is None:
            if self.model_mpp is None:
                return "one slide pixel per model pixel: the slide records no resolution, nor does the model"
            return f"one slide pixel per model pixel: the slide records no resolution (model {self.model_mpp:g} µm/px)"
        if self.model_mpp is None:
            return "one slide pixel per model pixel: the model records no resolution (give the model's µm/px)"
        slide = "from the file" if self.slide_source == "file" else "given"
        if self.slide_source == "user" and self.file_mpp is not None:
            slide += f"; the file records {self.file_mpp:.4g}"
        return f"slide {self.slide_mpp:.4g} µm/px ({slide}), model {self.model_mpp:g} µm/px ({model})"


def resolve_scale(
    info: SlideInfo, meta_mpp: float | None, *, model_mpp: float | None = None, slide_mpp: float | None = None
) -> Scale:
    """Which µm/px to use: the user's over the model's metadata and the file's. ConfigError for a value given
    that is not a microscope scale."""
    _check_given(model_mpp, "model_mpp", 0.0, math.inf)
    _check_given(slide_mpp, "slide_mpp", *MPP_RANGE)
    file_mpp = info.mpp[0] if info.mpp else None
    model, model_source = (model_mpp, "user") if model_mpp else (meta_mpp, "metadata") if meta_mpp else (None, "none")
    if slide_mpp:
        return Scale(slide_mpp, "user", model, model_source, file_mpp)
    if file_mpp and model is not None:
        return Scale(file_mpp, "file", model, model_source, file_mpp)
    return Scale(model, "model", model, model_source, file_mpp)  # one slide pixel per model pixel


def _check_given(value: float | None, name: str, lo: float, hi: float) -> None:
    if value is not None and value != 0 and not (lo <= value <= hi and math.isfinite(value)):
        where = f"between {lo:g} and {hi:g}" if math.isfinite(hi) else "a positive number of"
        raise ConfigError(f"{option(name)} {value:g} must be {where} µm per pixel ({TYPICAL})")


def plan_tiles(info: SlideInfo, scale: Scale, image_size: int, warn: bool = True) -> Tiling:
    """The tiling for a model of ``image_size`` px at ``scale``; SlideError (one line: what the file records,
    how to override it) when the scale cannot be right. Logs (``warn``) when there is no physical scale."""
    name = Path(info.path).name or "the slide"
    if warn and not scale.scaled:
        log.warning("%s: %s; one tile is %d slide pixels", name, scale.describe(), image_size)
    plan = tiling(image_size, scale.model_mpp, scale.slide_mpp, info.level_downsamples)
    read = plan.side / info.level_downsamples[plan.level]
    if scale.scaled:
        _check_physical(info, scale, plan, image_size, read)
    if read * read > MAX_READ_PIXELS:
        raise SlideError(
            f"{name}: each tile would be read as {read:,.0f} x {read:,.0f} px, too large (no pyramid level near the "
            f"model's scale: {scale.describe()}); check {option('slide_mpp')} and {option('model_mpp')}, or convert "
            "the slide to a tiled pyramid"
        )
    return plan


def _check_physical(info: SlideInfo, scale: Scale, plan: Tiling, image_size: int, read: float) -> None:
    """SlideError for a slide µm/px no microscope makes, a tile under MIN_TILE_PX or enlarged over MAX_UPSCALE."""
    name = Path(info.path).name or "the slide"
    if scale.slide_source == "file" and not MPP_RANGE[0] <= scale.slide_mpp <= MPP_RANGE[1]:
        hint = "a print or screen resolution" if scale.slide_mpp > MPP_RANGE[1] else "finer than light microscopes see"
        raise SlideError(
            f"{name} records {recorded_mpp(info)}, outside the {MPP_RANGE[0]:g}-{MPP_RANGE[1]:g} µm/px of a "
            f"microscope scan ({hint}); give the scan's resolution with "
            f"{option('slide_mpp')} ({TYPICAL})"
        )
    why = f"the model's {image_size} px at {scale.model_mpp:g} µm/px on a slide at {scale.slide_mpp:.4g} µm/px"
    fix = f"check the slide's scale ({option('slide_mpp')}) and the model's ({option('model_mpp')})"
    if plan.side < MIN_TILE_PX:
        raise SlideError(f"{name}: one tile would be only {plan.side} slide pixels ({why}); {fix}")
    if image_size / read > MAX_UPSCALE + 1e-6:
        raise SlideError(
            f"{name}: each tile would be enlarged {image_size / read:.1f}x from {read:.0f} to {image_size} px "
            f"({why}): the scan is too coarse for this model; {fix}"
        )


def check_workload(
    info: SlideInfo, scale: Scale, plan: Tiling, image_size: int, mask: np.ndarray, mask_ds: float, stride: int
) -> int:
    """The tissue tiles the mask implies, said before the grid is built: SlideError when there are more tile
    positions than any slide holds or the tissue would cover more than a glass slide at the model's scale (the
    scale must be wrong); a warning when the run will be long. ``stride``: level-0 px between tiles."""
    name = Path(info.path).name or "the slide"
    w, h = info.dimensions
    cells = (max(w - plan.side, 0) // stride + 1) * (max(h - plan.side, 0) // stride + 1)
    fix = f"check the slide's scale ({option('slide_mpp')}) and the model's ({option('model_mpp')})"
    if w < plan.side or h < plan.side:
        raise SlideError(
            f"{name} ({w} x {h} px) is smaller than one tile of {plan.side} px ({scale.describe()}); {fix}"
        )
    if cells > MAX_GRID_CELLS:
        raise SlideError(
            f"{name}: {cells:,} tile positions ({plan.side} px every {stride} px; {scale.describe()}) is far more "
            f"than a slide holds; {fix}, or use less overlap"
        )
    tissue_px = float(np.count_nonzero(mask)) * mask_ds * mask_ds  # level-0 px² of tissue
    expected = round(tissue_px / stride**2)
    if scale.model_mpp is not None:
        area = tissue_px * (image_size * scale.model_mpp / 1000 / plan.side) ** 2  # mm² at the model's scale
        if area > GLASS_MM2:
            raise SlideError(
                f"{name}: its tissue would cover {area:,.0f} mm² at the model's {scale.model_mpp:g} µm/px, more "
                f"than a whole 75 x 25 mm glass slide ({scale.describe()}); give the scan's resolution with "
                f"{option('slide_mpp')} ({TYPICAL})"
            )
    if expected > LONG_TILES:
        log.warning(
            "%s: about %d tissue tiles of %d px to predict: this will take a long time (%s)",
            name, expected, plan.side, scale.describe(),
        )  # fmt: skip
    return expected


def recorded_mpp(info: SlideInfo) -> str:
    """What the file records as its scale, in its own words: "352.8 µm/px (TIFF XResolution 72 per inch)"."""
    p = info.properties
    mpp = f"{info.mpp[0]:.4g} µm/px" if info.mpp else "no µm/px"
    if "aperio.MPP" in p:
        return f"{mpp} (Aperio MPP = {p['aperio.MPP']})"
    if "tiff.XResolution" in p:
        return f"{mpp} (TIFF XResolution {p['tiff.XResolution']} per {p.get('tiff.ResolutionUnit', 'inch')})"
    spacing = "dicom.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing[1]"
    if spacing in p:
        return f"{mpp} (DICOM PixelSpacing {p[spacing]} mm)"
    return mpp
