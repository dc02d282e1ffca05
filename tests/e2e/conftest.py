"""One finished study run for the end-to-end tests (per test process): a tiny synthetic dataset and the whole
experiment on it (A, B, C, robustness with minimal eps and the black-box attack, ONNX export, report)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main

FAST = ["--arch", "small_cnn", "--image-size", "32", "--epochs", "2", "--batch-size", "16", "--weights", "none"]
FAST += ["--device", "cpu"]
ROBUST = ["--min-eps-max", "4", "--blackbox-images", "12", "--blackbox-queries", "20"]


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "data"
    assert main(["demo-data", str(root), "--patients-per-class", "4", "--images-per-patient", "8"]) == 0
    return root


@pytest.fixture(scope="session")
def run_dir(demo_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    assert main(["experiment", "--data", str(demo_root), "--out", str(out), *FAST, *ROBUST]) == 0
    return out
