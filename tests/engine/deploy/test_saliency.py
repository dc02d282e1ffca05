"""Attribution-map arithmetic without torch: ranks and Spearman's correlation as SciPy computes them (ties included),
flat maps, the display scale, the overlay, the comparison of two maps (where the mass moved) and the sanity verdict."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from engine.deploy.saliency import (
    SANITY_THRESHOLD,
    compare_maps,
    difference_rgba,
    display_map,
    heat_rgba,
    moved_text,
    overlay,
    overlay_png,
    rankdata,
    sanity_check,
    sanity_text,
    spearman,
    top_mask,
)


@pytest.mark.parametrize("seed", range(5))
def test_ranks_and_spearman_match_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 6, size=(12, 12)).astype(np.float32)  # many ties
    b = a + rng.normal(0, 2, size=a.shape)
    np.testing.assert_allclose(rankdata(a), stats.rankdata(a.ravel()))
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a.ravel(), b.ravel())[0], abs=1e-12)
    assert spearman(a, a) == pytest.approx(1.0) and spearman(a, -a) == pytest.approx(-1.0)


def test_flat_maps_have_no_order():
    ramp = np.arange(16, dtype=np.float32).reshape(4, 4)
    flat = np.full((4, 4), 1.6434729, np.float32)
    rounding = flat + np.float32(4e-7) * (np.arange(16).reshape(4, 4) % 2)  # a one-cell map upsampled: float noise
    assert spearman(flat, ramp) == 0.0 and spearman(rounding, ramp) == 0.0
    assert spearman(flat, np.zeros((4, 4))) == 1.0
    with pytest.raises(ValueError):
        spearman(ramp, ramp[:2])


def test_display_map_is_the_positive_part_scaled_to_one():
    raw = np.linspace(-1, 3, 400, dtype=np.float32).reshape(20, 20)
    shown = display_map(raw)
    assert shown.shape == raw.shape and shown.dtype == np.float32
    assert shown.min() == 0 and shown.max() == 1 and np.all(shown[raw <= 0] == 0)
    assert np.all(np.diff(shown.ravel()) >= 0)  # monotone in the raw map
    assert not display_map(-np.abs(raw)).any()  # nothing positive: nothing shown


def test_overlay_keeps_the_image_where_the_map_is_zero():
    image = np.full((8, 8, 3), 100, np.uint8)
    shown = np.zeros((8, 8), np.float32)
    shown[2:4, 2:4] = 1
    rgba = heat_rgba(shown)
    assert rgba.shape == (8, 8, 4) and rgba[0, 0, 3] == 0 and rgba[2, 2, 3] == 255
    out = overlay(image, rgba, 0.6)
    assert np.array_equal(out[0, 0], [100, 100, 100]) and not np.array_equal(out[2, 2], [100, 100, 100])
    assert np.array_equal(overlay(image, rgba, 0.0), image)
    picture = Image.open(io.BytesIO(overlay_png(image, shown, 0.6, min_side=64)))
    assert picture.size == (64, 64) and picture.mode == "RGB"


def test_compare_maps_says_where_the_mass_moved():
    before, after = np.zeros((16, 16)), np.zeros((16, 16))
    before[2:6, 2:6] = 1  # top left
    after[10:14, 10:14] = 1  # bottom right
    same = compare_maps(before, before)
    assert same["rank_correlation"] == pytest.approx(1) and same["top_overlap"] == 1 and same["mass_moved"] == 0
    moved = compare_maps(before, after)
    assert moved["top_overlap"] == 0 and moved["mass_moved"] == pytest.approx(1)
    assert moved["centre_before"] == pytest.approx((3.5, 3.5)) and moved["centre_after"] == pytest.approx((11.5, 11.5))
    assert moved["centre_shift_px"] == pytest.approx(8 * np.sqrt(2))
    assert (moved["cell_lost"]["row"], moved["cell_lost"]["col"]) in [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert (moved["cell_gained"]["row"], moved["cell_gained"]["col"]) in [(2, 2), (2, 3), (3, 2), (3, 3)]
    assert "moved the model's attention" in moved_text(moved) and "stayed" in moved_text(same)
    diff = difference_rgba(before, after)
    assert diff[3, 3, 2] > diff[3, 3, 0] and diff[12, 12, 0] > diff[12, 12, 2]  # blue lost, red gained
    assert diff[8, 0, 3] == 0  # unchanged: transparent
    assert top_mask(after).sum() == 16


def test_sanity_check_passes_different_maps_and_fails_the_same_one():
    rng = np.random.default_rng(0)
    raw = rng.random((10, 10))
    passed = sanity_check(raw, rng.random((10, 10)))
    failed = sanity_check(raw, raw * 2 + 0.1)  # the same order: the map did not depend on the weights
    assert passed["passed"] and passed["threshold"] == SANITY_THRESHOLD
    assert not failed["passed"] and failed["rank_correlation"] == pytest.approx(1)
    assert sanity_text(passed).startswith("passes") and "FAILS" in sanity_text(failed)
    assert sanity_text(None) == "randomisation check not run"


def test_a_flat_map_does_not_pass_the_sanity_check():
    """A flat map (Grad-CAM with nothing positive) ranks as 0 against anything: inconclusive, not a pass."""
    rng = np.random.default_rng(0)
    flat = sanity_check(np.zeros((10, 10)), rng.random((10, 10)))
    assert not flat["passed"] and flat["inconclusive"] and flat["rank_correlation"] == 0.0
    assert "inconclusive" in sanity_text(flat) and "flat" in sanity_text(flat)
    assert not sanity_check(rng.random((10, 10)), np.zeros((10, 10))).get("inconclusive")
