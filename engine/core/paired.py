"""Paired comparisons of two models on the same images: is one really more accurate than the other?

Two answers, because each has a blind spot. The exact McNemar test counts the discordant images (right for
one model only) and asks how likely so lopsided a split is if both models were equally accurate; it treats
images as independent. The patient-level paired bootstrap resamples patients (the same resamples for both
models, so the pairing is kept) and gives an interval for the difference in accuracy, honest about images of
one patient moving together. A difference whose interval excludes 0 and whose p-value is small is one a
reviewer accepts. Torch-free.
"""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np

from engine.core.intervals import Bootstrap, percentile_interval, resample_weights


def mcnemar_exact(correct_x, correct_y) -> dict:
    """Discordant counts and the two-sided exact McNemar p-value (the binomial test of the discordant pairs
    against 1/2; 1.0 when there is none)."""
    x, y = np.asarray(correct_x, dtype=bool), np.asarray(correct_y, dtype=bool)
    only_x, only_y = int(np.sum(x & ~y)), int(np.sum(~x & y))
    n, low = only_x + only_y, min(only_x, only_y)
    if n == 0:
        return {"only_x_right": 0, "only_y_right": 0, "p_value": 1.0}
    tail = Fraction(sum(comb(n, k) for k in range(low + 1)), 2**n)  # exact: no underflow for large n
    return {"only_x_right": only_x, "only_y_right": only_y, "p_value": float(min(Fraction(1), 2 * tail))}


def paired_difference(correct_x, correct_y, groups, bootstrap: Bootstrap | None = None) -> dict:
    """Accuracy of x minus accuracy of y on the same images, with its patient-level bootstrap interval."""
    bootstrap = bootstrap or Bootstrap()
    x, y = np.asarray(correct_x, dtype=np.float64), np.asarray(correct_y, dtype=np.float64)
    if len(x) == 0:
        return {"difference": None, "ci": None}
    weights, inverse = resample_weights(groups, bootstrap)
    if weights.shape[1] < 2:  # one patient: every resample is the same set
        return {"difference": float(x.mean() - y.mean()), "ci": None}
    per_group = np.zeros((weights.shape[1], 3))
    for k, col in enumerate((x, y, np.ones_like(x))):
        np.add.at(per_group[:, k], inverse, col)
    sx, sy, n = (weights @ per_group).T
    return {"difference": float(x.mean() - y.mean()), "ci": percentile_interval((sx - sy) / n, bootstrap.confidence)}


def compare(correct_x, correct_y, groups, bootstrap: Bootstrap | None = None) -> dict:
    """Both answers for one pair of models on one set of images."""
    x, y = np.asarray(correct_x, dtype=bool), np.asarray(correct_y, dtype=bool)
    return {
        "accuracy_x": float(x.mean()) if len(x) else None,
        "accuracy_y": float(y.mean()) if len(y) else None,
        **paired_difference(x, y, groups, bootstrap),
        **mcnemar_exact(x, y),
        "n": int(len(x)),
    }
