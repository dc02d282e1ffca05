"""A set of images under white-box attack: eps sweeps that agree with a direct evaluation, flips that agree with
the curves, reproducible PGD with one progress bar, targeted attacks, bad inputs refused."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from engine.core.config import AttackConfig, DataConfig
from engine.core.errors import Cancelled, ConfigError, DataError, ModelError
from engine.core.metrics import binary_metrics
from engine.core.progress import CancelToken
from engine.data.prepare import prepare_data
from engine.evaluate.core import Evaluation
from engine.models.checkpoint import load_checkpoint
from engine.runs.images import ImageSource
from engine.workflows.stress import stress_test_set
from tests.engine.conftest import CLASSES, SIZE, _write_folder

SET_EPS = [0.0, 2 / 255, 8 / 255, 32 / 255, 64 / 255]


@pytest.fixture(scope="module")
def run_result(toy):
    return stress_test_set(
        {"A": toy["a"], "B": toy["b"]}, ImageSource.of_run(toy["run"]), eps_values=SET_EPS, device="cpu"
    )


def test_set_eps_zero_is_the_clean_accuracy(toy, run_result):
    data = prepare_data(DataConfig(data=str(toy["folder"])), SIZE, split_file=toy["run"] / "split.csv")
    test = data.arrays("test")
    assert run_result["n"] == len(test) > 0
    for name in ("A", "B"):
        model, _ = load_checkpoint(toy[name.lower()])
        direct = binary_metrics(test.labels, Evaluation({"M": model}, test, torch.device("cpu")).positive("M"))
        clean = run_result["curves"][name][0]
        assert clean["eps"] == 0
        for key in ("accuracy", "sensitivity", "specificity", "missed_cancer_rate"):
            assert clean[key] == pytest.approx(direct[key])
    assert sorted(run_result["paths"]) == sorted(str(data.dataset.records[i].path) for i in data.split.indices("test"))


def test_set_curves_have_one_point_per_eps_and_accuracy_drops(run_result):
    assert run_result["eps_values"] == SET_EPS and run_result["classes"] == list(CLASSES)
    curve = run_result["curves"]["A"]
    assert [p["eps"] for p in curve] == SET_EPS
    attacked = [p["accuracy"] for p in curve[1:]]
    assert np.mean(attacked) <= curve[0]["accuracy"]
    assert curve[-1]["accuracy"] < curve[0]["accuracy"]  # 64/255 breaks the trained toy model
    assert run_result["majority_baseline"] == pytest.approx(0.5)


def test_flips_agree_with_the_curves(run_result):
    eps, n = run_result["flip_eps"], run_result["n"]
    assert eps == SET_EPS[-1]
    for name, curve in run_result["curves"].items():
        flips = [f for f in run_result["flips"] if f["model"] == name]
        assert len(flips) == curve[-1]["n_flipped"]
        assert all(f["clean_pred"] != f["adv_pred"] and f["eps"] == eps for f in flips)
        assert all(f["path"] in run_result["paths"] and 0.5 <= f["p_clean"] <= 1 for f in flips)
        broken = sum(f["clean_pred"] == f["label"] for f in flips)  # right before, wrong after
        mended = len(flips) - broken
        assert (broken - mended) == round(n * (curve[0]["accuracy"] - curve[-1]["accuracy"]))
    assert any(f["model"] == "A" for f in run_result["flips"])


def test_set_on_a_labelled_folder_uses_every_image(toy):
    r = stress_test_set({"A": toy["a"]}, ImageSource.of_folder(toy["folder"]), eps_values=[0, 4 / 255], device="cpu")
    assert r["n"] == 64 and len(r["curves"]["A"]) == 2
    assert r["curves"]["A"][0]["accuracy"] >= 0.9  # the trained toy model on its (unseen) toy images


def test_set_pgd_is_reproducible_and_reports_progress(toy):
    events = []
    pgd, kw = AttackConfig("pgd", steps=2, seed=3), {"eps_values": [0, 8 / 255], "device": "cpu"}
    a = stress_test_set({"B": toy["b"]}, ImageSource.of_run(toy["run"]), pgd, on_progress=events.append, **kw)
    b = stress_test_set({"B": toy["b"]}, ImageSource.of_run(toy["run"]), pgd, **kw)
    assert a["curves"] == b["curves"] and a["flips"] == b["flips"]
    attack_events = [e for e in events if e.stage.startswith("PGD")]
    assert attack_events[-1].done == attack_events[-1].total == 2 * a["n"]


def test_set_cancel_raises_cancelled(toy):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        stress_test_set(
            {"A": toy["a"]}, ImageSource.of_run(toy["run"]), eps_values=[0, 2 / 255], device="cpu", cancel=token
        )


def test_set_bad_inputs_say_what_is_wrong(toy, tmp_path):
    run = ImageSource.of_run(toy["run"])
    with pytest.raises(ModelError, match="Model B: checkpoint .* does not exist"):
        stress_test_set({"A": toy["a"], "B": tmp_path / "x.pt"}, run)
    with pytest.raises(ConfigError, match="no model"):
        stress_test_set({}, run)
    with pytest.raises(ConfigError, match="'holdout' is not one of train, val, test"):
        ImageSource.of_run(toy["run"], split="holdout")
    with pytest.raises(ConfigError, match="choose the images"):
        ImageSource()
    with pytest.raises(ConfigError, match="flip eps"):
        stress_test_set({"A": toy["a"]}, run, eps_values=[0, 2 / 255], flip_eps=4 / 255)
    no_split = tmp_path / "run"
    no_split.mkdir()
    shutil.copy(toy["run"] / "config.json", no_split / "config.json")
    with pytest.raises(DataError, match="no split.csv"):
        stress_test_set({"A": toy["a"]}, ImageSource.of_run(no_split))


def test_unlabelled_or_foreign_folders_are_refused(toy, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in sorted(toy["folder"].rglob("*.png"))[:4]:
        shutil.copy(p, flat / p.name)
    with pytest.raises(DataError, match="labelled images"):
        stress_test_set({"A": toy["a"]}, ImageSource.of_folder(flat))
    other = _write_folder(tmp_path / "other", n=8)
    (other / "benign").rename(other / "normal")
    (other / "malignant").rename(other / "tumour")
    with pytest.raises(DataError, match="positive"):
        stress_test_set({"A": toy["a"]}, ImageSource.of_folder(other))


# --- targeted ------------------------------------------------------------------------------------------
def test_targeted_set_attack_moves_cancers_to_benign_only(toy):
    # the toy task's margin is wide (a bright square): only a large eps can hide it
    pgd = AttackConfig("pgd", steps=5, target="benign")
    r = stress_test_set({"A": toy["a"]}, ImageSource.of_folder(toy["folder"]), pgd, eps_values=[0.5], device="cpu")
    clean, attacked = r["curves"]["A"]
    assert r["target"] == "benign"
    assert attacked["missed_cancer_rate"] > clean["missed_cancer_rate"]
    assert attacked["specificity"] >= clean["specificity"]  # benign images are pulled further towards benign


def test_unknown_target_class_is_refused(toy):
    with pytest.raises(ConfigError, match="not one of"):
        stress_test_set(
            {"A": toy["a"]}, ImageSource.of_folder(toy["folder"]), AttackConfig(target="normal"), device="cpu"
        )
