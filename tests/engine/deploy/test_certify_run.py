"""``histoguard certify``: runs with PyTorch blocked (the Diagnose edition), writes the CSV with the model's sha256,
the same seed gives the same CSV, sigma defaults to the model's own (refused without one), and with labelled
images it prints the certified accuracy curve."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.core.config import CertifyConfig
from engine.core.errors import ConfigError
from engine.deploy.certify_run import certify_dataset, certify_files
from engine.runs.images import ImageSource
from tests.engine.deploy.smoothing_models import SIZE, D, linear_model

REPO = Path(__file__).resolve().parents[3]
NOTORCH = REPO / "tests" / "notorch.py"
GAUSSIAN = {"method": "gaussian", "sigma": 0.5}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A linear model trained (its record says) with sigma 0.5, and a labelled folder <class>/<patient>/<image>:
    bright images are 'malignant', which the model calls right."""
    base = tmp_path_factory.mktemp("certify")
    w = np.full(D, 1 / np.sqrt(D), np.float32)
    model = linear_model(base / "model.onnx", w, -0.5 * np.sqrt(D), training=GAUSSIAN)  # class 1 when mean > 0.5
    rng = np.random.default_rng(0)
    for i in range(8):
        label = ("benign", "malignant")[i % 2]
        level = 70 if label == "benign" else 185
        folder = base / "data" / label / f"patient{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(level + rng.integers(-20, 20, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return {"model": model, "data": base / "data", "images": sorted((base / "data").rglob("*.png"))[:3]}


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_certify_runs_with_torch_blocked_and_records_the_models_sha256(setup, tmp_path):
    out = tmp_path / "cert.csv"
    args = ["certify", "--model", str(setup["model"]), *map(str, setup["images"]), "--n", "200", "--out", str(out)]
    proc = subprocess.run([sys.executable, str(NOTORCH), *args], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.splitlines()[-1] == "full-only modules imported: []"
    assert "3 images certified with sigma 0.5" in proc.stdout
    rows = _rows(out)
    digest = hashlib.sha256(setup["model"].read_bytes()).hexdigest()
    assert len(rows) == 3 and {r["model_sha256"] for r in rows} == {digest}
    for row, path in zip(rows, setup["images"]):
        assert row["input_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and row["error"] == ""
        assert row["predicted"] in ("benign", "malignant") and float(row["radius_l2"]) > 0
        assert float(row["linf_equivalent_255"]) == pytest.approx(float(row["radius_l2"]) / np.sqrt(D) * 255)
        assert (row["sigma"], row["n"], row["n0"], row["alpha"]) == ("0.5", "200", "100", "0.001")


def test_the_same_seed_gives_the_same_csv(setup, tmp_path):
    w = np.zeros(D, np.float32)
    w[0] = 1.0  # one pixel against 0.3: near the benign images' values, so the counts vary with the noise
    model = linear_model(tmp_path / "pixel.onnx", w, -0.3, training=GAUSSIAN)

    def run(name: str, seed: str) -> list[dict]:
        args = ["certify", "--model", str(model), *map(str, setup["images"]), "--n", "100", "--seed", seed]
        assert main([*args, "--out", str(tmp_path / name)]) == 0
        return [{k: v for k, v in r.items() if k != "time"} for r in _rows(tmp_path / name)]

    first = run("a.csv", "1")
    assert run("b.csv", "1") == first
    assert [r["count_benign"] for r in run("c.csv", "2")] != [r["count_benign"] for r in first]


def test_sigma_defaults_to_the_models_own_and_is_refused_without_one(setup, tmp_path):
    rows = certify_files(setup["model"], setup["images"][:1], config=CertifyConfig(n=50))
    assert rows[0]["sigma"] == 0.5
    rows = certify_files(setup["model"], setup["images"][:1], config=CertifyConfig(sigma=0.1, n=50))
    assert rows[0]["sigma"] == 0.1
    clean = linear_model(tmp_path / "clean.onnx", np.zeros(D, np.float32), 1.0, training={"method": "clean"})
    with pytest.raises(ConfigError, match="--sigma") as info:
        certify_files(clean, setup["images"][:1])
    assert "was not trained with Gaussian noise" in str(info.value)
    assert main(["certify", "--model", str(clean), str(setup["images"][0]), "--out", str(tmp_path / "x.csv")]) == 2
    assert not (tmp_path / "x.csv").exists()


def test_unreadable_files_get_a_row_with_the_reason(setup, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    rows = certify_files(setup["model"], [setup["images"][0], bad], tmp_path / "out.csv", config=CertifyConfig(n=50))
    assert rows[0]["error"] == "" and rows[1]["error"] and "predicted" not in rows[1]
    written = _rows(tmp_path / "out.csv")
    assert written[1]["predicted"] == "" and "broken.png" in written[1]["error"]


def test_certify_with_labelled_data_prints_the_certified_accuracy_curve(setup, tmp_path, capsys):
    out = tmp_path / "data.csv"
    args = ["certify", "--model", str(setup["model"]), "--data", str(setup["data"]), "--n", "200", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Certified accuracy on 8 images" in text and "L2 radius" in text and "1.000" in text
    rows = _rows(out)
    assert len(rows) == 8 and all(r["true_label"] == r["predicted"] for r in rows)


def test_certify_dataset_curve_uses_the_patients(setup):
    result = certify_dataset(setup["model"], ImageSource.of_folder(setup["data"]), config=CertifyConfig(n=200))
    curve = result["curve"]
    assert curve[0]["radius"] == 0.0 and curve[0]["accuracy"] == 1.0 and curve[-1]["radius"] == 1.0
    assert curve[0]["ci"] == pytest.approx([0.025 ** (1 / 4), 1.0])  # a perfect score over 4 patients
    assert result["sigma"] == 0.5 and result["n_images"] == 8 and len(result["model_sha256"]) == 64


def test_cli_needs_images_or_data_but_not_both(setup, tmp_path):
    out = str(tmp_path / "x.csv")
    assert main(["certify", "--model", str(setup["model"]), "--out", out]) == 2
    both = ["certify", "--model", str(setup["model"]), str(setup["images"][0]), "--data", str(setup["data"])]
    assert main([*both, "--out", out]) == 2


def test_certify_data_of_a_run_folder_takes_its_test_split(setup, toy, tmp_path, capsys):
    out = tmp_path / "run.csv"
    assert (
        main(["certify", "--model", str(setup["model"]), "--data", str(toy["run"]), "--n", "50", "--out", str(out)])
        == 0
    )
    assert "of the test split of run" in capsys.readouterr().out
    split = list(csv.DictReader(open(toy["run"] / "split.csv")))
    test_paths = {r["path"] for r in split if r["split"] == "test"}
    assert {r["path"] for r in _rows(out)} == test_paths
