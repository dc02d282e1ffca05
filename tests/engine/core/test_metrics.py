"""Binary metrics against hand-computed confusion matrices, and patient-level aggregation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from engine.core.metrics import binary_metrics, majority_baseline, patient_level

KEYS = {
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
}


def test_hand_computed_confusion_matrix():
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    #              tn   tn   fp   fn   tp   tp   tp
    p = np.array([0.1, 0.3, 0.7, 0.2, 0.9, 0.6, 0.8])
    m = binary_metrics(y, p)
    assert set(m) == KEYS
    assert m["confusion_matrix"] == [[2, 1], [1, 3]]
    assert m["n"] == 7
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(2 / 3)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(2 * (3 / 4) * (3 / 4) / (3 / 4 + 3 / 4))
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert m["missed_cancer_rate"] == pytest.approx(1 / 4)
    assert m["majority_baseline"] == pytest.approx(4 / 7)
    # ranking: 9 of the 12 (positive, negative) pairs are ordered correctly (0.2 beats only 0.1; 0.6 not 0.7)
    assert m["roc_auc"] == pytest.approx(9 / 12)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))


def test_asymmetric_case_precision_differs_from_recall():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.1, 0.8, 0.7, 0.6, 0.2, 0.3, 0.4])  # tp=1 fn=1 fp=3 tn=3
    m = binary_metrics(y, p)
    assert m["confusion_matrix"] == [[3, 3], [1, 1]]
    assert m["precision"] == pytest.approx(1 / 4)
    assert m["sensitivity"] == pytest.approx(1 / 2)
    assert m["specificity"] == pytest.approx(1 / 2)
    assert m["f1"] == pytest.approx(2 * 0.25 * 0.5 / 0.75)
    assert m["accuracy"] == pytest.approx(4 / 8)
    assert m["majority_baseline"] == pytest.approx(6 / 8)
    assert m["missed_cancer_rate"] == pytest.approx(1 / 2)


def test_python_types_and_json_friendly():
    m = binary_metrics([0, 1, 1], [0.2, 0.8, 0.4])
    for key in ("accuracy", "precision", "f1", "roc_auc", "sensitivity", "specificity", "majority_baseline"):
        assert type(m[key]) is float, key
    assert all(type(v) is int for row in m["confusion_matrix"] for v in row)
    assert type(m["n"]) is int


def test_roc_auc_matches_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.25), 0, 1)
    m = binary_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert 0.6 < m["roc_auc"] < 1.0


@pytest.mark.parametrize("label", [0, 1])
def test_one_class_only(label):
    y = np.full(4, label)
    p = np.array([0.2, 0.6, 0.7, 0.1])
    m = binary_metrics(y, p)
    assert m["roc_auc"] is None
    assert m["balanced_accuracy"] is None
    assert m["majority_baseline"] == 1.0
    if label == 1:
        assert m["confusion_matrix"] == [[0, 0], [2, 2]]
        assert m["sensitivity"] == 0.5 and m["missed_cancer_rate"] == 0.5
        assert m["specificity"] is None
    else:
        assert m["confusion_matrix"] == [[2, 2], [0, 0]]
        assert m["specificity"] == 0.5
        assert m["sensitivity"] is None and m["missed_cancer_rate"] is None
        assert m["precision"] == 0.0  # no true positives; zero_division gives 0, no warning


def test_threshold_is_inclusive():
    y = np.array([0, 1, 0, 1])
    p = np.array([0.5, 0.5, np.nextafter(0.5, 0), 0.51])
    m = binary_metrics(y, p)
    # 0.5 counts as positive: the negative at 0.5 is a false positive, the positive at 0.5 a true positive
    assert m["confusion_matrix"] == [[1, 1], [0, 2]]
    assert binary_metrics(y, p, threshold=0.505)["confusion_matrix"] == [[2, 0], [1, 1]]
    assert binary_metrics(y, p, threshold=0.0)["confusion_matrix"] == [[0, 2], [0, 2]]


def test_roc_auc_ignores_threshold():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    assert binary_metrics(y, p)["roc_auc"] == binary_metrics(y, p, threshold=0.9)["roc_auc"] == 0.75


def test_majority_baseline():
    assert majority_baseline(np.array([0, 0, 1])) == pytest.approx(2 / 3)
    assert majority_baseline(np.array([1, 1, 1, 0])) == pytest.approx(3 / 4)
    assert majority_baseline(np.array([1])) == 1.0
    assert majority_baseline(np.array([], dtype=np.int64)) is None


def test_patient_level_means_and_majority_labels():
    patients = np.array(["B", "A", "A", "C", "B", "A", "C", "D", "D"])
    y = np.array([1, 0, 0, 1, 1, 1, 0, 0, 0])
    p = np.array([0.9, 0.1, 0.2, 0.8, 0.7, 0.6, 0.2, 0.3, 0.1])
    probs, labels = patient_level(p, y, patients)
    # patients in sorted order A, B, C, D
    np.testing.assert_allclose(probs, [(0.1 + 0.2 + 0.6) / 3, (0.9 + 0.7) / 2, (0.8 + 0.2) / 2, (0.3 + 0.1) / 2])
    # A: 1 of 3 positive -> 0; B: 2 of 2 -> 1; C: a 1-1 tie -> positive; D: 0 of 2 -> 0
    assert labels.tolist() == [0, 1, 1, 0]
    assert labels.dtype == np.int64


def test_patient_level_integer_ids_and_feeds_binary_metrics():
    patients = np.array([3, 1, 3, 2, 1, 2])
    y = np.array([1, 0, 1, 0, 0, 1])
    p = np.array([0.8, 0.4, 0.6, 0.2, 0.2, 0.5])
    probs, labels = patient_level(p, y, patients)
    np.testing.assert_allclose(probs, [0.3, 0.35, 0.7])
    assert labels.tolist() == [0, 1, 1]  # patient 2 is a tie -> positive
    m = binary_metrics(labels, probs)
    assert m["n"] == 3
    assert m["confusion_matrix"] == [[1, 0], [1, 1]]


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1.0])), min_size=1,
             max_size=40),
    st.sampled_from([0.5, 0.25, 0.8]),
)  # fmt: skip
def test_every_metric_equals_scikit_learns(pairs, threshold):
    """The numpy metrics (the Diagnose edition has no scikit-learn) agree with scikit-learn, ties and one-class
    sets included."""
    from sklearn import metrics as skm

    y = np.array([a for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    pred = (p >= threshold).astype(int)
    m = binary_metrics(y, p, threshold=threshold)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
    if len(set(y.tolist())) == 2:
        assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
        assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
        assert m["recall"] == m["sensitivity"] == pytest.approx(skm.recall_score(y, pred))
    else:
        assert m["roc_auc"] is None and m["balanced_accuracy"] is None
