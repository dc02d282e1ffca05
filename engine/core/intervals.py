"""95% confidence intervals for every metric, by a patient-level (cluster) bootstrap.

Images of one patient are not independent (same tissue, same stain, same scanner day), so resampling images
would make intervals too narrow. Each resample draws as many patients as the set has, with replacement, and
takes all their images; a metric's interval is the 2.5th and 97.5th percentile of its value over the resamples
(the percentile bootstrap). A resample in which a metric is undefined (sensitivity without a positive image)
is left out of that metric's interval; when fewer than half the resamples define it, the interval is None. A
metric resting on a single patient has no interval, and a perfect (or zero) score, where every resample agrees,
gets the exact Clopper-Pearson bound with the patients as the count (see ``_interval``). With few patients the
percentile bootstrap still covers less than it claims: the report says how many patients the intervals rest on.

The resampling is vectorised: the confusion-matrix counts of each patient are summed with the resample's
patient multiplicities (one matrix product for all resamples), and the ROC AUC is the weighted Mann-Whitney
statistic over the same multiplicities. Seeded: the same data and settings give the same intervals. Torch-free.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from engine.core.errors import ConfigError, option
from engine.core.metrics import classification_metrics

INTERVAL_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "precision",
    "f1",
    "roc_auc",
    "missed_cancer_rate",
)
METHOD = "patient-level cluster bootstrap, percentile interval"


@dataclass(frozen=True)
class Bootstrap:
    n_resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.n_resamples < 10 or not 0.5 <= self.confidence < 1:
            raise ConfigError(
                f"a bootstrap needs at least 10 resamples and a confidence in [0.5, 1) (got {self.n_resamples} "
                f"resamples, confidence {self.confidence}); pass {option('bootstrap_resamples')} 1000 for the default"
            )

    def describe(self) -> dict:
        return {"method": METHOD, **asdict(self)}


def metrics_with_intervals(
    y_true,
    prob_pos=None,
    *,
    y_pred=None,
    groups=None,
    bootstrap: Bootstrap | None = None,
    threshold: float = 0.5,
    keys: tuple[str, ...] | None = None,
) -> dict:
    """``engine.core.metrics.classification_metrics`` of the call p(positive) >= ``threshold`` (or of ``y_pred``)
    with ``"ci"``: {metric: [low, high] or None} for every interval metric (or those of ``keys``, which then also
    limits the point estimates). ``groups`` names each image's patient; without it each image is its own."""
    y = np.asarray(y_true, dtype=np.int64)
    scores = None if prob_pos is None else np.asarray(prob_pos, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.int64) if y_pred is not None else (scores >= threshold).astype(np.int64)
    m = classification_metrics(y, pred, scores)
    groups = np.arange(len(y)) if groups is None else groups
    wanted = tuple(k for k in INTERVAL_METRICS if keys is None or k in keys)
    if scores is None:
        wanted = tuple(k for k in wanted if k != "roc_auc")
    ci = metric_intervals(y, scores, groups, y_pred=pred, bootstrap=bootstrap, metrics=wanted)
    ci = {k: (v if m.get(k) is not None else None) for k, v in ci.items()}
    if keys is not None:
        m = {k: m[k] for k in (*keys, "n") if k in m}
    return {**m, "ci": ci}


def resample_weights(groups: np.ndarray, bootstrap: Bootstrap) -> tuple[np.ndarray, np.ndarray]:
    """(W, inverse): W[b, g] is how often group g is drawn in resample b (each row sums to the number of
    groups); ``inverse`` maps each item to its group's column."""
    _, inverse = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    n_groups = int(inverse.max()) + 1 if len(inverse) else 0
    rng = np.random.default_rng(bootstrap.seed)
    if n_groups == 0:
        return np.zeros((bootstrap.n_resamples, 0)), inverse
    draws = rng.integers(0, n_groups, size=(bootstrap.n_resamples, n_groups))
    weights = np.zeros((bootstrap.n_resamples, n_groups))
    np.add.at(weights, (np.arange(bootstrap.n_resamples)[:, None], draws), 1.0)
    return weights, inverse


def metric_intervals(
    y_true,
    prob_pos,
    groups,
    *,
    threshold: float = 0.5,
    bootstrap: Bootstrap | None = None,
    metrics: tuple[str, ...] = INTERVAL_METRICS,
    y_pred=None,
) -> dict[str, list[float] | None]:
    """{metric: [low, high]} for the call p(positive) >= ``threshold`` (or ``y_pred``; the AUC needs ``prob_pos``);
    ``groups`` names each image's patient (each row its own group at patient level)."""
    bootstrap = bootstrap or Bootstrap()
    y = np.asarray(y_true, dtype=bool)
    if len(y) == 0:
        return dict.fromkeys(metrics)
    scores = None if prob_pos is None else np.asarray(prob_pos, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=bool) if y_pred is not None else scores >= threshold
    weights, inverse = resample_weights(groups, bootstrap)
    per_group = np.zeros((weights.shape[1], 4))
    for k, cell in enumerate((~y & ~pred, ~y & pred, y & ~pred, y & pred)):  # tn, fp, fn, tp
        np.add.at(per_group[:, k], inverse, cell.astype(np.float64))
    tn, fp, fn, tp = (weights @ per_group).T
    values = _count_metrics(tn, fp, fn, tp)
    point = _count_metrics(*per_group.sum(axis=0))
    if "roc_auc" in metrics and scores is not None:
        values["roc_auc"] = _weighted_auc(y, scores, weights[:, inverse])
        point["roc_auc"] = _weighted_auc(y, scores, np.ones((1, len(y))))[0]
    support = _support(per_group)
    return {
        m: _interval(values.get(m), point.get(m), support[m], bootstrap.confidence) if m in values else None
        for m in metrics
    }


def _support(per_group: np.ndarray) -> dict[str, int]:
    """How many patients each metric's denominator rests on (for balanced accuracy and AUC: the smaller class)."""
    tn, fp, fn, tp = per_group.T
    pos, neg = int(np.sum(fn + tp > 0)), int(np.sum(tn + fp > 0))
    return {
        "accuracy": len(per_group),
        "sensitivity": pos,
        "missed_cancer_rate": pos,
        "specificity": neg,
        "precision": int(np.sum(tp + fp > 0)),
        "f1": int(np.sum(tp + fp + fn > 0)),
        "balanced_accuracy": min(pos, neg),
        "roc_auc": min(pos, neg),
        "recall": pos,
    }


def _interval(values, point, support: int, confidence: float) -> list[float] | None:
    """The percentile interval, with two repairs where it is known to fail. A metric that rests on one patient
    has no interval (every resample repeats that patient). A proportion of 0 or 1 makes every resample agree, so
    the percentile interval collapses to a point; it is then the exact Clopper-Pearson interval for 0 (or all)
    of ``support`` patients, the most cautious effective sample size: [(alpha/2)^(1/n), 1] for a perfect score."""
    if support < 2:
        return None
    ci = percentile_interval(values, confidence)
    if ci is None or ci[0] != ci[1] or point not in (0.0, 1.0):
        return ci
    bound = float(((1 - confidence) / 2) ** (1 / support))
    return [bound, 1.0] if point == 1.0 else [0.0, 1.0 - bound]


def _count_metrics(tn, fp, fn, tp) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        sens, spec = tp / (tp + fn), tn / (tn + fp)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)  # scikit-learn's zero_division=0, as core.metrics
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        return {
            "accuracy": (tp + tn) / (tn + fp + fn + tp),
            "balanced_accuracy": (sens + spec) / 2,
            "sensitivity": sens,
            "specificity": spec,
            "precision": precision,
            "recall": sens,
            "f1": f1,
            "missed_cancer_rate": 1 - sens,
        }


def _weighted_auc(y: np.ndarray, scores: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ROC AUC of every resample: the Mann-Whitney statistic with each image counted ``w[b, i]`` times, ties half."""
    order = np.argsort(scores, kind="mergesort")
    s, yy, w = scores[order], y[order], w[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos = np.add.reduceat(w * yy, starts, axis=1)
    neg = np.add.reduceat(w * ~yy, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negatives with a lower score
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))


def percentile_interval(values: np.ndarray | None, confidence: float) -> list[float] | None:
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64)
    valid = values[np.isfinite(values)]
    if len(valid) < len(values) / 2:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(valid, [tail, 100 - tail])
    return [float(low), float(high)]
