"""Temperature scaling after training: the fit is recorded in best.pt, refused (T = 1, with a note) where the
validation images are all called right, and baked into the exported ONNX file's 'probabilities' output while
its logits stay as they were."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.core.calibration import with_temperature
from engine.core.metadata import ModelMeta
from engine.data.arrays import ArraySet
from engine.deploy.session import create_session, session_metadata
from engine.export.onnx_export import export_verified
from engine.models.checkpoint import load_checkpoint, make_metadata, save_checkpoint
from engine.models.inference import logits_of
from engine.models.registry import create_model
from engine.train.calibrate import calibrate_checkpoint, calibration_record

SIZE = 32


def _model():
    torch.manual_seed(0)
    return create_model("small_cnn").eval()


def _val(n=40, seed=0) -> ArraySet:
    rng = np.random.default_rng(seed)
    return ArraySet(rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8), rng.integers(0, 2, n))


def test_the_record_says_what_the_temperature_did():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 5, size=(500, 2))
    y = (rng.random(500) < with_temperature(z, 3.0, logits=True)[:, 1]).astype(int)  # over-confident by 3
    rec = calibration_record(z, y)
    assert rec["fitted"] and rec["note"] is None and rec["temperature"] == pytest.approx(3.0, rel=0.2)
    assert rec["nll"][1] < rec["nll"][0] and rec["ece"][1] < rec["ece"][0]
    assert rec["fitted_on"] == "validation split, clean images" and rec["review_band"] == [0.2, 0.8]


def test_all_right_on_validation_leaves_the_model_uncalibrated():
    z = np.array([[2.0, -1.0], [-3.0, 1.0], [1.0, 0.5]])
    rec = calibration_record(z, [0, 1, 0])
    assert not rec["fitted"] and rec["temperature"] == 1.0 and "no maximum" in rec["note"]


def test_calibrated_checkpoint_and_its_onnx_file(tmp_path):
    model, val = _model(), _val()
    meta = make_metadata("small_cnn", ["benign", "malignant"], SIZE, {"method": "clean"})
    best = tmp_path / "best.pt"
    save_checkpoint(best, model, meta, history=[{"epoch": 1}], epoch=1)
    new = calibrate_checkpoint(model, meta, best, val, torch.device("cpu"), name="Model A")
    assert new.calibration["fitted"] and new.temperature != 1.0  # random labels: far from calibrated
    loaded, stored = load_checkpoint(best)
    assert stored.temperature == new.temperature and ModelMeta.from_dict(stored.to_dict()).calibration["n_images"] == 40
    onnx_path = tmp_path / "model.onnx"
    x = val.images[:8].transpose(0, 3, 1, 2).astype(np.float32) / 255
    export_verified(loaded, onnx_path, stored, SIZE, [x])  # parity holds with the temperature on both sides
    session = create_session(onnx_path, device="cpu")
    logits, probs = session.run(["logits", "probabilities"], {"image": x})
    torch_logits = logits_of(loaded, ArraySet(val.images[:8], val.labels[:8]), torch.device("cpu"))
    assert logits == pytest.approx(torch_logits, abs=1e-4)  # the logits are the model's own
    assert probs == pytest.approx(with_temperature(logits, new.temperature, logits=True), abs=1e-5)
    assert ModelMeta.from_dict(session_metadata(session)).temperature == pytest.approx(new.temperature)


def test_no_validation_images_of_both_classes_leaves_the_metadata(tmp_path):
    model = _model()
    meta = make_metadata("small_cnn", ["benign", "malignant"], SIZE, {"method": "clean"})
    one_class = ArraySet(np.zeros((4, SIZE, SIZE, 3), np.uint8), np.zeros(4, np.int64))
    assert calibrate_checkpoint(model, meta, tmp_path / "none.pt", one_class, torch.device("cpu")) is meta
