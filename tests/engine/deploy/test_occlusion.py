"""The Diagnose edition's attribution map: occlusion sensitivity with onnxruntime only, on a sealed linear ONNX model
that looks only at one square of the image (its "malignant" region). The map has the image's size, is deterministic,
is strong on that square and zero far from it, passes the randomisation check (a model with random weights gives an
unrelated map), writes the overlay, raw map and audit table, and runs with PyTorch blocked."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.core.errors import ConfigError
from engine.core.fileio import sha256_file
from engine.deploy.explain_run import OnnxOcclusion, cached_explainer, explain_image, explain_onnx_files
from engine.deploy.occlusion import default_window, occlusion_map, positions
from engine.deploy.saliency import spearman
from tests.engine.deploy.smoothing_models import SIZE, linear_model

ROOT = Path(__file__).resolve().parents[3]
SQUARE = (slice(4, 10), slice(8, 14))  # rows, columns of the region the model reads


def square_mask() -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), bool)
    mask[SQUARE] = True
    return mask


@pytest.fixture
def square_model(tmp_path) -> Path:
    """logit(malignant) = (sum of the square's pixel values) / 50 - 1.5: only the square matters."""
    w = np.zeros((3, SIZE, SIZE), np.float32)
    w[:, SQUARE[0], SQUARE[1]] = 1 / 50
    return linear_model(tmp_path / "square.onnx", w.ravel(), -1.5, training={"method": "clean"})


def square_image(tmp_path: Path | None = None):
    rng = np.random.default_rng(0)
    image = rng.integers(50, 110, (SIZE, SIZE, 3), dtype=np.uint8)
    image[SQUARE] = 230
    if tmp_path is not None:
        Image.fromarray(image).save(tmp_path / "square.png")
    return image


def test_windows_cover_every_pixel():
    assert default_window(64) == (16, 8) and default_window(224) == (56, 28) and default_window(16) == (4, 2)
    assert positions(64, 16, 8) == [0, 8, 16, 24, 32, 40, 48] and positions(10, 4, 4) == [0, 4, 6]


def test_the_map_is_the_images_size_deterministic_and_on_the_square(square_model):
    explainer = OnnxOcclusion(square_model, device="cpu")
    image = square_image()
    first = explain_image(explainer, image, sanity=False)
    again = explain_image(explainer, image, sanity=False)
    assert first["map"].shape == (SIZE, SIZE) and first["shown"].shape == (SIZE, SIZE)
    assert np.array_equal(first["map"], again["map"])
    assert first["predicted"] == first["target"] == "malignant"
    m, mask = first["map"], square_mask()
    far = np.ones_like(mask)
    far[1:13, 5:] = False  # windows that can touch the square (window 4) reach 3 px around it
    assert m[mask].mean() > 0.01 and np.abs(m[far]).max() < 1e-6
    grey = occlusion_map(explainer.probabilities, image, 1, baseline="grey")
    assert grey[mask].mean() > m[mask].mean()  # grey hides more of the bright square than a blur does
    benign = explain_image(explainer, image, target="benign", sanity=False)
    np.testing.assert_allclose(benign["map"], -m, atol=1e-6)  # two classes: what hides one reveals the other


def test_randomised_weights_give_an_unrelated_map(square_model):
    explainer = OnnxOcclusion(square_model, device="cpu")
    r = explain_image(explainer, square_image())
    repeat = explain_image(explainer, square_image(), sanity=False)
    assert spearman(r["map"], repeat["map"]) == 1.0
    assert r["sanity"]["passed"] and r["sanity"]["rank_correlation"] < 0.5
    random_map = explainer.randomised().attribution(square_image(), 1)
    assert not np.allclose(random_map, r["map"]) and explainer.randomised() is explainer.randomised()


def test_bad_windows_and_classes_are_refused(square_model):
    explainer = OnnxOcclusion(square_model, device="cpu")
    with pytest.raises(ConfigError, match="window"):
        occlusion_map(explainer.probabilities, square_image(), 1, window=SIZE + 1)
    with pytest.raises(ConfigError, match="baseline"):
        occlusion_map(explainer.probabilities, square_image(), 1, baseline="black")
    with pytest.raises(ConfigError, match="--target"):
        explain_image(explainer, square_image(), target="tumour")


def test_files_get_an_overlay_a_raw_map_and_an_audit_row(square_model, tmp_path):
    square_image(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    rows = explain_onnx_files(square_model, [tmp_path / "square.png", tmp_path / "broken.png"], tmp_path / "out")
    ok, bad = rows
    assert bad["error"] and not ok["error"] and ok["sanity"] == "passed"
    assert ok["model_sha256"] == sha256_file(square_model) and ok["input_sha256"] == sha256_file(
        tmp_path / "square.png"
    )
    raw = np.load(ok["map"], allow_pickle=False)  # a plain .npy
    assert raw.shape == (SIZE, SIZE) and raw[square_mask()].mean() > 0.01
    assert Image.open(ok["overlay"]).size == (256, 256)
    table = list(csv.DictReader(open(tmp_path / "out" / "explain_occlusion.csv")))
    assert [r["path"] for r in table] == [str(tmp_path / "square.png"), str(tmp_path / "broken.png")]
    assert table[0]["predicted"] == "malignant" and float(table[0]["rank_corr_randomised"]) < 0.5
    record = json.loads((tmp_path / "out" / "explain_occlusion.json").read_text())
    assert record["model_sha256"] == ok["model_sha256"] and record["settings"]["window"] == 4
    with pytest.raises(ConfigError, match="only the occlusion map"):
        explain_onnx_files(square_model, [tmp_path / "square.png"], tmp_path / "x", method="gradcam")


def test_the_app_keeps_one_explainer_per_unchanged_file(square_model):
    a, _ = cached_explainer(square_model, ("occlusion", "cpu"), lambda: OnnxOcclusion(square_model, device="cpu"))
    b, _ = cached_explainer(square_model, ("occlusion", "cpu"), lambda: OnnxOcclusion(square_model, device="cpu"))
    assert a is b


def test_occlusion_imports_no_torch(square_model, tmp_path):
    square_image(tmp_path)
    code = (
        "import sys\n"
        "from tests.notorch import FULL_ONLY, BlockFullOnly\n"
        "sys.meta_path.insert(0, BlockFullOnly())\n"
        "from engine import api\n"
        f"r = api.explain_image({str(square_model)!r}, {str(tmp_path / 'square.png')!r}, device='cpu')\n"
        "print(r['method'], r['sanity']['passed'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in FULL_ONLY))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[:2] == ["occlusion True", "[]"]
