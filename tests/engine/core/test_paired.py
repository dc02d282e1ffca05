"""Paired comparisons: the exact McNemar test against hand-computed values and scipy, and the patient-level
paired bootstrap of the accuracy difference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from engine.core.intervals import Bootstrap
from engine.core.paired import compare, mcnemar_exact, paired_difference


def _pairs(only_x: int, only_y: int, both: int = 3, neither: int = 2):
    x = [1] * only_x + [0] * only_y + [1] * both + [0] * neither
    y = [0] * only_x + [1] * only_y + [1] * both + [0] * neither
    return np.array(x, bool), np.array(y, bool)


def test_mcnemar_by_hand():
    # 5 discordant images, all for x: p = 2 * (1/2)^5; 6 against 1: p = 2 * (1 + 7) / 2^7
    assert mcnemar_exact(*_pairs(5, 0)) == {"only_x_right": 5, "only_y_right": 0, "p_value": 0.0625}
    assert mcnemar_exact(*_pairs(6, 1))["p_value"] == pytest.approx(0.125)
    assert mcnemar_exact(*_pairs(4, 4))["p_value"] == 1.0
    assert mcnemar_exact(*_pairs(0, 0))["p_value"] == 1.0  # no discordant image: no evidence of a difference


@pytest.mark.parametrize(("only_x", "only_y"), [(1, 9), (13, 4), (40, 25), (700, 640)])
def test_mcnemar_is_the_exact_binomial_test(only_x, only_y):
    p = mcnemar_exact(*_pairs(only_x, only_y))["p_value"]
    assert p == pytest.approx(binomtest(only_x, only_x + only_y, 0.5).pvalue, rel=1e-9)


def test_paired_bootstrap_of_the_difference():
    groups = np.repeat(np.arange(30), 4)
    rng = np.random.default_rng(0)
    y_right = rng.random(120) < 0.6
    same = paired_difference(y_right, y_right, groups, Bootstrap(300))
    assert same == {"difference": 0.0, "ci": [0.0, 0.0]}  # pairing kept: identical models never differ
    better = paired_difference(np.ones(120, bool), y_right, groups, Bootstrap(300))
    assert better["difference"] == pytest.approx(1 - y_right.mean())
    assert 0 < better["ci"][0] <= better["difference"] <= better["ci"][1]


def test_compare_reports_both_answers():
    x, y = _pairs(10, 1, both=20, neither=5)
    out = compare(x, y, np.arange(len(x)), Bootstrap(500, seed=2))
    assert (
        out["n"] == 36 and out["accuracy_x"] == pytest.approx(30 / 36) and out["accuracy_y"] == pytest.approx(21 / 36)
    )
    assert out["difference"] == pytest.approx(9 / 36) and out["ci"][0] > 0
    assert out["p_value"] < 0.05 and (out["only_x_right"], out["only_y_right"]) == (10, 1)
