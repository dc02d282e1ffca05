"""Engine fixtures shared across packages: a labelled toy folder and a run folder on it, with a trained Model A,
an untrained Model B and A's ONNX export (seconds to build, once per test process)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from engine.core.config import DataConfig, ExperimentConfig, TrainConfig
from engine.data.arrays import ArraySet
from engine.data.prepare import prepare_data
from engine.data.split import save_split
from engine.export.onnx_export import export_verified, parity_batches
from engine.models.checkpoint import load_checkpoint, make_metadata, save_checkpoint
from engine.models.registry import create_model
from engine.runs.folder import RunFolder
from engine.train.loop import fit
from tests.conftest import toy_arrays

SIZE = 16
CLASSES = ("benign", "malignant")
TRAIN = TrainConfig(
    arch="small_cnn", image_size=SIZE, epochs=4, batch_size=16, lr=5e-3, patience=10, weights="none", device="cpu"
)
SET_EPS = [0.0, 2 / 255, 8 / 255, 32 / 255, 64 / 255]


def _write_folder(root, n=64, seed=0):
    """<root>/<class>/<patient>/<image>.png, 8 patients per class."""
    images, labels = toy_arrays(n, SIZE, seed=seed)
    for i, (img, y) in enumerate(zip(images, labels)):
        folder = root / CLASSES[y] / f"p{y}{i % 16 // 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"img{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def toy(tmp_path_factory):
    """A labelled toy folder and a run folder on it: model A trained (toy classes), model B untrained."""
    base = tmp_path_factory.mktemp("toy")
    folder = _write_folder(base / "data")
    run = base / "run"
    cfg = ExperimentConfig(DataConfig(data=str(folder)), TRAIN)
    RunFolder.prepare(run, cfg).release()
    data = prepare_data(cfg.data, SIZE)
    save_split(run / "split.csv", data.dataset, data.split)
    torch.manual_seed(0)
    model = create_model("small_cnn")
    meta = make_metadata("small_cnn", CLASSES, SIZE, {"method": "clean"})
    x, y = toy_arrays(96, SIZE, seed=1)
    fit(
        model,
        ArraySet(x[:64], y[:64]),
        ArraySet(x[64:], y[64:]),
        TRAIN,
        out_dir=run / "model_a",
        name="A",
        metadata=meta,
    )
    torch.manual_seed(1)
    save_checkpoint(run / "model_b" / "best.pt", create_model("small_cnn").eval(), meta)
    return {"folder": folder, "run": run, "a": run / "model_a" / "best.pt", "b": run / "model_b" / "best.pt"}


@pytest.fixture(scope="session")
def onnx_a(toy):
    model, meta = load_checkpoint(toy["a"])
    x = torch.rand(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    batches = parity_batches(model, x, torch.tensor([0, 1, 0, 1]), 4 / 255)
    export_verified(model, toy["run"] / "model_a.onnx", meta, SIZE, batches)
    return toy["run"] / "model_a.onnx"


def toy_image(toy, label="malignant"):
    """The first toy image of ``label``."""
    return sorted((toy["folder"] / label).rglob("*.png"))[0]
