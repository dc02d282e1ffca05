"""Binary classification metrics with scikit-learn; the positive class (index 1) is the disease class."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def binary_metrics(y_true: np.ndarray, prob_pos: np.ndarray, threshold: float = 0.5) -> dict:
    """accuracy, balanced accuracy, sensitivity (recall of the positive class), specificity, precision,
    recall, F1, ROC-AUC (None when only one class is present), the confusion matrix [[tn, fp], [fn, tp]],
    the missed-cancer rate (false-negative rate), the majority-class baseline and n."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = (np.asarray(prob_pos) >= threshold).astype(np.int64)
    cm = skm.confusion_matrix(y_true, y_pred, labels=[0, 1])
    (tn, fp), (fn, tp) = cm.tolist()
    sens = _ratio(tp, tp + fn)
    spec = _ratio(tn, tn + fp)
    both = len(np.unique(y_true)) == 2
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)) if len(y_true) else None,
        "balanced_accuracy": _mean(sens, spec),
        "sensitivity": sens,
        "specificity": spec,
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0)),
        "recall": sens,
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0)),
        "roc_auc": float(skm.roc_auc_score(y_true, prob_pos)) if both else None,
        "missed_cancer_rate": None if sens is None else 1.0 - sens,
        "majority_baseline": majority_baseline(y_true),
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "n": int(len(y_true)),
    }


def majority_baseline(y_true: np.ndarray) -> float | None:
    """Accuracy of always predicting the most frequent class (68.6% on full BreakHis)."""
    if len(y_true) == 0:
        return None
    return float(np.bincount(np.asarray(y_true, dtype=np.int64), minlength=2).max() / len(y_true))


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _mean(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else (a + b) / 2


def patient_level(prob_pos: np.ndarray, y_true: np.ndarray, patients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean probability per patient, and the patient's label: the majority of its images' labels
    (a tie counts as positive, so a patient with any doubt is not called benign)."""
    ids = sorted(set(patients.tolist()))
    probs = np.array([prob_pos[patients == p].mean() for p in ids])
    labels = np.array([int(y_true[patients == p].mean() >= 0.5) for p in ids], dtype=np.int64)
    return probs, labels
