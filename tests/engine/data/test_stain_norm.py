"""Stain normalisation (engine.data.stain_norm): Macenko and Reinhard recover a known stain from images made by
Beer-Lambert, blank and one-colour tiles are left as they are (never NaN), uint8 in and out, batches, records."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.errors import DataError, ModelError
from engine.data import stain_norm as sn
from engine.data.stain_methods import rgb_to_lab
from tests.engine.data.stain_images import OTHER_LAB_STAINS, REFERENCE_STAINS, he_images, mae


@pytest.fixture(scope="module")
def reference():
    return he_images(REFERENCE_STAINS, seed=0)


def _angle(a, b) -> float:
    cos = abs(np.dot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.degrees(np.arccos(min(cos, 1.0))))


def test_macenko_finds_the_stain_vectors_it_was_made_with(reference):
    record = sn.fit_reference("macenko", reference)
    found = np.asarray(record["stain_matrix"])
    assert found.shape == (3, 2)
    assert _angle(found[:, 0], REFERENCE_STAINS[:, 0]) < 5  # haematoxylin first
    assert _angle(found[:, 1], REFERENCE_STAINS[:, 1]) < 5
    assert np.allclose(np.linalg.norm(found, axis=0), 1, atol=1e-4)
    assert len(record["max_concentrations"]) == 2 and min(record["max_concentrations"]) > 0


@pytest.mark.parametrize("strength", [1.0, 1.4, 0.7])
def test_macenko_restores_the_reference_stain_of_another_lab(reference, strength):
    """The same tissue stained by another lab (other stain vectors and strength: 7 to 23 grey levels off) comes back
    within 3 grey levels of the reference lab's image."""
    shifted = he_images(OTHER_LAB_STAINS, seed=0, strength=strength)
    normalised = sn.normalise(shifted, sn.fit_reference("macenko", reference))
    assert normalised.dtype == np.uint8 and normalised.shape == shifted.shape
    assert mae(shifted, reference) > 5
    assert mae(normalised, reference) < min(3.0, mae(shifted, reference) / 2.5)


def test_reinhard_matches_the_reference_colour_statistics(reference):
    record = sn.fit_reference("reinhard", reference)
    shifted = he_images(OTHER_LAB_STAINS, seed=1, strength=1.3)
    normalised = sn.normalise(shifted, record)
    tissue = normalised.reshape(-1, 3)[(normalised.reshape(-1, 3) < 230).any(axis=1)]
    before = rgb_to_lab(shifted.reshape(-1, 3)[(shifted.reshape(-1, 3) < 230).any(axis=1)]).mean(axis=0)
    after = rgb_to_lab(tissue).mean(axis=0)
    target = np.asarray(record["lab_mean"])
    assert np.abs(after - target).max() < np.abs(before - target).max() / 3
    assert np.abs(after - target).max() < 3  # CIELAB units


def test_reinhard_undoes_a_change_of_stain_strength(reference):
    darker = he_images(REFERENCE_STAINS, seed=0, strength=1.4)
    normalised = sn.normalise(darker, sn.fit_reference("reinhard", reference))
    assert mae(normalised, reference) < mae(darker, reference) / 2


@pytest.mark.parametrize("method", ["macenko", "reinhard"])
def test_the_white_background_stays_white(reference, method):
    image = reference[0].copy()
    image[:8] = 255  # a strip of glass
    out = sn.normalise(he_images(OTHER_LAB_STAINS, n=1)[0], sn.fit_reference(method, reference))
    assert out.shape == image.shape
    glass = sn.normalise(image, sn.fit_reference(method, reference))[:8]
    assert (glass == 255).all()


@pytest.mark.parametrize("method", ["macenko", "reinhard"])
@pytest.mark.parametrize(
    "tile",
    [
        np.full((16, 16, 3), 255, np.uint8),  # all glass
        np.full((16, 16, 3), (150, 60, 160), np.uint8),  # one colour
        np.full((16, 16, 3), 0, np.uint8),  # black
        np.zeros((1, 1, 3), np.uint8) + 90,  # one pixel
        np.dstack([np.tile(np.linspace(40, 250, 16, dtype=np.uint8), (16, 1))] * 3),  # grey ramp: no hue
    ],
    ids=["white", "one-colour", "black", "one-pixel", "grey"],
)
def test_tiles_that_cannot_be_estimated_are_left_as_they_are(reference, method, tile):
    out = sn.normalise(tile, sn.fit_reference(method, reference))
    assert out.dtype == np.uint8
    if method == "macenko" or (tile == tile.reshape(-1, 3)[0]).all():
        assert np.array_equal(out, tile)
    else:  # Reinhard may move a grey ramp's lightness and tint it, but never to NaN garbage
        assert np.isfinite(out).all() and np.corrcoef(out[..., 0].ravel(), tile[..., 0].ravel())[0, 1] > 0.9


def test_a_batch_is_each_image_alone_and_the_input_is_untouched(reference):
    record = sn.fit_reference("macenko", reference)
    batch = he_images(OTHER_LAB_STAINS, n=3, seed=4)
    copy = batch.copy()
    out = sn.normalise(batch, record)
    assert np.array_equal(batch, copy)
    assert all(np.array_equal(out[i], sn.normalise(batch[i], record)) for i in range(3))


def test_no_record_is_the_identity_and_bad_inputs_are_refused(reference):
    assert sn.normalise(reference, None) is reference
    record = sn.fit_reference("reinhard", reference)
    with pytest.raises(DataError, match="uint8"):
        sn.normalise(reference.astype(np.float32) / 255, record)
    with pytest.raises(DataError, match="no reference"):
        sn.fit_reference("none", reference)
    with pytest.raises(DataError, match="unknown"):
        sn.fit_reference("vahadane", reference)


def test_a_blank_training_set_cannot_give_a_reference():
    with pytest.raises(DataError, match="enough stained tissue"):
        sn.fit_reference("macenko", np.full((5, 16, 16, 3), 255, np.uint8))


def test_the_reference_is_robust_to_a_few_odd_images(reference):
    clean = sn.fit_reference("macenko", reference)
    odd = np.concatenate([reference, he_images(OTHER_LAB_STAINS, n=1, seed=9), np.full((2, 32, 32, 3), 255, np.uint8)])
    robust = sn.fit_reference("macenko", odd)
    assert np.abs(np.asarray(robust["stain_matrix"]) - np.asarray(clean["stain_matrix"])).max() < 0.05
    assert "median of 5 of 7" in robust["fitted_on"]


@pytest.mark.parametrize(
    "record",
    [
        {"method": "macenko", "stain_matrix": [[1, 0], [0, 1]], "max_concentrations": [1, 1]},
        {"method": "macenko", "stain_matrix": [[0.6, 0.1], [0.7, 0.9], [0.3, 0.1]], "max_concentrations": [1, 0]},
        {"method": "reinhard", "lab_mean": [50, 0, 0], "lab_std": [1, 1]},
        {"method": "vahadane"},
        "macenko",
    ],
)
def test_unreadable_records_are_refused_with_a_model_error(reference, record):
    with pytest.raises(ModelError, match="cannot read"):
        sn.normalise(reference, record)


def test_records_survive_json_and_describe_themselves(reference):
    import json

    for method in ("macenko", "reinhard"):
        record = sn.fit_reference(method, reference, fitted_on="4 training images")
        again = json.loads(json.dumps(record))
        assert np.array_equal(sn.normalise(reference, again), sn.normalise(reference, record))
        assert sn.describe(record).startswith(sn.LABELS[method]) and "4 training images" in sn.describe(record)
    assert sn.describe(None) == "none"
