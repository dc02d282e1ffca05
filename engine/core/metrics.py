"""The one metrics module: binary classification metrics from labels and predictions (or probabilities).

The positive class (index 1) is the disease class. Every figure HistoGuard prints comes from here: the
experiment, the robustness rows, stress tests, the black-box attack and the INT8 comparison of the Diagnose
edition. Written with numpy rather than scikit-learn because the Diagnose edition ships without scikit-learn;
``tests/engine/core/test_metrics.py`` checks every value against scikit-learn on random data, ties included.
"""

from __future__ import annotations

import numpy as np

# the keys of ``binary_metrics``: what a report row carries
METRIC_KEYS = (
    "accuracy",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "missed_cancer_rate",
    "majority_baseline",
    "confusion_matrix",
    "n",
)


def confusion(y_true, y_pred) -> tuple[int, int, int, int]:
    """(tn, fp, fn, tp) of 0/1 labels against 0/1 predictions."""
    t, p = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    return (int(np.sum(~t & ~p)), int(np.sum(~t & p)), int(np.sum(t & ~p)), int(np.sum(t & p)))


def classification_metrics(y_true, y_pred, scores=None) -> dict:
    """accuracy, balanced accuracy, sensitivity (recall of the positive class), specificity, precision, recall,
    F1, ROC-AUC (from ``scores``; None without them or with one class only), the missed-cancer rate (false-negative
    rate), the majority-class baseline, the confusion matrix [[tn, fp], [fn, tp]] and n. Undefined values
    (a class with no case) are None; precision and F1 are 0 when nothing is called positive (scikit-learn's
    ``zero_division=0``)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    tn, fp, fn, tp = confusion(y_true, y_pred)
    sens, spec = ratio(tp, tp + fn), ratio(tn, tn + fp)
    precision = ratio(tp, tp + fp) or 0.0
    both = len(np.unique(y_true)) == 2
    return {
        "accuracy": ratio(tp + tn, len(y_true)),
        "balanced_accuracy": balanced(sens, spec),
        "sensitivity": sens,
        "specificity": spec,
        "precision": precision,
        "recall": sens,
        "f1": ratio(2 * tp, 2 * tp + fp + fn) or 0.0,
        "roc_auc": roc_auc(y_true, scores) if scores is not None and both else None,
        "missed_cancer_rate": None if sens is None else 1.0 - sens,
        "majority_baseline": majority_baseline(y_true),
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "n": int(len(y_true)),
    }


def binary_metrics(y_true, prob_pos, threshold: float = 0.5) -> dict:
    """``classification_metrics`` of the call p(positive) >= ``threshold``, with the ROC-AUC of ``prob_pos``."""
    prob_pos = np.asarray(prob_pos, dtype=np.float64)
    return classification_metrics(y_true, (prob_pos >= threshold).astype(np.int64), prob_pos)


def roc_auc(y_true, scores) -> float | None:
    """Area under the ROC curve: the Mann-Whitney U statistic over both classes, ties counted half."""
    y = np.asarray(y_true, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(np.asarray(scores, dtype=np.float64), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2)[inverse]  # 1-based, the average rank of a tied group
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def majority_baseline(y_true) -> float | None:
    """Accuracy of always predicting the most frequent class (68.6% on full BreakHis)."""
    y = np.asarray(y_true, dtype=np.int64)
    if len(y) == 0:
        return None
    return float(np.bincount(y, minlength=2).max() / len(y))


def ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def balanced(sensitivity: float | None, specificity: float | None) -> float | None:
    """Balanced accuracy: the mean of sensitivity and specificity (None when either is undefined)."""
    return None if sensitivity is None or specificity is None else (sensitivity + specificity) / 2


def patient_level(prob_pos: np.ndarray, y_true: np.ndarray, patients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean probability per patient, and the patient's label: the majority of its images' labels
    (a tie counts as positive, so a patient with any doubt is not called benign)."""
    ids = sorted(set(patients.tolist()))
    probs = np.array([prob_pos[patients == p].mean() for p in ids])
    labels = np.array([int(y_true[patients == p].mean() >= 0.5) for p in ids], dtype=np.int64)
    return probs, labels
