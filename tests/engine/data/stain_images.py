"""H&E-like test images made by Beer-Lambert from known stain vectors and concentrations (no files, no torch)."""

from __future__ import annotations

import numpy as np

# optical density (R, G, B) of haematoxylin and eosin (Ruifrok & Johnston's), and another lab's: a bluer
# haematoxylin and a more orange eosin
REFERENCE_STAINS = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11]]).T
OTHER_LAB_STAINS = np.array([[0.55, 0.80, 0.25], [0.15, 0.90, 0.30]]).T


LIGHT = 240.0  # the light through the slide: stained tissue is never brighter (Macenko's Io)


def he_images(stains: np.ndarray, n: int = 4, size: int = 32, seed: int = 0, strength: float = 1.0) -> np.ndarray:
    """(n, size, size, 3) uint8: 80% of the pixels tissue with random haematoxylin and eosin concentrations (the
    same for the same seed, whatever the stains), the rest white glass."""
    rng = np.random.default_rng(seed)
    unit = stains / np.linalg.norm(stains, axis=0, keepdims=True)
    out = []
    for _ in range(n):
        c = np.zeros((size * size, 2))
        tissue = rng.random(size * size) < 0.8
        c[tissue, 0] = rng.gamma(2.0, 0.35, tissue.sum())
        c[tissue, 1] = rng.gamma(2.0, 0.30, tissue.sum())
        rgb = LIGHT * np.exp(-strength * c @ unit.T)
        rgb[~tissue] = 255.0
        out.append(np.clip(np.rint(rgb), 0, 255).astype(np.uint8).reshape(size, size, 3))
    return np.stack(out)


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())
