"""The per-image maths of stain normalisation, on uint8 RGB pixels (P, 3): Macenko et al. (ISBI 2009) and Reinhard et
al. (2001). Torch-free: numpy and the numpy backend of ``torchstain`` (its Macenko stain estimation and its sRGB <->
CIELAB conversion; torchstain's numpy backend imports neither torch nor TensorFlow).

What torchstain does not do and is done here: tiles it cannot estimate (all background, a single colour, collinear
stains) are recognised and left as they are (``None`` estimates, identity transfer) instead of raising or returning
NaN; the white background stays white (``background_weight``); Reinhard's statistics are taken on tissue pixels; the
result is rounded, not truncated, to uint8.
"""

from __future__ import annotations

import warnings

import numpy as np

IO = 240.0  # transmitted light intensity (Macenko's and torchstain's default)
BETA = 0.15  # optical density below which a channel counts as unstained (a pixel is tissue when all channels exceed it)
ALPHA = 1.0  # the percentile of the stain angles taken as the two extreme stains (robust to outliers)
MIN_TISSUE_PIXELS = 32  # fewer tissue pixels than this (or MIN_TISSUE_FRACTION of the tile): nothing to estimate
MIN_TISSUE_FRACTION = 0.02
MIN_SPREAD = 1e-4  # variance of optical density in the stain plane below which the tile is one colour
MIN_ANGLE_DEG = 3.0  # two stain vectors closer than this are one stain
BACKGROUND_OD = 0.3  # total optical density below which a pixel is blended back towards its own colour
MIN_LAB_STD = 1e-3


def optical_density(rgb: np.ndarray) -> np.ndarray:
    """-ln((I + 1) / IO) of uint8 pixels (P, 3), float64 (Macenko's convention: +1 avoids log 0)."""
    return -np.log((rgb.astype(np.float64) + 1.0) / IO)


def tissue_mask(od: np.ndarray) -> np.ndarray:
    """Pixels stained in all three channels (Macenko's ``~any(OD < beta)``)."""
    return (od >= BETA).all(axis=1)


def enough_tissue(mask: np.ndarray) -> bool:
    return int(mask.sum()) >= max(MIN_TISSUE_PIXELS, MIN_TISSUE_FRACTION * len(mask))


def background_weight(rgb: np.ndarray) -> np.ndarray:
    """Per pixel, how much of the normalised colour it takes: 0 for white (unstained glass), 1 from a total optical
    density of ``BACKGROUND_OD`` on, linear between: the background stays white and nothing jumps."""
    od = np.clip(-np.log((rgb.astype(np.float64) + 1.0) / 256.0), 0, None).sum(axis=1)
    return np.clip(od / BACKGROUND_OD, 0.0, 1.0)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(np.clip(abs(cos), 0.0, 1.0))))


def macenko_estimate(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(stain matrix 3 x 2, haematoxylin first, unit columns; the 99th percentile of each stain's concentration) of
    uint8 pixels (P, 3), or None when the pixels hold too little tissue, one colour or one stain."""
    from torchstain.numpy.normalizers import NumpyMacenkoNormalizer

    od = optical_density(rgb)
    mask = tissue_mask(od)
    if not enough_tissue(mask):
        return None
    tissue = od[mask]
    if np.linalg.eigvalsh(np.cov(tissue.T))[1] < MIN_SPREAD:  # the stain plane is spanned by the two largest
        return None
    estimator = NumpyMacenkoNormalizer()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(rgb.reshape(-1, 1, 3), Io=IO, alpha=ALPHA, beta=BETA)
    he = np.asarray(estimator.HERef, np.float64)
    max_c = np.asarray(estimator.maxCRef, np.float64)
    if not (np.isfinite(he).all() and np.isfinite(max_c).all()) or (max_c <= 1e-3).any():
        return None
    he = he / np.linalg.norm(he, axis=0, keepdims=True)
    if _angle_deg(he[:, 0], he[:, 1]) < MIN_ANGLE_DEG:
        return None
    return he, max_c


def macenko_transfer(rgb: np.ndarray, reference_he: np.ndarray, reference_max: np.ndarray) -> np.ndarray:
    """Pixels (P, 3) uint8 re-stained with the reference stains (concentrations scaled so each stain's 99th
    percentile matches the reference's); the pixels themselves when they cannot be estimated."""
    estimate = macenko_estimate(rgb)
    if estimate is None:
        return rgb
    he, max_c = estimate
    od = optical_density(rgb)
    concentrations = np.linalg.lstsq(he, od.T, rcond=None)[0]  # (2, P)
    concentrations *= (reference_max / max_c)[:, None]
    out = IO * np.exp(-(reference_he @ concentrations)).T
    return _blend(rgb, out)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (L in [0, 100], a and b around 0), float64, of uint8 pixels (P, 3) (torchstain's conversion)."""
    from torchstain.numpy.utils.rgb2lab import rgb2lab

    lab = rgb2lab(rgb.astype(np.float32) / 255.0).astype(np.float64)
    return np.stack([lab[:, 0] / 2.55, lab[:, 1] - 128.0, lab[:, 2] - 128.0], axis=1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float RGB in [0, 255] of CIELAB pixels (P, 3) as ``rgb_to_lab`` gives them."""
    from torchstain.numpy.utils.lab2rgb import lab2rgb

    opencv = np.stack([lab[:, 0] * 2.55, lab[:, 1] + 128.0, lab[:, 2] + 128.0], axis=1)
    return lab2rgb(opencv) * 255.0  # lab2rgb works in place on its argument and clips to [0, 1]


def reinhard_estimate(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, std) of the CIELAB channels of the tissue pixels (all pixels when too few are tissue), or None when
    the pixels are all background or one colour."""
    mask = background_weight(rgb) >= 1.0
    if not enough_tissue(mask):
        mask = background_weight(rgb) > 0
        if not enough_tissue(mask):
            return None
    lab = rgb_to_lab(rgb[mask])
    mean, std = lab.mean(axis=0), lab.std(axis=0)
    if (std < MIN_LAB_STD).all():
        return None
    return mean, std


def reinhard_transfer(rgb: np.ndarray, reference_mean: np.ndarray, reference_std: np.ndarray) -> np.ndarray:
    """Pixels (P, 3) uint8 whose tissue's CIELAB mean and std per channel become the reference's (a channel with no
    spread is only shifted); the pixels themselves when they cannot be estimated."""
    estimate = reinhard_estimate(rgb)
    if estimate is None:
        return rgb
    mean, std = estimate
    scale = np.where(std >= MIN_LAB_STD, reference_std / np.maximum(std, MIN_LAB_STD), 1.0)
    lab = (rgb_to_lab(rgb) - mean) * scale + reference_mean
    return _blend(rgb, lab_to_rgb(lab))


def _blend(rgb: np.ndarray, out: np.ndarray) -> np.ndarray:
    w = background_weight(rgb)[:, None]
    mixed = w * np.nan_to_num(out, nan=0.0, posinf=255.0) + (1 - w) * rgb
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
