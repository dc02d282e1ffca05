"""Calls of a model trained with Gaussian noise (randomized smoothing): the smoothed classifier, not the base one.

A model trained on x + N(0, sigma^2) (``--defence gaussian``) is a *base* classifier: the model a lab should use is
its smoothed classifier g(x) = the class the base model calls most often on noisy copies of x (Cohen, Rosenfeld &
Kolter 2019). The base model alone on clean images can be far off (on the IDC patches, DenseNet121 trained with
sigma 0.25 called every clean patch the same class: balanced accuracy 0.50, where its smoothed classifier reached
0.87), so ``histoguard predict`` and the Diagnose page call such a model through ``smoothed_probabilities``: the
share of ``SAMPLES`` noisy copies called each class (seeded per image, so a call is reproducible). These shares are
vote fractions, not calibrated probabilities; ``histoguard certify`` adds the guarantee. Torch-free.
"""

from __future__ import annotations

import numpy as np

from engine.core.metadata import ModelMeta
from engine.deploy.certify import noisy_counts

SAMPLES = 100  # noisy copies per call: a vote share to within about +-0.1 (95%), in about 100 forward passes
SEED = 0


def model_sigma(meta: ModelMeta) -> float | None:
    """The noise sigma the model was trained with (its training record), or None when it was not."""
    how = meta.training if isinstance(meta.training, dict) else {}
    sigma = how.get("sigma") if how.get("method") == "gaussian" else None
    return float(sigma) if isinstance(sigma, (int, float)) and 0 < sigma <= 1 else None


def smoothed_probabilities(
    predict, images: np.ndarray, sigma: float, *, samples: int = SAMPLES, seed: int = SEED, keys=None,
    batch_size: int = 100,
) -> np.ndarray:  # fmt: skip
    """(N, classes) float32: for each float32 (3, H, W) image in [0, 1], the share of ``samples`` copies plus
    N(0, sigma^2) noise that ``predict`` (images -> logits) calls each class. Image i's noise comes from
    ``default_rng([seed, keys[i]])`` (``keys``: ints, default the index), the same on every run."""
    x = np.asarray(images, dtype=np.float32)
    keys = range(len(x)) if keys is None else keys
    shares = [noisy_counts(predict, image, sigma, samples, batch_size, np.random.default_rng([seed, int(k)]))
              for image, k in zip(x, keys)]  # fmt: skip
    if not shares:
        return np.zeros((0, 0), np.float32)
    width = max(len(s) for s in shares)
    out = np.zeros((len(shares), width), np.float32)
    for i, s in enumerate(shares):
        out[i, : len(s)] = s / samples
    return out


def describe(sigma: float, samples: int = SAMPLES) -> str:
    return f"smoothed: the share of {samples} copies with Gaussian noise sigma {sigma:g} called each class"
