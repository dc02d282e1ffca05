"""Stress tests: one image attacked within its eps ball, eps sweeps over a set that agree with a direct
evaluation, flips that agree with the curves, ONNX files matched to their checkpoints, bad inputs refused."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from engine.core.config import DataConfig, ExperimentConfig, TrainConfig
from engine.core.errors import Cancelled, ConfigError, DataError, ModelError, RunFolderError
from engine.core.metrics import binary_metrics
from engine.core.progress import CancelToken
from engine.data.arrays import ArraySet
from engine.data.prepare import prepare_data
from engine.data.split import save_split
from engine.evaluate.predict import predict_proba
from engine.export.match import checkpoint_for_onnx
from engine.export.onnx_export import export_verified, parity_batches
from engine.models.checkpoint import load_checkpoint, make_metadata, save_checkpoint
from engine.models.registry import create_model
from engine.runfolder import RunFolder
from engine.stress import attack_image, perturbation_view, stress_test_set
from engine.train.loop import fit
from tests.conftest import toy_arrays

SIZE = 16
CLASSES = ("benign", "malignant")
TRAIN = TrainConfig(
    arch="small_cnn", image_size=SIZE, epochs=4, batch_size=16, lr=5e-3, patience=10, weights="none", device="cpu"
)
SET_EPS = [0.0, 2 / 255, 8 / 255, 32 / 255, 64 / 255]


def _write_folder(root, n=64, seed=0):
    """<root>/<class>/<patient>/<image>.png, 8 patients per class."""
    images, labels = toy_arrays(n, SIZE, seed=seed)
    for i, (img, y) in enumerate(zip(images, labels)):
        folder = root / CLASSES[y] / f"p{y}{i % 16 // 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"img{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A labelled toy folder and a run folder on it: model A trained (toy classes), model B untrained."""
    base = tmp_path_factory.mktemp("stress")
    folder = _write_folder(base / "data")
    run = base / "run"
    cfg = ExperimentConfig(DataConfig(data=str(folder)), TRAIN)
    RunFolder.prepare(run, cfg)
    data = prepare_data(cfg.data, SIZE)
    save_split(run / "split.csv", data.dataset, data.split)
    torch.manual_seed(0)
    model = create_model("small_cnn")
    meta = make_metadata("small_cnn", CLASSES, SIZE, {"method": "clean"})
    x, y = toy_arrays(96, SIZE, seed=1)
    fit(
        model,
        ArraySet(x[:64], y[:64]),
        ArraySet(x[64:], y[64:]),
        TRAIN,
        out_dir=run / "model_a",
        name="A",
        metadata=meta,
    )
    torch.manual_seed(1)
    save_checkpoint(run / "model_b" / "best.pt", create_model("small_cnn").eval(), meta)
    return {"folder": folder, "run": run, "a": run / "model_a" / "best.pt", "b": run / "model_b" / "best.pt"}


@pytest.fixture(scope="module")
def onnx_a(toy):
    model, meta = load_checkpoint(toy["a"])
    x = torch.rand(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    batches = parity_batches(model, x, torch.tensor([0, 1, 0, 1]), 4 / 255)
    export_verified(model, toy["run"] / "model_a.onnx", meta, SIZE, batches)
    return toy["run"] / "model_a.onnx"


def _image(toy, label="malignant"):
    return sorted((toy["folder"] / label).rglob("*.png"))[0]


# --- one image ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["fgsm", "pgd"])
@pytest.mark.parametrize("k", [1, 4, 16])
def test_attack_image_stays_in_the_eps_ball(toy, method, k):
    r = attack_image(toy["a"], _image(toy), method=method, eps=k / 255, steps=3, device="cpu")
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
    r = attack_image(toy["b"], _image(toy), eps=8 / 255, device="cpu")
    i = r["classes"].index(r["label_attacked"])
    assert r["probs_adv"][i] < r["probs_clean"][i]
    other = attack_image(toy["b"], _image(toy), eps=8 / 255, label="benign", device="cpu")
    assert other["label_attacked"] == "benign"


def test_eps_zero_changes_nothing(toy):
    r = attack_image(toy["a"], _image(toy), eps=0.0, device="cpu")
    assert np.array_equal(r["original"], r["adversarial"])
    assert not r["perturbation"].any() and r["linf"] == 0
    assert (r["perturbation_view"] == 128).all()
    assert r["probs_adv"] == pytest.approx(r["probs_clean"]) and not r["flipped"]


def test_perturbation_view_maps_the_eps_ball_to_black_grey_white():
    delta = np.array([-2, 0, 2], dtype=np.float32).reshape(1, 3, 1) / 255
    assert perturbation_view(delta, 2 / 255).ravel().tolist() == [0, 128, 255]


def test_attack_image_bad_inputs(toy, tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        attack_image(tmp_path / "none.pt", _image(toy), eps=2 / 255)
    with pytest.raises(ConfigError, match="unknown attack"):
        attack_image(toy["a"], _image(toy), method="cw", eps=2 / 255)
    with pytest.raises(ConfigError, match="outside"):
        attack_image(toy["a"], _image(toy), eps=2.0)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="bad.png"):
        attack_image(toy["a"], tmp_path / "bad.png", eps=2 / 255, device="cpu")


# --- ONNX files ----------------------------------------------------------------------------------------
def test_onnx_is_attacked_through_its_own_checkpoint(toy, onnx_a):
    assert checkpoint_for_onnx(onnx_a) == toy["a"]
    via_onnx = attack_image(onnx_a, _image(toy), eps=4 / 255, device="cpu")
    direct = attack_image(toy["a"], _image(toy), eps=4 / 255, device="cpu")
    assert np.array_equal(via_onnx["adversarial"], direct["adversarial"])


def test_onnx_with_another_checkpoint_is_refused(toy, onnx_a, tmp_path):
    with pytest.raises(ModelError, match="do not belong together.*weights_sha256"):
        checkpoint_for_onnx(onnx_a, toy["b"])
    alone = tmp_path / "model_a.onnx"
    shutil.copy(onnx_a, alone)
    assert checkpoint_for_onnx(alone) is None  # the caller asks the user for the checkpoint
    assert checkpoint_for_onnx(alone, toy["a"]) == toy["a"]
    with pytest.raises(ModelError, match="gradients"):
        attack_image(alone, _image(toy), eps=2 / 255)


# --- a set -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_result(toy):
    return stress_test_set({"A": toy["a"], "B": toy["b"]}, {"run": toy["run"]}, eps_values=SET_EPS, device="cpu")


def test_set_eps_zero_is_the_clean_accuracy(toy, run_result):
    data = prepare_data(DataConfig(data=str(toy["folder"])), SIZE, split_file=toy["run"] / "split.csv")
    test = data.arrays("test")
    assert run_result["n"] == len(test) > 0
    for name in ("A", "B"):
        model, _ = load_checkpoint(toy[name.lower()])
        direct = binary_metrics(test.labels, predict_proba(model, test, torch.device("cpu"))[:, 1])
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
    r = stress_test_set({"A": toy["a"]}, {"folder": toy["folder"]}, eps_values=[0, 4 / 255], device="cpu")
    assert r["n"] == 64 and len(r["curves"]["A"]) == 2
    assert r["curves"]["A"][0]["accuracy"] >= 0.9  # the trained toy model on its (unseen) toy images


def test_set_pgd_is_reproducible_and_reports_progress(toy):
    events = []
    kw = {"method": "pgd", "eps_values": [0, 8 / 255], "steps": 2, "seed": 3, "device": "cpu"}
    a = stress_test_set({"B": toy["b"]}, {"run": toy["run"]}, on_progress=events.append, **kw)
    b = stress_test_set({"B": toy["b"]}, {"run": toy["run"]}, **kw)
    assert a["curves"] == b["curves"] and a["flips"] == b["flips"]
    attack_events = [e for e in events if e.stage.startswith("PGD")]
    assert attack_events[-1].done == attack_events[-1].total == 2 * a["n"]


def test_set_cancel_raises_cancelled(toy):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        stress_test_set({"A": toy["a"]}, {"run": toy["run"]}, eps_values=[0, 2 / 255], device="cpu", cancel=token)


def test_set_bad_inputs_say_what_is_wrong(toy, tmp_path):
    run = {"run": toy["run"]}
    with pytest.raises(ModelError, match="Model B: checkpoint .* does not exist"):
        stress_test_set({"A": toy["a"], "B": tmp_path / "x.pt"}, run)
    with pytest.raises(ConfigError, match="no model"):
        stress_test_set({}, run)
    with pytest.raises(ConfigError, match="'holdout' is not one of train, val, test"):
        stress_test_set({"A": toy["a"]}, {"run": toy["run"], "split": "holdout"})
    with pytest.raises(ConfigError, match="images must be"):
        stress_test_set({"A": toy["a"]}, {"files": []})
    with pytest.raises(ConfigError, match="flip eps"):
        stress_test_set({"A": toy["a"]}, run, eps_values=[0, 2 / 255], flip_eps=4 / 255)
    no_split = tmp_path / "run"
    no_split.mkdir()
    shutil.copy(toy["run"] / "config.json", no_split / "config.json")
    with pytest.raises(RunFolderError, match="no split.csv"):
        stress_test_set({"A": toy["a"]}, {"run": no_split})


def test_unlabelled_or_foreign_folders_are_refused(toy, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in sorted(toy["folder"].rglob("*.png"))[:4]:
        shutil.copy(p, flat / p.name)
    with pytest.raises(DataError, match="labelled images"):
        stress_test_set({"A": toy["a"]}, {"folder": flat})
    other = _write_folder(tmp_path / "other", n=8)
    (other / "benign").rename(other / "normal")
    (other / "malignant").rename(other / "tumour")
    with pytest.raises(DataError, match="positive"):
        stress_test_set({"A": toy["a"]}, {"folder": other})


# --- targeted and black-box ----------------------------------------------------------------------------
def test_targeted_set_attack_moves_cancers_to_benign_only(toy):
    # the toy task's margin is wide (a bright square): only a large eps can hide it
    r = stress_test_set(
        {"A": toy["a"]}, {"folder": toy["folder"]}, method="pgd", eps_values=[0.5], steps=5, target="benign",
        device="cpu",
    )  # fmt: skip
    clean, attacked = r["curves"]["A"]
    assert r["target"] == "benign"
    assert attacked["missed_cancer_rate"] > clean["missed_cancer_rate"]
    assert attacked["specificity"] >= clean["specificity"]  # benign images are pulled further towards benign


def test_unknown_target_class_is_refused(toy):
    with pytest.raises(ConfigError, match="not one of"):
        stress_test_set({"A": toy["a"]}, {"folder": toy["folder"]}, target="normal", device="cpu")


def test_blackbox_images_on_the_run_test_split(toy, onnx_a):
    from engine.stress import blackbox_images

    data = prepare_data(DataConfig(data=str(toy["folder"])), SIZE, split_file=toy["run"] / "split.csv")
    r = blackbox_images(onnx_a, {"run": toy["run"]}, eps_values=[16 / 255], n_queries=30, limit=100, seed=0)
    assert r["n_images"] == len(data.arrays("test")) and r["classes"] == list(CLASSES)
    clean, attacked = r["results"]
    assert clean["eps"] == 0 and attacked["eps"] == pytest.approx(16 / 255)
    assert attacked["accuracy"] <= clean["accuracy"]
    assert r["provider"].endswith("ExecutionProvider")
    few = blackbox_images(onnx_a, {"folder": toy["folder"]}, eps_values=[16 / 255], n_queries=5, limit=7, seed=0)
    assert few["n_images"] == 7
