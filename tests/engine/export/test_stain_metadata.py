"""Stain normalisation in training and in the model's record: ``prepare_data`` normalises every split to the reference
fitted on the training split, ``train_new_model`` records it, and it travels checkpoint -> ONNX -> session_meta."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.core.config import DataConfig, TrainConfig
from engine.core.errors import ConfigError
from engine.data.prepare import prepare_data
from engine.data.stain_norm import normalise
from engine.deploy.session import create_session, session_meta
from engine.export.onnx_export import export_verified, parity_batches
from engine.models.checkpoint import checkpoint_meta, load_checkpoint, read_checkpoint
from engine.models.tensors import to_tensor
from engine.train.study import train_new_model
from tests.engine.data.stain_images import OTHER_LAB_STAINS, REFERENCE_STAINS, he_images

SIZE = 32


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """<class>/<patient>/<image>.png: 8 patients a class, half of them stained by another lab."""
    root = tmp_path_factory.mktemp("stained")
    for c, label in enumerate(("benign", "malignant")):
        for p in range(8):
            stains = OTHER_LAB_STAINS if p % 2 else REFERENCE_STAINS
            for i, image in enumerate(he_images(stains, n=3, size=SIZE, seed=100 * c + p, strength=1 + 0.3 * c)):
                (root / label / f"{label}{p}").mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(root / label / f"{label}{p}" / f"{i}.png")
    return root


def test_every_split_is_normalised_to_the_training_splits_reference(folder):
    raw = prepare_data(DataConfig(data=str(folder)), SIZE)
    data = prepare_data(DataConfig(data=str(folder)), SIZE, stain_norm="reinhard")
    assert raw.stain is None and data.stain["method"] == "reinhard"
    assert "training images" in data.stain["fitted_on"]
    for split in ("train", "val", "test"):
        expected = normalise(raw.arrays(split).images, data.stain)
        assert np.array_equal(data.arrays(split).images, expected)
        assert not np.array_equal(expected, raw.arrays(split).images)
    assert data.arrays("test").images is data.arrays("test").images  # normalised once, then kept


def test_a_reference_image_gives_the_reference(folder):
    image = next(folder.rglob("*.png"))
    data = prepare_data(DataConfig(data=str(folder)), SIZE, stain_norm="macenko", stain_reference=image)
    assert data.stain["method"] == "macenko" and image.name in data.stain["fitted_on"]


def test_the_training_options_are_checked():
    assert TrainConfig(stain_norm="macenko").stain_norm == "macenko"
    with pytest.raises(ConfigError, match="stain normalisation 'vahadane' is unknown"):
        TrainConfig(stain_norm="vahadane")
    with pytest.raises(ConfigError, match="without a stain normalisation"):
        TrainConfig(stain_reference="ref.png")


def test_the_reference_travels_from_training_to_the_checkpoint_and_the_onnx_file(folder, tmp_path):
    data = prepare_data(DataConfig(data=str(folder)), SIZE, stain_norm="macenko")
    cfg = TrainConfig(arch="small_cnn", image_size=SIZE, epochs=1, batch_size=8, weights="none", device="cpu")
    model, result, meta = train_new_model(
        cfg, data.arrays("train"), data.arrays("val"), classes=data.dataset.classes, how={"method": "clean"},
        split_hash="x", out_dir=tmp_path / "m", name="Model A", stain=data.stain,
    )  # fmt: skip
    assert meta.stain_norm == data.stain
    assert checkpoint_meta(read_checkpoint(result.checkpoint), result.checkpoint).stain_norm == data.stain
    model, meta = load_checkpoint(result.checkpoint)
    test = data.arrays("test")
    x = to_tensor(test.images[:4], torch.device("cpu"))
    batches = parity_batches(model, x, torch.tensor(test.labels[:4]), 0.01)
    export_verified(model, tmp_path / "m.onnx", meta, SIZE, batches)
    onnx_meta = session_meta(create_session(tmp_path / "m.onnx", device="cpu"))
    assert onnx_meta.stain_norm == data.stain
    assert onnx_meta.stain_norm["stain_matrix"] == data.stain["stain_matrix"]
