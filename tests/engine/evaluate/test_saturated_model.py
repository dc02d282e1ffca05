"""The classic false defence: a model whose calls are unchanged but whose cross-entropy gradients vanish (its logits
scaled by 2**14, so softmax saturates and d CE / d x underflows to exactly zero on every confidently called image).

Cross-entropy attacks stand still on it and report robustness that is not there (the control); the default
attacks (margin loss) of the CLI's ``attack``, the Stress page's ``stress_test_set`` and the experiment's
robustness rows find on it exactly the adversarial examples they find on the original model.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from engine.attacks import make_attack
from engine.attacks._common import attack_mode, input_gradient
from engine.core.config import AttackConfig, DataConfig
from engine.data.prepare import prepare_data
from engine.evaluate.core import Evaluation
from engine.evaluate.robustness import RobustnessPlan, robustness_rows
from engine.models.checkpoint import load_checkpoint, save_checkpoint
from engine.runs.images import ImageSource
from engine.workflows.attack import attack_files
from engine.workflows.stress import stress_test_set
from tests.engine.conftest import SIZE

SCALE = 2.0**14  # a power of two: the scaled logits, and so every gradient sign, are exact
EPS = 64 / 255  # the toy classes are easy: FGSM flips none of them at 32/255


def saturated(model: torch.nn.Module) -> torch.nn.Module:
    """The same classifier with its last layer's weights and bias times ``SCALE``: logits x 2**14."""
    out = copy.deepcopy(model)
    last = out.backbone[-1]
    with torch.no_grad():
        last.weight.mul_(SCALE)
        last.bias.mul_(SCALE)
    return out.eval()


@pytest.fixture(scope="module")
def models(toy, tmp_path_factory):
    """The toy run's trained Model A, its saturated copy, and both as checkpoints."""
    model, meta = load_checkpoint(toy["a"])
    model.eval()
    folder = tmp_path_factory.mktemp("saturated")
    save_checkpoint(folder / "saturated.pt", saturated(model), meta)
    return {"original": model, "saturated": saturated(model), "paths": {"original": toy["a"],
            "saturated": folder / "saturated.pt"}}  # fmt: skip


@pytest.fixture(scope="module")
def test_set(toy):
    data = prepare_data(DataConfig(data=str(toy["folder"])), SIZE, split_file=toy["run"] / "split.csv")
    return data.arrays("train")  # more images than the test split


def _batch(test_set):
    return torch.from_numpy(test_set.images).permute(0, 3, 1, 2).float() / 255, torch.from_numpy(test_set.labels)


def test_the_saturated_model_calls_the_same_and_has_no_cross_entropy_gradient(models, test_set):
    x, y = _batch(test_set)
    with torch.no_grad():
        calls = models["original"](x).argmax(1)
        assert torch.equal(models["saturated"](x).argmax(1), calls)
    right = calls == y
    assert right.sum() >= 4
    with attack_mode(models["saturated"]) as net:
        ce = input_gradient(net, x[right], y[right], loss="ce")
        margin = input_gradient(net, x[right], y[right])
    assert ce.abs().max() == 0  # the gradient an attack on cross-entropy follows is gone
    assert (margin != 0).float().mean() > 0.5  # the margin's is not


@pytest.mark.parametrize("method", ["fgsm", "bim", "pgd", "apgd"])
def test_default_attacks_find_the_same_examples_on_the_saturated_model(models, test_set, method):
    x, y = _batch(test_set)
    seen = {}
    for loss in ("default", "ce"):
        for name in ("original", "saturated"):
            how = {} if loss == "default" else {"loss": loss}
            x_adv = make_attack(method, EPS, seed=0, **how)(models[name], x, y)
            with torch.no_grad():
                seen[loss, name] = models[name](x_adv).argmax(1) != y
    flipped = seen["default", "original"]
    assert flipped.sum() >= 2
    assert torch.equal(seen["default", "saturated"], flipped)
    # the control: cross-entropy finds on the original what the margin finds, and (nearly) nothing on the copy
    assert seen["ce", "original"].sum() >= flipped.sum() - 1
    assert seen["ce", "saturated"].sum() < flipped.sum() / 2


def test_cli_attack_flips_the_same_images_on_the_saturated_checkpoint(models, toy, tmp_path):
    images = sorted(toy["folder"].rglob("*.png"))[:24]
    flips = {}
    for loss, attack in (("default", AttackConfig("pgd", EPS)), ("ce", AttackConfig("pgd", EPS, loss="ce"))):
        for name, path in models["paths"].items():
            rows = attack_files(path, images, tmp_path / f"{name}-{loss}", attack, device="cpu")
            flips[loss, name] = [r["path"] for r in rows if r["clean_pred"] != r["adv_pred"]]
    assert len(flips["default", "original"]) >= 2
    assert flips["default", "saturated"] == flips["default", "original"]
    assert len(flips["ce", "saturated"]) < len(flips["default", "original"]) / 2  # the control


def test_stress_page_finds_the_same_flips_on_the_saturated_checkpoint(models, toy):
    def flips(attack):
        result = stress_test_set(models["paths"], ImageSource.of_run(toy["run"]), attack, eps_values=[0.0, EPS],
                                 device="cpu")  # fmt: skip
        return {name: sorted(f["path"] for f in result["flips"] if f["model"] == name) for name in models["paths"]}

    default = flips(AttackConfig("pgd"))
    assert len(default["original"]) >= 2 and default["saturated"] == default["original"]
    ce = flips(AttackConfig("pgd", loss="ce"))
    assert len(ce["saturated"]) < len(default["original"]) / 2  # the control


def test_robustness_rows_of_the_saturated_model_equal_the_originals(models, test_set):
    ev = Evaluation({"original": models["original"], "saturated": models["saturated"]}, test_set,
                    torch.device("cpu"))  # fmt: skip
    rows = robustness_rows(ev, RobustnessPlan(eps_values=(EPS,), natural=False, baselines=()))
    white = {(r["model"], r["attack"]): r["accuracy"] for r in rows if r["kind"] in ("white-box", "worst-case")}
    clean = {r["model"]: r["accuracy"] for r in rows if r["kind"] == "clean"}
    for attack in ("fgsm", "pgd", "worst-case"):
        assert white["saturated", attack] == white["original", attack] < clean["original"]
    ce = Evaluation({"saturated": models["saturated"]}, test_set, torch.device("cpu"))
    ce_rows = robustness_rows(ce, RobustnessPlan(eps_values=(EPS,), natural=False, baselines=(), loss="ce"))
    ce_pgd = next(r["accuracy"] for r in ce_rows if r["attack"] == "pgd")
    assert ce_pgd > white["original", "pgd"]  # the control: cross-entropy reports robustness that is not there
    assert np.isfinite(ce_pgd)
