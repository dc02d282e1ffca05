"""Explanations as the CLI and the app ask for them: files explained with a checkpoint, with an ONNX file (occlusion
on the file itself; the captum methods on its checkpoint, which the table names), an attacked image beside its
original, ``histoguard explain`` (and its refusal in the Diagnose edition), and a method that fails the sanity check
said to fail."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import api
from engine.cli import main
from engine.core.config import AttackConfig
from engine.core.fileio import sha256_file
from engine.deploy.explain_run import explain_paths
from tests.engine.conftest import SIZE, toy_image


def test_a_checkpoints_files_get_maps_and_the_checkpoints_hash(toy, tmp_path):
    rows = api.explain_files(toy["a"], [toy_image(toy)], tmp_path, method="gradcam", device="cpu")
    (row,) = rows
    assert row["model_sha256"] == sha256_file(toy["a"]) and row["provider"] == "torch cpu" and not row["error"]
    assert np.load(row["map"]).shape == (SIZE, SIZE) and row["sanity"] in ("passed", "FAILED")
    record = json.loads((tmp_path / "explain_gradcam.json").read_text())
    assert record["settings"]["layer"] == "backbone.1" and record["label"] == "Grad-CAM"  # 16 px: 2 x 2 -> 4 x 4


def test_an_onnx_file_is_occluded_itself_and_explained_by_gradient_through_its_checkpoint(toy, onnx_a, tmp_path):
    (own,) = api.explain_files(onnx_a, [toy_image(toy)], tmp_path / "own", device="cpu")
    assert own["method"] == "occlusion" and own["provider"] == "CPUExecutionProvider" and "checkpoint" not in own
    (ig,) = api.explain_files(onnx_a, [toy_image(toy)], tmp_path / "ig", method="ig", device="cpu", steps=8)
    assert ig["model_sha256"] == sha256_file(onnx_a) and ig["checkpoint"] == str(toy["a"])
    assert ig["checkpoint_sha256"] == sha256_file(toy["a"]) and ig["predicted"] == own["predicted"]


def test_an_attacked_image_is_compared_with_its_original(toy):
    attack = api.attack_image(toy["a"], toy_image(toy), AttackConfig("pgd", 16 / 255, steps=5), device="cpu")
    r = api.explain_attack(toy["a"], attack["original"], attack["adversarial"], method="gradcam", device="cpu")
    assert r["target"] == attack["pred_clean"] == r["original"]["target"] == r["adversarial"]["target"]
    assert r["original"]["predicted"] == attack["pred_clean"] and r["adversarial"]["predicted"] == attack["pred_adv"]
    assert r["difference"].shape == (SIZE, SIZE) and -1 <= r["comparison"]["rank_correlation"] <= 1
    same = api.explain_attack(toy["a"], attack["original"], attack["original"], method="occlusion", device="cpu")
    assert same["comparison"]["rank_correlation"] == pytest.approx(1) and same["comparison"]["mass_moved"] == 0


def test_the_command_line_explains_and_the_diagnose_edition_refuses_gradients(toy, onnx_a, tmp_path, capsys,
                                                                              monkeypatch):  # fmt: skip
    image = str(toy_image(toy))
    assert main(["explain", "--model", str(onnx_a), image, "--out", str(tmp_path / "a"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "1 images explained with Occlusion" in out and (tmp_path / "a" / "explain_occlusion.csv").is_file()
    monkeypatch.setenv("HISTOGUARD_EDITION", "diagnose")
    assert main(["explain", "--model", str(onnx_a), "--method", "gradcam", image, "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "needs PyTorch" in err and "--method occlusion does not" in err and not (tmp_path / "b").exists()


class _ImageIsTheMap:
    """A 'method' whose map is the image's brightness, whatever the weights: what the sanity check exists to catch."""

    method = "smoothgrad"
    record = {"model": "fake.onnx", "model_sha256": "0" * 64}

    def __init__(self):
        self.meta = api.ModelMeta(arch="x", classes=("benign", "malignant"), image_size=SIZE)

    def probabilities(self, images):
        return np.tile([0.2, 0.8], (len(images), 1))

    def attribution(self, image, target, cancel=None):
        return image.mean(2).astype(np.float32)

    def randomised(self):
        return self

    def settings(self):
        return {}


def test_a_map_that_ignores_the_model_fails_the_sanity_check_and_the_cli_says_so(toy, tmp_path, capsys, monkeypatch):
    (row,) = explain_paths(_ImageIsTheMap(), [toy_image(toy)], tmp_path)
    assert row["sanity"] == "FAILED" and row["rank_corr_randomised"] == 1.0
    monkeypatch.setattr(api, "explain_files", lambda *a, **k: [row])
    assert main(["explain", "--model", "x.pt", "--method", "smoothgrad", "y.png", "--out", str(tmp_path)]) == 0
    assert "SmoothGrad FAILS the randomisation sanity check on 1 of 1 images" in capsys.readouterr().out
