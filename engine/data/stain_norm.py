"""Stain normalisation between labs: every image is re-coloured to one reference stain before the model sees it.

Two methods (``engine.data.stain_methods`` holds the maths): **Macenko** (ISBI 2009) estimates each image's
haematoxylin and eosin vectors in optical density and re-synthesises the image with the reference's vectors and
concentration range; **Reinhard** (2001) matches each image's CIELAB mean and standard deviation (of its tissue) to
the reference's. The reference is a plain JSON record, stored in the model's metadata (``ModelMeta.stain_norm``, in
the checkpoint and the ONNX file) and applied wherever the model runs:

- macenko: ``{"method": "macenko", "stain_matrix": 3 x 2 (rows R, G, B; columns haematoxylin, eosin; unit optical
  density vectors), "max_concentrations": [h, e] (99th percentiles), "io": 240, "beta": 0.15, "alpha": 1,
  "fitted_on": "..."}``
- reinhard: ``{"method": "reinhard", "lab_mean": [L, a, b], "lab_std": [L, a, b], "fitted_on": "..."}``

A model without the record (older models, or trained with ``stain_norm="none"``) sees its images as they are.
Images are uint8 RGB, one (H, W, 3) or a batch (N, H, W, 3); the result has the same shape and dtype. An image that
cannot be estimated (all background, one colour, one stain) is returned unchanged. Torch-free.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from engine.core.config import STAIN_METHODS as METHODS
from engine.core.errors import DataError, ModelError
from engine.data import stain_methods as sm

log = logging.getLogger(__name__)
LABELS = {"none": "none", "macenko": "Macenko", "reinhard": "Reinhard"}
FIT_IMAGES = 200  # the reference of a training set: the median of the estimates of at most this many images
FIT_SEED = 0


def _as_batch(images: np.ndarray) -> tuple[np.ndarray, bool]:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[-1:] != (3,) or images.ndim not in (3, 4):
        raise DataError(
            f"stain normalisation takes uint8 RGB images (H, W, 3) or (N, H, W, 3), got {images.dtype} {images.shape}"
        )
    return (images[None], True) if images.ndim == 3 else (images, False)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise DataError(f"stain normalisation {method!r} is unknown; choose one of {', '.join(METHODS)}")
    return method


def fit_reference(
    method: str, images: np.ndarray, *, fitted_on: str = "", max_images: int = FIT_IMAGES, seed: int = FIT_SEED
) -> dict:
    """The reference record of ``images`` (one image or a batch): each of at most ``max_images`` of them (a seeded
    random sample) is estimated alone, images that cannot be estimated are skipped, and the reference is the
    element-wise median of the estimates (Macenko's stain vectors renormalised to unit length), robust to odd tiles.
    DataError when no image has enough stained tissue."""
    check_method(method)
    if method == "none":
        raise DataError("stain normalisation 'none' has no reference to fit")
    batch, _ = _as_batch(images)
    pick = np.sort(np.random.default_rng(seed).permutation(len(batch))[:max_images])
    estimate = sm.macenko_estimate if method == "macenko" else sm.reinhard_estimate
    found = [e for e in (estimate(batch[i].reshape(-1, 3)) for i in pick) if e is not None]
    if not found:
        raise DataError(
            f"none of the {len(pick)} images sampled has enough stained tissue to fit a {LABELS[method]} reference "
            "(they are blank or one colour); choose a stain reference image with tissue on it, or no stain "
            "normalisation"
        )
    first = np.median(np.stack([f[0] for f in found]), axis=0)
    second = np.median(np.stack([f[1] for f in found]), axis=0)
    what = fitted_on or f"{len(batch)} image(s)"
    detail = f"{what}: median of {len(found)} of {len(pick)} sampled images (seed {seed})"
    if method == "macenko":
        first = first / np.linalg.norm(first, axis=0, keepdims=True)
        record = {"method": "macenko", "stain_matrix": first.round(6).tolist(),
                  "max_concentrations": second.round(6).tolist(), "io": sm.IO, "beta": sm.BETA,
                  "alpha": sm.ALPHA}  # fmt: skip
    else:
        record = {"method": "reinhard", "lab_mean": first.round(6).tolist(), "lab_std": second.round(6).tolist()}
    return {**record, "fitted_on": detail}


def reference_from_image(method: str, path, size: int | None = None) -> dict:
    """The reference record of one image file (``--stain-reference``), decoded as training images are (resized to
    ``size`` when given)."""
    from engine.data.decode import decode_image, load_rgb

    image = decode_image(path, size) if size else np.asarray(load_rgb(path), np.uint8)
    return fit_reference(method, image, fitted_on=f"the reference image {getattr(path, 'name', path)}")


def _transfer(record: dict) -> Callable[[np.ndarray], np.ndarray]:
    """The per-image function of a record (ModelError when the record cannot be read)."""
    method = record.get("method") if isinstance(record, dict) else None
    try:
        if method == "macenko":
            he = np.asarray(record["stain_matrix"], np.float64)
            max_c = np.asarray(record["max_concentrations"], np.float64)
            ok = he.shape == (3, 2) and max_c.shape == (2,) and (max_c > 0).all()
            return (lambda px: sm.macenko_transfer(px, he, max_c)) if ok and np.isfinite(he).all() else None
        if method == "reinhard":
            mean = np.asarray(record["lab_mean"], np.float64)
            std = np.asarray(record["lab_std"], np.float64)
            ok = mean.shape == (3,) and std.shape == (3,) and np.isfinite(mean).all() and (std > 0).all()
            return (lambda px: sm.reinhard_transfer(px, mean, std)) if ok else None
    except (KeyError, TypeError, ValueError):
        pass
    return None


def check_record(record: dict | None, source: str = "the model") -> None:
    """ModelError unless ``record`` is None or a stain reference HistoGuard can apply."""
    if record is not None and _transfer(record) is None:
        raise ModelError(
            f"{source} records a stain normalisation HistoGuard cannot read ({str(record)[:120]}); export the model "
            "again with this version of HistoGuard"
        )


def normalise(images: np.ndarray, record: dict | None) -> np.ndarray:
    """``images`` (uint8 (H, W, 3) or (N, H, W, 3)) re-stained to ``record``'s reference; ``images`` themselves
    when ``record`` is None. The input is not modified."""
    if record is None:
        return images
    check_record(record)
    transfer = _transfer(record)
    batch, single = _as_batch(images)
    out = np.empty_like(batch)
    for i, image in enumerate(batch):
        out[i] = transfer(image.reshape(-1, 3)).reshape(image.shape)
    return out[0] if single else out


def describe(record: dict | None) -> str:
    """'Macenko (fitted on ...)' or 'none', for logs, reports and the app."""
    if not record:
        return "none"
    return f"{LABELS.get(record.get('method'), record.get('method'))} (reference: {record.get('fitted_on', '?')})"


def model_stain(meta) -> dict | None:
    """The stain reference a model's metadata (``ModelMeta``) records, checked; None for a model without one."""
    record = getattr(meta, "stain_norm", None)
    check_record(record, source=f"{getattr(meta, 'model_name', None) or 'the model'}")
    return record


def for_model(meta, images: np.ndarray) -> np.ndarray:
    """``images`` as the model ``meta`` describes was trained to see them (stain-normalised when it records a
    reference, as they are otherwise): the one call every path that feeds a model decoded pixels makes."""
    return normalise(images, model_stain(meta))
