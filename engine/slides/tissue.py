"""Tissue detection on a slide's thumbnail: Otsu's threshold on colour saturation.

Glass and background are bright and grey (low saturation); H&E-stained tissue is pink to purple (high
saturation), so a threshold on saturation separates them on any scanner without tuning. The threshold is
Otsu's (written here in numpy, a dozen lines, rather than adding scikit-image for one function), kept
between two bounds: never below MIN_SATURATION (an all-glass slide has no tissue) and never above
MAX_SATURATION (glass is never that saturated; a higher Otsu level means the picture is all tissue, a crop
or a BreakHis-style image opened as a slide, and Otsu is splitting pale from dark stain). Very dark pixels
(pen marks, scanner borders) are left out too.
"""

from __future__ import annotations

import numpy as np

MIN_SATURATION = 20  # of 255: below this nothing is tissue, whatever Otsu says (an all-glass thumbnail)
MAX_SATURATION = 50  # of 255: glass and background stay below this on any scanner we know
MIN_VALUE = 30  # of 255: darker is ink or the scanner's border, not stained tissue


def otsu_threshold(values: np.ndarray) -> int:
    """The uint8 level that maximises the between-class variance of ``values`` (Otsu 1979)."""
    hist = np.bincount(np.asarray(values, dtype=np.uint8).ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 0
    levels = np.arange(256, dtype=np.float64)
    weight0 = np.cumsum(hist)  # pixels at or below each level
    weight1 = total - weight0
    mean0 = np.cumsum(hist * levels) / np.maximum(weight0, 1)
    mean1 = ((hist * levels).sum() - np.cumsum(hist * levels)) / np.maximum(weight1, 1)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    return int(np.argmax(between))


def tissue_mask(slide, max_side: int = 1024) -> tuple[np.ndarray, float]:
    """(mask, downsample): a boolean map of tissue on a thumbnail of at most ``max_side`` pixels a side, and
    how many level-0 pixels one mask pixel spans."""
    thumb = slide.get_thumbnail((max_side, max_side)).convert("RGB")
    hsv = np.asarray(thumb.convert("HSV"))
    saturation, value = hsv[..., 1], hsv[..., 2]
    threshold = min(max(otsu_threshold(saturation), MIN_SATURATION), MAX_SATURATION)
    mask = (saturation > threshold) & (value > MIN_VALUE)
    return mask, slide.dimensions[0] / mask.shape[1]
