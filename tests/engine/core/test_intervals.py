"""The patient-level bootstrap: a hand-computed case, clustering, shrinking with more patients, the vectorised
counts and AUC against the plain metrics of each resample, seeding and undefined metrics."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.errors import ConfigError
from engine.core.intervals import (
    Bootstrap,
    _weighted_auc,
    metric_intervals,
    metrics_with_intervals,
    resample_weights,
)
from engine.core.metrics import classification_metrics, roc_auc


def _two_patients():
    # patient P1: two images, both right; patient P2: two images, one right (all positive, so accuracy = sensitivity)
    y = np.ones(4, dtype=np.int64)
    pred = np.array([1, 1, 1, 0])
    return y, pred, np.array(["P1", "P1", "P2", "P2"])


def test_two_patients_by_hand():
    """Resamples of two patients are {P1,P1} (accuracy 1), {P1,P2} (0.75) or {P2,P2} (0.5), with probability
    1/4, 1/2 and 1/4: the resampled accuracies follow that law and the 95% interval is [0.5, 1]."""
    y, pred, groups = _two_patients()
    boot = Bootstrap(n_resamples=4000, seed=1)
    weights, inverse = resample_weights(groups, boot)
    assert weights.shape == (4000, 2) and (weights.sum(axis=1) == 2).all()
    correct = np.bincount(inverse, weights=(pred == y).astype(float))  # right per patient: [2, 1]
    acc = (weights @ correct) / (weights @ np.bincount(inverse))
    freq = {v: np.mean(np.isclose(acc, v)) for v in (1.0, 0.75, 0.5)}
    assert freq[1.0] == pytest.approx(0.25, abs=0.03)
    assert freq[0.75] == pytest.approx(0.5, abs=0.03)
    assert freq[0.5] == pytest.approx(0.25, abs=0.03)
    ci = metric_intervals(y, None, groups, y_pred=pred, bootstrap=boot, metrics=("accuracy", "sensitivity"))
    assert ci == {"accuracy": [0.5, 1.0], "sensitivity": [0.5, 1.0]}


def test_one_patient_is_no_basis_for_an_interval():
    """With one patient every resample is the whole set: no interval rather than a false '0.75 (0.75–0.75)'.
    Sensitivity resting on the one positive patient of three has none either."""
    y, pred = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])
    ci = metric_intervals(y, None, ["P"] * 4, y_pred=pred, bootstrap=Bootstrap(50), metrics=("accuracy",))
    assert ci["accuracy"] is None
    ci = metric_intervals([0, 0, 1, 1, 0, 0], None, list("aabbcc"), y_pred=[0, 0, 1, 0, 0, 1], bootstrap=Bootstrap(50))
    assert ci["sensitivity"] is None and ci["accuracy"] is not None and ci["specificity"] is not None


def test_a_perfect_score_gets_the_exact_bound_of_its_patients():
    """Every resample of a perfect score is perfect; the interval is Clopper-Pearson's for n of n patients,
    [0.025^(1/n), 1] (0.40 for 4 patients: the rule of three's cousin), and [0, 1 - 0.025^(1/n)] for a zero rate."""
    y = np.tile([0, 1], 8)
    groups = np.repeat(["P1", "P2", "P3", "P4"], 4)
    ci = metric_intervals(y, None, groups, y_pred=y, bootstrap=Bootstrap(200))
    assert ci["accuracy"] == pytest.approx([0.025**0.25, 1.0])
    assert ci["missed_cancer_rate"] == pytest.approx([0.0, 1 - 0.025**0.25])
    assert ci["accuracy"][0] == pytest.approx(0.3976, abs=1e-4)


def _clustered(n_patients: int, seed: int = 0):
    """Patients of 6 images each whose images are all right or all wrong (perfectly correlated)."""
    rng = np.random.default_rng(seed)
    right = np.repeat(rng.random(n_patients) < 0.7, 6)
    y = np.tile([0, 1], n_patients * 3)
    pred = np.where(right, y, 1 - y)
    return y, pred, np.repeat([f"P{i}" for i in range(n_patients)], 6)


def _width(ci):
    return ci[1] - ci[0]


def test_cluster_bootstrap_is_wider_than_resampling_images():
    """Images of one patient move together: resampling images (each its own group) would claim a
    precision the data do not have."""
    y, pred, groups = _clustered(12)
    boot = Bootstrap(2000, seed=3)
    by_patient = metric_intervals(y, None, groups, y_pred=pred, bootstrap=boot, metrics=("accuracy",))
    by_image = metric_intervals(y, None, np.arange(len(y)), y_pred=pred, bootstrap=boot, metrics=("accuracy",))
    assert _width(by_patient["accuracy"]) > 1.8 * _width(by_image["accuracy"])


def test_intervals_shrink_as_patients_are_added():
    boot = Bootstrap(2000, seed=4)
    widths = []
    for n in (8, 32, 128):
        y, pred, groups = _clustered(n, seed=n)
        widths.append(_width(metric_intervals(y, None, groups, y_pred=pred, bootstrap=boot)["accuracy"]))
    assert widths[0] > 1.5 * widths[1] > 1.5**2 * widths[2] > 0  # about 1/sqrt(patients): halves per 4x


def test_every_resample_matches_the_plain_metrics_of_its_expanded_set():
    """The vectorised counts and the weighted Mann-Whitney AUC equal the metrics of the resample written out
    image by image (each image repeated as often as its patient was drawn)."""
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(9), rng.integers(1, 5, size=9))
    y = rng.integers(0, 2, size=len(groups))
    scores = np.round(rng.random(len(groups)), 1)  # ties on purpose
    boot = Bootstrap(30, seed=6)
    weights, inverse = resample_weights(groups, boot)
    aucs = _weighted_auc(y.astype(bool), scores, weights[:, inverse])
    for b in range(30):
        reps = weights[b, inverse].astype(int)
        yy, ss = np.repeat(y, reps), np.repeat(scores, reps)
        expected = roc_auc(yy, ss)
        assert (np.isnan(aucs[b]) and expected is None) or aucs[b] == pytest.approx(expected)
    ci = metric_intervals(y, scores, groups, bootstrap=boot, metrics=("accuracy", "roc_auc"))
    accs = [classification_metrics(np.repeat(y, w), np.repeat(scores >= 0.5, w))["accuracy"]
            for w in weights[:, inverse].astype(int)]  # fmt: skip
    assert ci["accuracy"] == pytest.approx(list(np.percentile(accs, [2.5, 97.5])))


def test_seeded_and_recorded():
    y, pred, groups = _clustered(10)
    a = metric_intervals(y, None, groups, y_pred=pred, bootstrap=Bootstrap(200, seed=7))
    b = metric_intervals(y, None, groups, y_pred=pred, bootstrap=Bootstrap(200, seed=7))
    c = metric_intervals(y, None, groups, y_pred=pred, bootstrap=Bootstrap(200, seed=8))
    assert a == b and a != c
    assert Bootstrap(200, seed=7).describe() == {
        "method": "patient-level cluster bootstrap, percentile interval",
        "n_resamples": 200,
        "seed": 7,
        "confidence": 0.95,
    }


def test_metrics_with_intervals_brackets_the_point_estimates():
    rng = np.random.default_rng(9)
    groups = np.repeat(np.arange(20), 5)
    y = np.repeat(rng.integers(0, 2, size=20), 5)
    p = np.clip(y * 0.6 + rng.random(100) * 0.5, 0, 1)
    m = metrics_with_intervals(y, p, groups=groups, bootstrap=Bootstrap(500))
    point = classification_metrics(y, (p >= 0.5).astype(int), p)
    assert {k: v for k, v in m.items() if k != "ci"} == point
    for k, (low, high) in m["ci"].items():
        assert low <= point[k] <= high, k
    assert set(m["ci"]) == {"accuracy", "balanced_accuracy", "sensitivity", "specificity", "precision", "f1",
                            "roc_auc", "missed_cancer_rate"}  # fmt: skip
    only = metrics_with_intervals(y, p, groups=groups, keys=("accuracy", "confusion_matrix"))
    assert set(only) == {"accuracy", "confusion_matrix", "n", "ci"} and set(only["ci"]) == {"accuracy"}


def test_undefined_metrics_have_no_interval():
    """No positive image: sensitivity (and the AUC) are undefined, and so are their intervals."""
    y, pred = np.zeros(6, dtype=np.int64), np.array([0, 0, 1, 0, 0, 0])
    m = metrics_with_intervals(y, y_pred=pred, groups=np.repeat([0, 1, 2], 2), bootstrap=Bootstrap(100))
    assert m["sensitivity"] is None and m["ci"]["sensitivity"] is None and "roc_auc" not in m["ci"]
    assert m["ci"]["specificity"] is not None and m["ci"]["specificity"][1] == 1.0
    assert metrics_with_intervals([], y_pred=[], bootstrap=Bootstrap(10))["ci"]["accuracy"] is None


def test_bad_settings_say_what_to_do():
    with pytest.raises(ConfigError, match="at least 10 resamples"):
        Bootstrap(n_resamples=5)
