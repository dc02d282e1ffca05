"""Honest probabilities: calibration error, Brier score, the reliability diagram, temperature scaling, the
"uncertain" review band and the coverage-versus-accuracy (selective prediction) curve. Torch-free numpy.

A network trained with cross-entropy is usually over-confident: it says 0.99 where it is right 85% of the
time. Temperature scaling (Guo et al., ICML 2017) divides the logits by one number T > 0 fitted on the
validation split by minimising the negative log-likelihood; it never changes a call (the larger logit stays
the larger), so accuracy, sensitivity and the attacks, which work on logits, are untouched.

ECE here is the binary calibration error of p(positive): images binned by p(positive) into equal-width bins,
the weighted mean of |share of positive images - mean p(positive)| over the bins (what a reliability diagram
shows). The 1-D fit is written by hand (golden-section search on 1/T, where the NLL is convex): scipy is not
part of the Diagnose edition, and forty lines of numpy are easier to audit than an optimiser's options.
"""

from __future__ import annotations

import math

import numpy as np

from engine.core.errors import ConfigError
from engine.core.intervals import Bootstrap, percentile_interval, resample_weights

N_BINS = 10
DEFAULT_REVIEW_BAND = (0.2, 0.8)  # p(positive) in this band: flagged "uncertain", for a pathologist to review
T_RANGE = (0.05, 20.0)


def log_probs(probs_or_logits: np.ndarray, *, logits: bool = False) -> np.ndarray:
    """Log-probabilities (N, C) from probabilities, or from logits with ``logits=True`` (float64)."""
    x = np.asarray(probs_or_logits, dtype=np.float64)
    if logits:
        x = x - x.max(axis=1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    return np.log(np.clip(x, 1e-300, 1.0))


def with_temperature(probs_or_logits: np.ndarray, temperature: float, *, logits: bool = False) -> np.ndarray:
    """softmax(z / T) for the logits z of ``probs_or_logits`` (probabilities work too: log p = z - const)."""
    z = log_probs(probs_or_logits, logits=logits) / float(temperature)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(probs_or_logits: np.ndarray, labels, temperature: float = 1.0, *, logits: bool = False) -> float:
    """Mean negative log-likelihood of the labels after dividing the logits by ``temperature``."""
    y = np.asarray(labels, dtype=np.int64)
    lp = log_probs(with_temperature(probs_or_logits, temperature, logits=logits))
    return float(-lp[np.arange(len(y)), y].mean())


def fit_temperature(probs_or_logits: np.ndarray, labels, *, logits: bool = False, tol: float = 1e-5) -> float:
    """The T in ``T_RANGE`` minimising the validation NLL (golden-section search on beta = 1/T, where the NLL
    is convex). ConfigError when there is nothing to fit on."""
    y = np.asarray(labels, dtype=np.int64)
    if len(y) < 2:
        raise ConfigError("temperature scaling needs validation images (two at least); the split has none")
    lp = log_probs(probs_or_logits, logits=logits)
    loss = lambda beta: nll(lp, y, 1.0 / beta, logits=True)  # noqa: E731 (log-probabilities are logits)
    lo, hi = 1.0 / T_RANGE[1], 1.0 / T_RANGE[0]
    golden = (math.sqrt(5) - 1) / 2
    a, b = lo + (1 - golden) * (hi - lo), lo + golden * (hi - lo)
    fa, fb = loss(a), loss(b)
    while hi - lo > tol:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = lo + (1 - golden) * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + golden * (hi - lo)
            fb = loss(b)
    return float(1.0 / ((lo + hi) / 2))


def brier(prob_pos, labels) -> float | None:
    """Mean squared difference between p(positive) and the 0/1 label (0 perfect, 0.25 a coin at 0.5)."""
    p, y = np.asarray(prob_pos, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    return float(np.mean((p - y) ** 2)) if len(p) else None


def bin_index(prob_pos, n_bins: int = N_BINS) -> np.ndarray:
    """The equal-width bin of each p(positive); p = 1 goes to the last bin."""
    return np.minimum((np.asarray(prob_pos, dtype=np.float64) * n_bins).astype(np.int64), n_bins - 1)


def reliability(prob_pos, labels, n_bins: int = N_BINS) -> list[dict]:
    """The reliability diagram's bins: [low, high), images, mean p(positive) and the share that is positive."""
    p, y = np.asarray(prob_pos, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    k = bin_index(p, n_bins)
    out = []
    for b in range(n_bins):
        inside = k == b
        n = int(inside.sum())
        out.append(
            {
                "low": b / n_bins,
                "high": (b + 1) / n_bins,
                "n": n,
                "mean_predicted": float(p[inside].mean()) if n else None,
                "observed": float(y[inside].mean()) if n else None,
            }
        )
    return out


def ece(prob_pos, labels, n_bins: int = N_BINS) -> float | None:
    """Expected calibration error of p(positive) over ``n_bins`` equal-width bins (0 = perfectly calibrated)."""
    bins = reliability(prob_pos, labels, n_bins)
    n = sum(b["n"] for b in bins)
    if not n:
        return None
    return float(sum(b["n"] * abs(b["observed"] - b["mean_predicted"]) for b in bins if b["n"]) / n)


def check_band(band) -> tuple[float, float]:
    """A review band (low, high) with 0 <= low <= 0.5 <= high <= 1; ConfigError saying what is wrong."""
    try:
        low, high = (float(v) for v in band)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"a review band is two probabilities such as 0.2,0.8, not {band!r}") from exc
    if not 0 <= low <= 0.5 <= high <= 1:
        raise ConfigError(
            f"the review band {low:g}–{high:g} must contain 0.5 and lie in [0, 1] (for example 0.2,0.8): it flags "
            "the calls a model is unsure of"
        )
    return low, high


def uncertain(prob_pos, band=DEFAULT_REVIEW_BAND) -> np.ndarray:
    """Which calls fall in the review band: low <= p(positive) <= high (to be looked at by a pathologist)."""
    low, high = check_band(band)
    p = np.asarray(prob_pos, dtype=np.float64)
    return (p >= low) & (p <= high)


def selective_curve(prob_pos, labels, steps: int = 20) -> list[dict]:
    """Coverage against accuracy: keep the most confident share of images (confidence = |p - 0.5|), from all
    of them down to 1/``steps``; accuracy on what is kept. A curve that rises as coverage falls shows that
    referring the least confident calls to a pathologist buys accuracy on the rest."""
    p, y = np.asarray(prob_pos, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    if not len(p):
        return []
    order = np.argsort(-np.abs(p - 0.5), kind="mergesort")
    right = ((p >= 0.5).astype(np.int64) == y)[order]
    out = []
    for s in range(steps, 0, -1):
        k = max(1, round(len(p) * s / steps))
        out.append({"coverage": k / len(p), "accuracy": float(right[:k].mean()), "n": int(k)})
    return out


def band_summary(prob_pos, labels, band=DEFAULT_REVIEW_BAND) -> dict:
    """What the review band does on a labelled set: how many calls it flags, and the accuracy of the others."""
    p, y = np.asarray(prob_pos, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    flagged = uncertain(p, band)
    right = (p >= 0.5).astype(np.int64) == y
    kept = ~flagged
    return {
        "band": list(check_band(band)),
        "flagged": int(flagged.sum()),
        "n": int(len(p)),
        "coverage": float(kept.mean()) if len(p) else None,
        "accuracy_all": float(right.mean()) if len(p) else None,
        "accuracy_kept": float(right[kept].mean()) if kept.any() else None,
        "accuracy_flagged": float(right[flagged].mean()) if flagged.any() else None,
    }


def calibration_metrics(prob_pos, labels, groups=None, bootstrap=None, n_bins: int = N_BINS) -> dict:
    """ECE and Brier score of p(positive) with their patient-level bootstrap intervals (``engine.core.intervals``),
    and the reliability diagram's bins."""
    p, y = np.asarray(prob_pos, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    out = {"ece": ece(p, y, n_bins), "brier": brier(p, y), "reliability": reliability(p, y, n_bins), "n": int(len(p))}
    if len(p) == 0:
        return {**out, "ci": {"ece": None, "brier": None}}
    bootstrap = bootstrap or Bootstrap()
    weights, inverse = resample_weights(np.arange(len(p)) if groups is None else groups, bootstrap)
    if weights.shape[1] < 2:
        return {**out, "ci": {"ece": None, "brier": None}}
    cols = np.zeros((weights.shape[1], 3 * n_bins + 1))  # per patient: per bin n, sum p, sum y; squared error
    k = bin_index(p, n_bins)
    np.add.at(cols, (inverse, k), 1.0)
    np.add.at(cols, (inverse, n_bins + k), p)
    np.add.at(cols, (inverse, 2 * n_bins + k), y)
    np.add.at(cols[:, -1], inverse, (p - y) ** 2)
    sums = weights @ cols
    n_bin, sum_p, sum_y = sums[:, :n_bins], sums[:, n_bins : 2 * n_bins], sums[:, 2 * n_bins : 3 * n_bins]
    total = n_bin.sum(axis=1)
    eces = np.abs(sum_y - sum_p).sum(axis=1) / total  # sum over bins of n_b * |mean y - mean p| / n
    briers = sums[:, -1] / total
    out["ci"] = {
        "ece": percentile_interval(eces, bootstrap.confidence),
        "brier": percentile_interval(briers, bootstrap.confidence),
    }
    return out
