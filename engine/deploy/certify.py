"""Certified L2 robustness by randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019), over onnxruntime.

The smoothed classifier g(x) = argmax_c P(f(x + delta) = c), delta ~ N(0, sigma^2 I), calls the class the base
model f (the deployed ONNX file) gives most often to noisy copies of x. Where the top class has probability at
least p_A > 1/2, g's call cannot change within the L2 ball of radius sigma * Phi^-1(p_A) around x (Theorem 1).
``certify_image`` is the paper's CERTIFY: ``n0`` noisy copies choose the class c_A, ``n`` fresh copies count it,
and the one-sided Clopper-Pearson bound at level ``alpha`` on that count is p_A_lower; g abstains when
p_A_lower <= 1/2, else the radius is sigma * Phi^-1(p_A_lower). With probability at least 1 - alpha over the
noise, a returned class is g(x) and g is constant on the ball.

Units: images are float32 NCHW RGB in [0, 1] (what the ONNX file takes); the noise is added in those pixel units
and NOT clamped to [0, 1] (as in the paper: the theorem is for exactly this Gaussian). f's call on a noisy copy
is the engine's decision rule on its logits (``square.predicted``). The L2 radius implies an L-inf one:
||d||_2 <= sqrt(D) ||d||_inf for D = 3 H W input values, so every perturbation of L-inf size radius / sqrt(D)
is covered; ``Certificate.linf_eps`` states it in pixel units and ``linf_255`` as k/255, to set beside the
attack curves (it is small: the L2 ball is certified, not a cube).

The Clopper-Pearson bound (an exact binomial tail, summed in log space with ``math.lgamma`` and inverted by
bisection) and Phi^-1 (``statistics.NormalDist``) are written by hand because the Diagnose edition ships without
SciPy; the tests check them against ``scipy.stats.beta.ppf``. Nothing here imports torch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from engine.core.config import CertifyConfig
from engine.core.errors import ConfigError, DataError
from engine.core.intervals import Bootstrap, metric_intervals
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.deploy.square import Predict, predicted

log = logging.getLogger(__name__)
STAGE = "certify"
DEFAULT_RADII = tuple(k / 8 for k in range(9))  # 0, 0.125, ..., 1: the L2 radii of the certified-accuracy curve


@dataclass(frozen=True)
class Certificate:
    """One image's certificate: ``predicted`` class index (None: abstain), ``p_a_lower`` (the lower confidence
    bound on the top class's probability under noise), ``radius`` (certified L2 radius in pixel units; 0 when
    abstaining), ``counts`` (the ``n`` estimation copies per class), ``selection_counts`` (the ``n0`` copies that
    chose the class) and ``n_inputs`` (3 H W, for the L-inf equivalent)."""

    predicted: int | None
    p_a_lower: float
    radius: float
    counts: tuple[int, ...]
    selection_counts: tuple[int, ...]
    n_inputs: int

    @property
    def abstained(self) -> bool:
        return self.predicted is None

    @property
    def linf_eps(self) -> float:
        """The L-inf radius (pixel units) the L2 certificate covers: radius / sqrt(3 H W)."""
        return self.radius / math.sqrt(self.n_inputs)

    @property
    def linf_255(self) -> float:
        """``linf_eps`` as k/255 of the pixel range."""
        return self.linf_eps * 255


def clopper_pearson_lower(successes: int, trials: int, alpha: float) -> float:
    """The one-sided (1 - ``alpha``) Clopper-Pearson lower bound on a binomial proportion: the p at which
    P(Binomial(trials, p) >= successes) = alpha (scipy: ``beta.ppf(alpha, k, n - k + 1)``). 0 for no success,
    alpha^(1/n) for all successes; otherwise found by bisection, to within about 1e-15 (the bisection keeps the
    side whose tail is at most alpha)."""
    k, n = int(successes), int(trials)
    if n < 1 or not 0 <= k <= n:
        raise ConfigError(f"a binomial bound needs 0 <= successes <= trials and trials >= 1 (got {k} of {n})")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha {alpha} must be in (0, 1)")
    if k == 0:
        return 0.0
    if k == n:
        return float(alpha ** (1.0 / n))
    log_fact = np.array([math.lgamma(i + 1.0) for i in range(n + 1)])
    i = np.arange(k, n + 1)
    log_binom = log_fact[n] - log_fact[i] - log_fact[n - i]
    target, low, high = math.log(alpha), 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if mid in (low, high):
            break
        if _log_upper_tail(log_binom, i, n, mid) > target:
            high = mid
        else:
            low = mid
    return low


def _log_upper_tail(log_binom: np.ndarray, i: np.ndarray, n: int, p: float) -> float:
    """log P(X >= k) for X ~ Binomial(n, p): a log-sum-exp over the terms i = k..n."""
    terms = log_binom + i * math.log(p) + (n - i) * math.log1p(-p)
    top = terms.max()
    return float(top + math.log(np.exp(terms - top).sum()))


def smoothing_radius(p_a_lower: float, sigma: float) -> float:
    """sigma * Phi^-1(p_A_lower): the certified L2 radius (0 at or below 1/2, where g abstains)."""
    if p_a_lower <= 0.5:
        return 0.0
    return float(sigma * NormalDist().inv_cdf(p_a_lower))


def noisy_counts(
    predict: Predict,
    x: np.ndarray,
    sigma: float,
    num: int,
    batch_size: int,
    rng: np.random.Generator,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """How often ``predict`` calls each class on ``num`` copies of ``x`` (3, H, W) plus N(0, sigma^2) noise (not
    clamped), ``batch_size`` copies per call; the noise comes from ``rng``."""
    counts = np.zeros(0, np.int64)
    remaining = int(num)
    while remaining > 0:
        check_cancel(cancel, STAGE)
        size = min(batch_size, remaining)
        batch = rng.standard_normal((size, *x.shape), dtype=np.float32)
        batch *= np.float32(sigma)
        batch += x
        logits = np.asarray(predict(batch))
        calls = np.bincount(predicted(logits), minlength=logits.shape[1])
        counts = calls if not counts.size else counts + calls
        remaining -= size
    return counts


def certify_image(
    predict: Predict, x: np.ndarray, cfg: CertifyConfig, rng: np.random.Generator, cancel: CancelToken | None = None
) -> Certificate:
    """CERTIFY for one float32 image (3, H, W) in [0, 1], with ``cfg.sigma`` (which must be set)."""
    sigma = _sigma(cfg)
    selection = noisy_counts(predict, x, sigma, cfg.n0, cfg.batch_size, rng, cancel)
    top = int(selection.argmax())
    counts = noisy_counts(predict, x, sigma, cfg.n, cfg.batch_size, rng, cancel)
    p_lower = clopper_pearson_lower(int(counts[top]), cfg.n, cfg.alpha)
    abstain = p_lower <= 0.5
    return Certificate(
        predicted=None if abstain else top, p_a_lower=p_lower, radius=smoothing_radius(p_lower, sigma),
        counts=tuple(int(c) for c in counts), selection_counts=tuple(int(c) for c in selection), n_inputs=int(x.size),
    )  # fmt: skip


def certify_arrays(
    predict: Predict,
    images: np.ndarray,
    cfg: CertifyConfig,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[Certificate]:
    """``certify_image`` for each float32 NCHW image in [0, 1]. Image i's noise comes from
    ``default_rng([cfg.seed, i])``: the same seed gives the same certificates, whatever the batch size."""
    _sigma(cfg)
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1] != 3:
        raise DataError(f"images must be float (N, 3, H, W) in [0, 1], got shape {x.shape}")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise DataError("images must be RGB in [0, 1] (normalisation is the model's first layer)")
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = []
    for i, image in enumerate(x):
        out.append(certify_image(predict, image, cfg, np.random.default_rng([cfg.seed, i]), cancel))
        report(on_progress, STAGE, i + 1, len(x), unit="images", metrics=_running(out))
    return out


def _running(certs: list[Certificate]) -> dict[str, float]:
    return {"abstained": float(np.mean([c.abstained for c in certs])), "radius": certs[-1].radius}


def _sigma(cfg: CertifyConfig) -> float:
    if cfg.sigma is None:
        raise ConfigError("certification needs the noise sigma (the model's own, or --sigma)")
    return float(cfg.sigma)


def certified_accuracy_curve(
    results: Sequence[Certificate],
    labels: Sequence[int],
    radii: Sequence[float] = DEFAULT_RADII,
    *,
    groups: Sequence | None = None,
    bootstrap: Bootstrap | None = None,
) -> list[dict]:
    """Certified accuracy at each L2 radius r: the fraction of images whose call is right, not an abstention, and
    certified to a radius >= r; with its interval by the patient-level bootstrap (``groups``: each image's patient,
    each image its own without) of the per-image 0/1 'certified correct at r'. Rows: radius, linf_255 (the L-inf
    k/255 that radius implies for these images), accuracy, ci, n."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(results):
        raise DataError(f"{len(results)} certificates but {len(labels)} labels")
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    pred = np.array([-1 if c.predicted is None else c.predicted for c in results], dtype=np.int64)
    radius = np.array([c.radius for c in results], dtype=np.float64)
    n_inputs = results[0].n_inputs if len(results) else 1
    rows = []
    binary = len(labels) > 0 and set(np.unique(labels).tolist()) <= {0, 1}
    for r in radii:
        hit = (pred == labels) & (radius >= r)
        ci = metric_intervals(np.ones(len(hit), bool), None, groups, y_pred=hit, bootstrap=bootstrap,
                              metrics=("accuracy",))["accuracy"]  # fmt: skip
        accuracy = float(hit.mean()) if len(hit) else None
        row = {"radius": float(r), "linf_255": float(r) / math.sqrt(n_inputs) * 255, "accuracy": accuracy, "ci": ci,
               "n": int(len(hit))}  # fmt: skip
        if binary:  # balanced: the mean over the two classes of the share certified correct (class 1 as "positive":
            # a certified-correct image counts as a right call of its own class, any other as the wrong one)
            y = labels == 1
            bal = metric_intervals(y, None, groups, y_pred=np.where(hit, y, ~y), bootstrap=bootstrap,
                                   metrics=("balanced_accuracy",))["balanced_accuracy"]  # fmt: skip
            present = [hit[labels == c].mean() for c in (0, 1) if (labels == c).any()]
            row |= {"balanced_accuracy": float(np.mean(present)), "ci_balanced": bal}
        rows.append(row)
    return rows
