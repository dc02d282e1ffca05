"""Shared test fixtures: an isolated cache/data folder per test session, and where the shared real data is."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True, scope="session")
def _isolated_user_dirs(tmp_path_factory):
    """Tests never touch the user's cache or data folders."""
    base = tmp_path_factory.mktemp("user")
    old = {k: os.environ.get(k) for k in ("HISTOGUARD_CACHE_DIR", "HISTOGUARD_DATA_DIR")}
    os.environ["HISTOGUARD_CACHE_DIR"] = str(base / "cache")
    os.environ["HISTOGUARD_DATA_DIR"] = str(base / "data")
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests use tiny tensors: one thread is as fast, and avoids OpenMP's stalls when the cores are busy."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def shared_data_dir() -> Path | None:
    env = os.environ.get("HISTOGUARD_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared real data (../shared/data or HISTOGUARD_SHARED_DATA) is not available")
    return path


def toy_arrays(n: int = 64, size: int = 16, seed: int = 0):
    """Two separable classes: class 1 has a bright square in the middle, class 0 does not."""
    rng = np.random.default_rng(seed)
    images = rng.integers(40, 120, size=(n, size, size, 3), dtype=np.uint8)
    labels = np.arange(n) % 2
    q = size // 4
    images[labels == 1, q:-q, q:-q, :] = 230
    return images, labels.astype(np.int64)


def print_calls(paths) -> list[str]:
    """``file:line`` of every ``print(...)`` call in ``paths`` (library code logs instead)."""
    found = []
    for path in paths:
        tree = ast.parse(Path(path).read_text())
        found += [
            f"{Path(path).name}:{n.lineno}"
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"
        ]
    return found


CV_RUN = ["--folds", "3", "--arch", "small_cnn", "--image-size", "32", "--epochs", "1", "--batch-size", "16",
          "--weights", "none", "--device", "cpu", "--defence", "none", "--min-eps-max", "0", "--blackbox-images",
          "0", "--bootstrap", "200"]  # fmt: skip


@pytest.fixture(scope="session")
def cv_run(tmp_path_factory) -> Path:
    """A finished 3-fold cross-validation (small CNN, one epoch per model) on 5 synthetic patients per class."""
    from engine.cli import main

    root = tmp_path_factory.mktemp("cv") / "data"
    assert main(["demo-data", str(root), "--patients-per-class", "5", "--images-per-patient", "4"]) == 0
    out = root.parent / "cv"
    assert main(["experiment", "--data", str(root), "--out", str(out), *CV_RUN]) == 0
    return out
