"""White-box attack of one image: within its eps ball, pushed away from the attacked label, nothing at eps 0, ONNX
files attacked through their own checkpoint, bad inputs refused."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from engine.core.config import AttackConfig
from engine.core.errors import ConfigError, DataError, ModelError
from engine.export.match import checkpoint_for_onnx
from engine.workflows.attack import attack_image, perturbation_view
from tests.engine.conftest import SIZE, toy_image


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
@pytest.mark.parametrize("k", [1, 4, 16])
def test_attack_image_stays_in_the_eps_ball(toy, method, k):
    r = attack_image(toy["a"], toy_image(toy), AttackConfig(method, k / 255, steps=3), device="cpu")
    orig, adv = r["original"].astype(int), r["adversarial"].astype(int)
    assert r["original"].shape == r["adversarial"].shape == (SIZE, SIZE, 3)
    assert r["original"].dtype == r["adversarial"].dtype == np.uint8
    assert np.abs(adv - orig).max() <= k
    assert r["linf"] * 255 <= k + 1e-4 and r["linf"] > 0
    np.testing.assert_allclose(r["perturbation"], (adv - orig) / 255, atol=1e-6)
    assert r["perturbation_view"].dtype == np.uint8 and r["perturbation_view"].max() == 255  # amplified to full range
    for probs in (r["probs_clean"], r["probs_adv"]):
        assert sum(probs) == pytest.approx(1, abs=1e-5) and len(probs) == 2
    assert r["pred_clean"] == r["classes"][int(np.argmax(r["probs_clean"]))]
    assert r["pred_adv"] == r["classes"][int(np.argmax(r["probs_adv"]))]
    assert r["flipped"] == (r["pred_clean"] != r["pred_adv"])
    assert r["label_attacked"] == r["pred_clean"]  # unlabelled: the model's own clean prediction is attacked


def test_attack_pushes_away_from_the_attacked_label(toy):
    r = attack_image(toy["b"], toy_image(toy), AttackConfig("fgsm", 8 / 255), device="cpu")
    i = r["classes"].index(r["label_attacked"])
    assert r["probs_adv"][i] < r["probs_clean"][i]
    other = attack_image(toy["b"], toy_image(toy), AttackConfig("fgsm", 8 / 255), label="benign", device="cpu")
    assert other["label_attacked"] == "benign"


def test_eps_zero_changes_nothing(toy):
    r = attack_image(toy["a"], toy_image(toy), AttackConfig("fgsm", 0.0), device="cpu")
    assert np.array_equal(r["original"], r["adversarial"])
    assert not r["perturbation"].any() and r["linf"] == 0
    assert (r["perturbation_view"] == 128).all()
    assert r["probs_adv"] == pytest.approx(r["probs_clean"]) and not r["flipped"]


def test_perturbation_view_maps_the_eps_ball_to_black_grey_white():
    delta = np.array([-2, 0, 2], dtype=np.float32).reshape(1, 3, 1) / 255
    assert perturbation_view(delta, 2 / 255).ravel().tolist() == [0, 128, 255]


def test_attack_image_bad_inputs(toy, tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        attack_image(tmp_path / "none.pt", toy_image(toy), AttackConfig("fgsm", 2 / 255))
    with pytest.raises(ConfigError, match="unknown attack"):
        attack_image(toy["a"], toy_image(toy), AttackConfig("cw", 2 / 255))
    with pytest.raises(ConfigError, match="outside"):
        attack_image(toy["a"], toy_image(toy), AttackConfig("fgsm", 2.0))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="bad.png"):
        attack_image(toy["a"], tmp_path / "bad.png", AttackConfig("fgsm", 2 / 255), device="cpu")


# --- ONNX files ----------------------------------------------------------------------------------------
def test_onnx_is_attacked_through_its_own_checkpoint(toy, onnx_a):
    assert checkpoint_for_onnx(onnx_a) == toy["a"]
    via_onnx = attack_image(onnx_a, toy_image(toy), AttackConfig("fgsm", 4 / 255), device="cpu")
    direct = attack_image(toy["a"], toy_image(toy), AttackConfig("fgsm", 4 / 255), device="cpu")
    assert np.array_equal(via_onnx["adversarial"], direct["adversarial"])


def test_onnx_with_another_checkpoint_is_refused(toy, onnx_a, tmp_path):
    with pytest.raises(ModelError, match="do not belong together.*weights_sha256"):
        checkpoint_for_onnx(onnx_a, toy["b"])
    alone = tmp_path / "model_a.onnx"
    shutil.copy(onnx_a, alone)
    assert checkpoint_for_onnx(alone) is None  # the caller asks the user for the checkpoint
    assert checkpoint_for_onnx(alone, toy["a"]) == toy["a"]
    with pytest.raises(ModelError, match="gradients"):
        attack_image(alone, toy_image(toy), AttackConfig("fgsm", 2 / 255))
