"""An INT8 copy of an exported ONNX file is another model: it never passes as exported from the fp32 checkpoint,
so no white-box (checkpoint) result is ever attributed to it."""

from __future__ import annotations

import shutil

import pytest

from engine.core.config import AttackConfig
from engine.core.errors import ModelError
from engine.deploy.blackbox import blackbox_images
from engine.deploy.quantize import quantize_onnx
from engine.export.match import checkpoint_for_onnx, load_attack_model, verify_onnx_checkpoint
from engine.runs.folder import RunFolder
from engine.runs.images import ImageSource
from engine.workflows.attack import attack_image
from engine.workflows.stress import stress_test_set
from tests.engine.conftest import toy_image

INT8_REFUSED = (
    r"model_a\.int8\.onnx is an INT8 copy of model_a\.onnx; white-box attacks run on the fp32 checkpoint, so use "
    r"model_a\.onnx, or run the black-box attack on the INT8 file"
)


@pytest.fixture(scope="module")
def int8_pair(toy, onnx_a, tmp_path_factory):
    """<folder>/model_a.onnx, its checkpoint where a run keeps it, and model_a.int8.onnx made from it."""
    folder = tmp_path_factory.mktemp("int8")
    fp32 = folder / "model_a.onnx"
    shutil.copy(onnx_a, fp32)
    RunFolder.checkpoint_beside(fp32).parent.mkdir()
    shutil.copy(toy["a"], RunFolder.checkpoint_beside(fp32))
    int8 = folder / "model_a.int8.onnx"
    quantize_onnx(fp32, int8, mode="dynamic")
    return fp32, int8, RunFolder.checkpoint_beside(fp32)


def test_the_fp32_file_still_pairs_with_its_checkpoint(int8_pair):
    fp32, _, checkpoint = int8_pair
    assert checkpoint_for_onnx(fp32) == checkpoint
    assert checkpoint_for_onnx(fp32, checkpoint) == checkpoint


def test_an_int8_copy_does_not_pass_as_exported_from_the_checkpoint(int8_pair):
    """It carries the fp32 file's metadata and weights hash, but its weights are not the checkpoint's."""
    _, int8, checkpoint = int8_pair
    with pytest.raises(ModelError, match=INT8_REFUSED):
        verify_onnx_checkpoint(int8, checkpoint)
    with pytest.raises(ModelError, match=INT8_REFUSED):
        checkpoint_for_onnx(int8, checkpoint)  # the checkpoint a user chose (the Stress page asks for one)
    with pytest.raises(ModelError, match=INT8_REFUSED):
        checkpoint_for_onnx(int8)  # refused, not "no checkpoint found, choose one"


def test_an_int8_copy_is_refused_even_with_a_checkpoint_in_its_run_folder_place(int8_pair):
    _, int8, checkpoint = int8_pair
    beside = RunFolder.checkpoint_beside(int8)
    beside.parent.mkdir(exist_ok=True)
    shutil.copy(checkpoint, beside)
    try:
        with pytest.raises(ModelError, match=INT8_REFUSED):
            load_attack_model(int8)
    finally:
        shutil.rmtree(beside.parent)


def test_no_white_box_result_is_attributed_to_an_int8_copy(toy, int8_pair):
    _, int8, _ = int8_pair
    with pytest.raises(ModelError, match=INT8_REFUSED):
        attack_image(int8, toy_image(toy), AttackConfig("fgsm", 2 / 255), device="cpu")
    with pytest.raises(ModelError, match=f"Model A8: {INT8_REFUSED}"):
        stress_test_set({"A8": int8}, ImageSource.of_run(toy["run"]), eps_values=[2 / 255], device="cpu")


def test_the_black_box_attack_still_runs_on_an_int8_copy(toy, int8_pair):
    _, int8, _ = int8_pair
    r = blackbox_images(int8, ImageSource.of_run(toy["run"]), eps_values=[2 / 255], n_queries=5, limit=4, seed=0)
    assert r["n_images"] == 4
