"""A model trained with Gaussian noise is called through its smoothed classifier by `histoguard predict` (and so the
Diagnose page): the share of noisy copies per class, reproducible per file; other models as before."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.deploy.predict import predict_files
from engine.deploy.smoothed import SAMPLES, model_sigma, smoothed_probabilities
from tests.engine.deploy.smoothing_models import SIZE, D, linear_model

SIGMA = 0.25
GREY = 128


@pytest.fixture()
def files(tmp_path):
    """A linear model whose margin on a grey image is exactly one sigma: the smoothed classifier calls class 1 on
    Phi(1) = 84% of noisy copies, the plain model's softmax gives class 1 only sigmoid(0.25) = 56%."""
    w = np.ones(D, np.float32) / np.sqrt(D)
    b = -GREY / 255 * np.sqrt(D) + SIGMA
    gaussian = {"method": "gaussian", "sigma": SIGMA}
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((SIZE, SIZE, 3), GREY, np.uint8)).save(tmp_path / name)
    return {
        "noise": linear_model(tmp_path / "noise.onnx", w, b, training=gaussian),
        "plain": linear_model(tmp_path / "plain.onnx", w, b),
        "images": [tmp_path / "a.png", tmp_path / "b.png"],
    }


def test_a_noise_trained_model_is_called_by_its_smoothed_classifier(files, tmp_path):
    rows = predict_files(files["noise"], files["images"], tmp_path / "p.csv", device="cpu")
    for row in rows:
        assert row["p_malignant"] == pytest.approx(0.841, abs=0.12) and row["predicted"] == "malignant"
        assert "smoothed" in row["smoothed"] and row["temperature"] is None
    assert rows[0]["p_malignant"] == rows[1]["p_malignant"]  # the same content, the same noise: the same call
    again = predict_files(files["noise"], files["images"][::-1], device="cpu", batch_size=1)
    assert [r["p_malignant"] for r in again] == [r["p_malignant"] for r in rows]
    assert "smoothed" in (tmp_path / "p.csv").read_text().splitlines()[0]
    plain = predict_files(files["plain"], files["images"], device="cpu")
    assert plain[0]["p_malignant"] == pytest.approx(1 / (1 + np.exp(-SIGMA)), abs=1e-3) and "smoothed" not in plain[0]


def test_smoothed_probabilities_are_vote_shares_of_seeded_noise():
    def predict(x):  # class 1 where the first pixel is above 0.5
        first = x.reshape(len(x), -1)[:, 0]
        return np.stack([np.zeros_like(first), np.where(first > 0.5, 1.0, -1.0)], axis=1)

    x = np.full((2, 3, 4, 4), 0.5, np.float32)
    shares = smoothed_probabilities(predict, x, 0.25, keys=[7, 7])
    assert shares.shape == (2, 2) and np.allclose(shares.sum(axis=1), 1)
    assert shares[0, 1] == shares[1, 1] and abs(shares[0, 1] - 0.5) < 0.2  # a fair coin over SAMPLES draws
    assert (shares * SAMPLES == np.round(shares * SAMPLES)).all()


def test_only_a_gaussian_record_gives_a_sigma(files):
    from engine.deploy.model_info import onnx_meta

    assert model_sigma(onnx_meta(files["noise"])) == SIGMA and model_sigma(onnx_meta(files["plain"])) is None


def test_a_noise_trained_model_is_refused_for_slides_with_what_to_do(files):
    from engine.core.errors import ModelError
    from engine.slides.predict import predict_slide

    with pytest.raises(ModelError, match="trained with Gaussian noise.*histoguard certify"):
        predict_slide(files["images"][0], files["noise"], device="cpu")
