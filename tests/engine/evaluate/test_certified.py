"""The experiment's certified section: Model C's ONNX file certified by randomized smoothing when it was trained with
Gaussian noise (and only then), its certified accuracy falling with the radius, in report.json, report.md and
report.html, and drawn beside the attack curves."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.core.config import DataConfig, ExperimentConfig
from engine.core.intervals import Bootstrap
from engine.data.arrays import ArraySet
from engine.evaluate.core import Evaluation
from engine.evaluate.figures import robustness_png
from engine.evaluate.suite import certified_section
from engine.report import certified as certified_report
from tests.engine.conftest import TRAIN
from tests.engine.deploy.smoothing_models import SIZE, D, linear_model

FAST = ["--arch", "small_cnn", "--image-size", "16", "--epochs", "1", "--batch-size", "16", "--weights", "none"]
FAST += ["--device", "cpu", "--sweep-eps", "0,8/255", "--attacks", "fgsm", "--min-eps-max", "0"]
FAST += ["--blackbox-images", "0", "--bootstrap", "20"]


def _evaluation(n: int = 12) -> Evaluation:
    """Flat images: dark ones benign, bright ones malignant, and two of mean 0.5 (half 127, half 128: the
    smoothed call is a coin toss there), six patients."""
    levels = np.array([40, 70, 90, 160, 190, 220, 50, 80, 170, 200, 127, 127][:n], np.uint8)
    images = np.repeat(levels[:, None, None, None], SIZE * SIZE * 3, axis=1).reshape(n, SIZE, SIZE, 3)
    images[levels == 127, ::2] += 1  # half the rows one level brighter
    labels = (levels > 127).astype(np.int64)
    data = ArraySet(images, labels, np.arange(n) % 6)
    return Evaluation({}, data, torch.device("cpu"), bootstrap=Bootstrap(n_resamples=50, seed=0))


@pytest.fixture(scope="module")
def model_c(tmp_path_factory):
    w, b = np.full(D, 1 / np.sqrt(D), np.float32), -0.5 * np.sqrt(D)  # calls 'malignant' over a mean of 0.5
    path = tmp_path_factory.mktemp("certified") / "model_c.onnx"
    return linear_model(path, w, b, training={"method": "gaussian", "sigma": 0.25})


def _cfg(**changes) -> ExperimentConfig:
    return ExperimentConfig(DataConfig(data="unused"), TRAIN, **{"defence": "gaussian", **changes})


def test_model_c_is_certified_with_its_own_sigma_and_the_curve_falls(model_c):
    section = certified_section(_cfg(certified_images=12), _evaluation(), {"C": model_c})
    assert section["model"] == "C" and section["file"] == "model_c.onnx" and section["sigma"] == 0.25
    assert section["n_images"] == 12 and section["n"] == 1000 and section["n_inputs"] == D
    assert section["abstained"] >= 1  # the images at the boundary
    curve = section["curve"]
    radii, accuracy = [r["radius"] for r in curve], [r["accuracy"] for r in curve]
    assert radii == sorted(radii) and radii[0] == 0.0
    assert all(a >= b for a, b in zip(accuracy, accuracy[1:])) and accuracy[0] >= 10 / 12
    assert all(r["linf_255"] == pytest.approx(r["radius"] / np.sqrt(D) * 255) for r in curve)
    assert all(r["ci"] is None or r["ci"][0] <= r["accuracy"] <= r["ci"][1] for r in curve)
    json.dumps(section)  # the report's JSON takes it as it is


def test_only_a_gaussian_model_c_with_images_and_an_onnx_file_is_certified(model_c):
    ev = _evaluation()
    assert certified_section(_cfg(defence="fgsm-rs"), ev, {"C": model_c}) is None
    assert certified_section(_cfg(certified_images=0), ev, {"C": model_c}) is None
    assert certified_section(_cfg(), ev, {"A": model_c}) is None
    assert certified_section(_cfg(certified_images=5), ev, {"C": model_c})["n_images"] == 5  # a fixed subset


def test_the_certified_section_in_words_and_in_the_figure(model_c):
    section = certified_section(_cfg(certified_images=12), _evaluation(), {"C": model_c})
    md, html = certified_report.markdown(section), certified_report.html(section)
    for text in (md, html):
        assert "Certified robustness" in text and "smoothed classifier" in text and "sigma 0.25" in text
        assert f"{section['curve'][1]['linf_255']:.2f}/255" in text
        assert "certified balanced accuracy" in text
    assert all(r["balanced_accuracy"] is not None for r in section["curve"])
    assert md.count("\n| ") == len(section["curve"]) + 1 and certified_report.markdown(None) == ""
    rows = [{"model": "C", "kind": "clean", "attack": "none", "eps": 0.0, "accuracy": 0.9}]
    rows += [{"model": "C", "kind": "white-box", "attack": "pgd", "eps": 4 / 255, "accuracy": 0.5}]
    plain, with_certified = robustness_png({"rows": rows}), robustness_png({"rows": rows}, certified=section)
    assert with_certified[:8] == b"\x89PNG\r\n\x1a\n" and with_certified != plain


def test_the_experiment_certifies_a_gaussian_model_c_into_its_report(toy, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["experiment", "--data", str(toy["folder"]), "--out", str(out), *FAST]
    assert main([*args, "--defence", "gaussian", "--sigma", "0.25", "--certified-images", "4"]) == 0
    assert "Certified accuracy of Model C's smoothed classifier (sigma 0.25)" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    section = report["certified"]
    assert report["config"]["certified_images"] == 4 and section["n_images"] == 4 and section["sigma"] == 0.25
    assert section["model_sha256"] == report["onnx"]["C"]["sha256"]
    accuracy = [r["accuracy"] for r in section["curve"]]
    assert all(a >= b for a, b in zip(accuracy, accuracy[1:]))
    assert "## Certified robustness" in (out / "report.md").read_text()
    assert "<h2>Certified robustness" in (out / "report.html").read_text(encoding="utf-8")
