"""Calibration: temperature scaling recovers a known temperature and lowers held-out ECE, never changes a call;
ECE, Brier and the reliability bins by hand; the review band and the coverage-accuracy curve; the ECE/Brier
bootstrap against the expanded resamples."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.calibration import (
    band_summary,
    brier,
    calibration_metrics,
    check_band,
    ece,
    fit_temperature,
    nll,
    reliability,
    selective_curve,
    uncertain,
    with_temperature,
)
from engine.core.errors import ConfigError
from engine.core.intervals import Bootstrap, resample_weights


def _overconfident(n: int, t_true: float, seed: int):
    """Logits whose labels are drawn from softmax(z / t_true): a model over-confident by t_true."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 4, size=(n, 2))
    p = with_temperature(z, t_true, logits=True)
    y = (rng.random(n) < p[:, 1]).astype(np.int64)
    return z, y


def test_fit_recovers_the_temperature_that_made_the_labels():
    z, y = _overconfident(20000, 2.5, seed=0)
    t = fit_temperature(z, y, logits=True)
    assert t == pytest.approx(2.5, rel=0.05)
    best = nll(z, y, t, logits=True)
    assert best < nll(z, y, 1.0, logits=True)
    assert best <= min(nll(z, y, t * 0.97, logits=True), nll(z, y, t * 1.03, logits=True))


def test_temperature_lowers_held_out_ece_and_keeps_every_call():
    z_val, y_val = _overconfident(4000, 3.0, seed=1)
    z_test, y_test = _overconfident(4000, 3.0, seed=2)
    t = fit_temperature(z_val, y_val, logits=True)
    raw, cal = with_temperature(z_test, 1.0, logits=True), with_temperature(z_test, t, logits=True)
    assert ece(cal[:, 1], y_test) < 0.5 * ece(raw[:, 1], y_test)
    assert brier(cal[:, 1], y_test) < brier(raw[:, 1], y_test)
    assert (raw.argmax(1) == cal.argmax(1)).all()


def test_probabilities_and_logits_give_the_same_calibrated_values():
    z = np.random.default_rng(3).normal(0, 3, size=(50, 2))
    p = with_temperature(z, 1.0, logits=True)
    assert with_temperature(p, 1.7) == pytest.approx(with_temperature(z, 1.7, logits=True), abs=1e-9)
    assert fit_temperature(p, (z[:, 1] > z[:, 0]).astype(int) ^ (np.arange(50) % 7 == 0)) > 0


def test_ece_brier_and_bins_by_hand():
    p = np.array([0.05, 0.15, 0.95, 0.92, 0.55, 0.45])
    y = np.array([0, 1, 1, 1, 0, 0])
    bins = reliability(p, y, n_bins=10)
    assert [b["n"] for b in bins] == [1, 1, 0, 0, 1, 1, 0, 0, 0, 2]
    assert bins[9]["mean_predicted"] == pytest.approx(0.935) and bins[9]["observed"] == 1.0
    # |0-0.05| + |1-0.15| + |0-0.45| + |0-0.55| + 2*|1-0.935|, over 6 images
    assert ece(p, y, n_bins=10) == pytest.approx((0.05 + 0.85 + 0.45 + 0.55 + 2 * 0.065) / 6)
    assert brier(p, y) == pytest.approx(np.mean((p - y) ** 2))
    assert ece(np.array([1.0]), np.array([1])) == 0.0  # p = 1 goes to the last bin
    assert ece([], []) is None and brier([], []) is None


def test_review_band_and_its_summary():
    p = np.array([0.1, 0.3, 0.5, 0.79, 0.81, 0.95])
    y = np.array([0, 1, 0, 1, 1, 1])
    assert uncertain(p, (0.2, 0.8)).tolist() == [False, True, True, True, False, False]
    s = band_summary(p, y, (0.2, 0.8))
    assert (s["flagged"], s["n"], s["coverage"]) == (3, 6, 0.5)
    assert s["accuracy_kept"] == 1.0 and s["accuracy_all"] == pytest.approx(4 / 6)
    for bad in ((0.6, 0.9), (0.2,), ("a", "b"), (-0.1, 0.7)):
        with pytest.raises(ConfigError, match="review band"):
            check_band(bad)


def test_coverage_curve_rises_when_confidence_means_something():
    z, y = _overconfident(3000, 1.0, seed=4)  # calibrated: confident calls are more often right
    curve = selective_curve(with_temperature(z, 1.0, logits=True)[:, 1], y, steps=10)
    assert curve[0]["coverage"] == 1.0 and curve[-1]["coverage"] == pytest.approx(0.1)
    accs = [c["accuracy"] for c in curve]
    assert accs[0] < 0.95 < 0.99 <= accs[-1] and all(b >= a - 0.02 for a, b in zip(accs, accs[1:]))


def test_ece_and_brier_intervals_are_those_of_the_expanded_resamples():
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(12), 3)
    p, y = rng.random(36), rng.integers(0, 2, 36)
    boot = Bootstrap(40, seed=6)
    got = calibration_metrics(p, y, groups, boot)
    weights, inverse = resample_weights(groups, boot)
    eces, briers = [], []
    for w in weights[:, inverse].astype(int):
        eces.append(ece(np.repeat(p, w), np.repeat(y, w)))
        briers.append(brier(np.repeat(p, w), np.repeat(y, w)))
    assert got["ci"]["ece"] == pytest.approx(list(np.percentile(eces, [2.5, 97.5])))
    assert got["ci"]["brier"] == pytest.approx(list(np.percentile(briers, [2.5, 97.5])))
    assert got["ece"] == pytest.approx(ece(p, y)) and got["n"] == 36
