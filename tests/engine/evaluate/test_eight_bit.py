"""One rule for adversarial images: every perturbed image that is evaluated, shown or saved is the 8-bit image a PNG
holds, so the experiment's rows, the Stress page and ``histoguard attack`` report the same numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.attacks.perturbation import Perturbation, perturbed_batches
from engine.core.config import AttackConfig, DataConfig
from engine.data.decode import decode_image
from engine.data.prepare import prepare_data
from engine.evaluate.core import Evaluation, softmax
from engine.evaluate.robustness import RobustnessPlan, robustness_rows
from engine.models.checkpoint import load_checkpoint
from engine.models.tensors import to_tensor
from engine.runs.images import ImageSource
from engine.workflows.attack import attack_files
from engine.workflows.stress import stress_test_set
from tests.engine.conftest import SIZE

EPS = 32 / 255


@pytest.fixture(scope="module")
def model_a(toy):
    return load_checkpoint(toy["a"])[0].eval()


@pytest.fixture(scope="module")
def test_set(toy):
    return prepare_data(DataConfig(data=str(toy["folder"])), SIZE, split_file=toy["run"] / "split.csv").arrays("test")


@pytest.mark.parametrize(
    "perturbation",
    [
        Perturbation(AttackConfig("pgd", EPS, alpha=4.37 / 255), "A"),  # a step size off the 8-bit grid
        Perturbation(AttackConfig("fgsm", 2.5 / 255), "A"),
        Perturbation(AttackConfig("uniform-noise", EPS)),
        Perturbation(natural=("blur", 1.0)),
    ],
    ids=["pgd", "fgsm-half-level", "noise", "blur"],
)
def test_every_perturbed_batch_is_on_the_8_bit_grid(model_a, test_set, perturbation):
    for _, x in perturbed_batches(test_set, perturbation, {"A": model_a}, torch.device("cpu"), batch_size=4):
        levels = x * 255
        assert torch.equal(levels, levels.round())


def test_stress_page_and_robustness_rows_agree(toy, model_a, test_set):
    """The same attack on the same images gives the same accuracy on the Stress page and in the report."""
    stress = stress_test_set({"A": toy["a"]}, ImageSource.of_run(toy["run"]), AttackConfig("pgd", steps=5),
                             eps_values=[0.0, EPS], device="cpu")  # fmt: skip
    ev = Evaluation({"A": model_a}, test_set, torch.device("cpu"))
    rows = robustness_rows(ev, RobustnessPlan(eps_values=(EPS,), attacks=("pgd",), steps=5, baselines=(),
                                              natural=False))  # fmt: skip
    (row,) = [r for r in rows if r["kind"] == "white-box"]
    assert stress["curves"]["A"][1]["accuracy"] == pytest.approx(row["accuracy"])
    assert row["accuracy"] < 1.0  # the attack did something to compare


def test_attack_reports_the_prediction_of_the_png_it_saved(toy, model_a, tmp_path):
    images = sorted(toy["folder"].rglob("*.png"))[:12]
    rows = attack_files(toy["a"], images, tmp_path, AttackConfig("pgd", EPS), device="cpu")  # random start: off-grid
    classes = ["benign", "malignant"]
    flipped = 0
    for r in rows:
        saved = np.asarray(Image.open(r["adversarial"]).convert("RGB"))
        assert np.array_equal(saved, decode_image(r["adversarial"], SIZE))
        p = softmax(model_a, to_tensor(saved[None], torch.device("cpu")))[0]
        assert classes[int(p[1] >= 0.5)] == r["adv_pred"]
        flipped += r["adv_pred"] != r["clean_pred"]
    assert flipped >= 1
