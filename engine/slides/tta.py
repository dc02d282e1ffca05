"""Test-time augmentation of slide tiles: the model's probabilities averaged over flips and 90° rotations.

A tissue tile has no "up": a tumour looks the same turned or mirrored, so the mean over the dihedral group's
transforms of a tile is a call that does not depend on how the slide lay in the scanner, at T times the
inference cost. ``flips`` is the 4 images made by the horizontal and vertical flips (identity, left-right,
up-down, both = 180° turn); ``d4`` is all 8 (the 4 rotations by 90°, each also mirrored). The images of one
batch of tiles under every transform go to the model in one ``run_session`` call (transform-major, so each
``session.run`` sees one transform of ``batch_size`` tiles) and the probabilities are averaged per tile.
numpy only: the Diagnose edition runs it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.core.errors import ConfigError
from engine.deploy.session import run_session

Transform = Callable[[np.ndarray], np.ndarray]  # on (..., H, W) arrays: the last two axes are the image's


def _rot(k: int, mirror: bool) -> Transform:
    def apply(x: np.ndarray) -> np.ndarray:
        return np.rot90(x[..., ::-1] if mirror else x, k, axes=(-2, -1))

    return apply


def _flip(rows: bool, cols: bool) -> Transform:
    def apply(x: np.ndarray) -> np.ndarray:
        return x[..., :: -1 if rows else 1, :: -1 if cols else 1]

    return apply


TRANSFORMS: dict[str, tuple[Transform, ...]] = {
    "none": (_flip(False, False),),
    "flips": (_flip(False, False), _flip(False, True), _flip(True, False), _flip(True, True)),
    "d4": tuple(_rot(k, mirror) for mirror in (False, True) for k in range(4)),
}
TTA_MODES = tuple(TRANSFORMS)


def check_tta(mode: str) -> str:
    if mode not in TRANSFORMS:
        raise ConfigError(f"test-time augmentation {mode!r} is unknown; use one of {', '.join(TTA_MODES)}")
    return mode


def tta_record(mode: str) -> dict:
    """How the tiles were augmented, as slide.json keeps it."""
    return {"mode": mode, "transforms": len(TRANSFORMS[check_tta(mode)]), "average": "probabilities"}


def expand(images: np.ndarray, mode: str) -> np.ndarray:
    """(N, C, H, W) -> (T * N, C, H, W): every transform of the batch, transform-major (contiguous)."""
    transforms = TRANSFORMS[check_tta(mode)]
    if len(transforms) == 1:
        return images
    return np.concatenate([t(images) for t in transforms])


def tta_probabilities(session, images: np.ndarray, mode: str = "none", batch_size: int = 32) -> np.ndarray:
    """(N, classes): the model's probabilities for float32 NCHW ``images``, averaged over ``mode``'s transforms
    (one ``run_session`` call for the whole batch of tiles x transforms)."""
    n = len(images)
    probs = run_session(session, expand(images, mode), batch_size)
    if len(probs) == n:
        return probs
    return probs.reshape(-1, n, probs.shape[-1]).mean(axis=0)
