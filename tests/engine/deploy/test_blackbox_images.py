"""The one black-box entry of the CLI and the app (``deploy.blackbox.blackbox_images``): the Square attack on an
ONNX file over a run's test split or a labelled folder, a fixed subset when asked; it must find flips where the
model can be flipped."""

from __future__ import annotations

import pytest

from engine.core.config import DataConfig
from engine.core.errors import DataError, ModelError
from engine.data.prepare import prepare_data
from engine.deploy.blackbox import blackbox_images
from engine.runs.images import ImageSource
from tests.engine.conftest import CLASSES, SIZE, _write_folder

EPS = 64 / 255  # the toy task's margin is wide: white-box attacks need 32-64/255 to break it


def test_on_the_run_test_split_it_flips_what_the_queries_reach(toy, onnx_a):
    data = prepare_data(DataConfig(data=str(toy["folder"])), SIZE, split_file=toy["run"] / "split.csv")
    r = blackbox_images(onnx_a, ImageSource.of_run(toy["run"]), eps_values=[EPS], n_queries=60, limit=100, seed=0)
    assert r["n_images"] == len(data.arrays("test")) and r["classes"] == list(CLASSES)
    assert r["model"] == "model_a.onnx" and r["images"] == "the test split of run"
    clean, attacked = r["results"]
    assert clean["eps"] == 0 and attacked["eps"] == pytest.approx(EPS)
    assert clean["accuracy"] >= 0.9
    assert attacked["attack_success_rate"] > 0.2 and attacked["accuracy"] < clean["accuracy"] - 0.2
    assert attacked["accuracy_curve"][0] == pytest.approx(clean["accuracy"])  # before any query: the clean images
    assert r["provider"].endswith("ExecutionProvider")


def test_on_a_folder_a_fixed_subset_of_at_most_limit_images(toy, onnx_a):
    few = blackbox_images(onnx_a, ImageSource.of_folder(toy["folder"]), eps_values=[EPS], n_queries=5, limit=7)
    again = blackbox_images(onnx_a, ImageSource.of_folder(toy["folder"]), eps_values=[EPS], n_queries=5, limit=7)
    assert few["n_images"] == 7 and few["results"] == again["results"]
    assert few["images"] == "the images in data"


def test_images_of_other_classes_are_refused(toy, onnx_a, tmp_path):
    other = _write_folder(tmp_path / "other", n=8)
    (other / "benign").rename(other / "normal")
    with pytest.raises(
        ModelError, match=r"trained on the classes \['benign', 'malignant'\] but the images are labelled"
    ):
        blackbox_images(onnx_a, ImageSource.of_folder(other), n_queries=2, limit=4)
    (other / "normal").rename(other / "benign")
    (other / "malignant").rename(other / "tumour")
    with pytest.raises(DataError, match="labelled images.*positive"):
        blackbox_images(onnx_a, ImageSource.of_folder(other), n_queries=2, limit=4)
