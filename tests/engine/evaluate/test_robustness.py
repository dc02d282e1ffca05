"""Robustness evaluation: the attack table, transfer, baselines, natural perturbations, minimal eps, masking flags."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.attacks import pgd
from engine.data.arrays import ArraySet
from engine.evaluate.core import Evaluation
from engine.evaluate.masking import masking_flags
from engine.evaluate.min_eps import min_eps_summary, minimal_eps
from engine.evaluate.robustness import RobustnessPlan, robustness_rows
from engine.models.registry import create_model
from engine.report import robustness as robust_report
from tests.engine.train.test_defences import subtle_arrays

EPS = (2 / 255, 16 / 255)  # the toy task has a wide margin: 16/255 is where clean models break


def _trained(seed: int, steps: int = 60):
    """small_cnn fitted to the subtle two-class task (about a second)."""
    torch.manual_seed(seed)
    model = create_model("small_cnn")
    x, y = subtle_arrays(64, seed=seed)
    x = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def models():
    return {"A": _trained(0), "B": _trained(1)}


@pytest.fixture(scope="module")
def test_set():
    x, y = subtle_arrays(24, seed=5)
    return ArraySet(x, y, np.array([f"p{i // 4}" for i in range(24)]))


@pytest.fixture(scope="module")
def rows(models, test_set):
    ev = Evaluation(models, test_set, torch.device("cpu"), batch_size=16)
    return robustness_rows(ev, RobustnessPlan(eps_values=EPS, steps=5, natural=True))


def _pick(rows, **match):
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    assert found, match
    return found


def test_every_model_has_clean_white_box_transfer_baseline_and_natural_rows(rows):
    for m, other in (("A", "B"), ("B", "A")):
        assert len(_pick(rows, model=m, kind="clean")) == 1
        for attack in ("fgsm", "pgd"):
            for eps in EPS:
                (wb,) = _pick(rows, model=m, attack=attack, eps=eps, kind="white-box")
                assert wb["source"] == m and wb["steps"] == (5 if attack == "pgd" else 1)
                (tr,) = _pick(rows, model=m, attack=attack, eps=eps, kind="transfer")
                assert tr["source"] == other
        for eps in EPS:
            _pick(rows, model=m, attack="uniform-noise", eps=eps, kind="baseline")
        assert {r["attack"] for r in _pick(rows, model=m, kind="natural")} == {"stain", "blur", "jpeg"}


def test_metrics_agree_with_each_confusion_matrix(rows):
    for r in rows:
        (tn, fp), (fn, tp) = r["confusion_matrix"]
        assert tn + fp + fn + tp == r["n"] == 24
        assert r["accuracy"] == pytest.approx((tn + tp) / r["n"])
        assert r["missed_cancer_rate"] == pytest.approx(fn / (fn + tp))


def test_white_box_pgd_hurts_more_than_noise_of_the_same_size(rows):
    for m in ("A", "B"):
        (clean,) = _pick(rows, model=m, kind="clean")
        (pgd16,) = _pick(rows, model=m, attack="pgd", eps=16 / 255, kind="white-box")
        (noise16,) = _pick(rows, model=m, attack="uniform-noise", eps=16 / 255)
        assert pgd16["accuracy"] < noise16["accuracy"] - 0.2 and noise16["accuracy"] >= clean["accuracy"] - 0.1


def _pgd_flips(model, x, y, k: int, seed: int) -> bool:
    """Does PGD-10 at k/255 (random start, step 2.5 eps / steps: the search's own attack) flip the image?"""
    if k == 0:
        return False
    eps = k / 255
    adv = pgd(model, x, y, eps=eps, alpha=eps / 4, steps=10, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(adv).argmax(1).item() != y.item()


def test_minimal_eps_is_where_pgd_starts_to_flip(models, test_set):
    """At its k the image flips; at k - 1 it does not (PGD is random and not exactly monotone in eps, so k - 1
    is checked over several fresh random starts: a search that answered too high would fail there)."""
    model = models["A"]
    values = minimal_eps(model, test_set, torch.device("cpu"), max_k=16, steps=10, seed=0, batch_size=16)
    assert len(values) == len(test_set)
    x = torch.from_numpy(test_set.images).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(test_set.labels)
    with torch.no_grad():
        wrong = (model(x).argmax(1) != y).numpy()
    below, searched = [], 0
    for i, v in enumerate(values):
        if wrong[i]:
            assert v == 0.0
            continue
        if v is None:
            assert not _pgd_flips(model, x[i : i + 1], y[i : i + 1], 16, seed=1), f"image {i} flips at 16/255"
            continue
        k = round(v * 255)
        assert 1 <= k <= 16 and v == pytest.approx(k / 255)
        assert any(_pgd_flips(model, x[i : i + 1], y[i : i + 1], k, seed=s) for s in range(3)), f"{i} holds at k"
        below += [_pgd_flips(model, x[i : i + 1], y[i : i + 1], k - 1, seed=s) for s in range(3)]
        searched += 1
    assert searched >= 5, "the test set has too few images whose minimal eps was found"
    assert sum(below) <= 0.2 * len(below), f"{sum(below)} of {len(below)} attacks flip at k - 1: k is too high"
    summary = min_eps_summary(values, 16)
    assert summary["misclassified_clean"] == int(wrong.sum())
    assert summary["not_flipped"] == sum(v is None for v in values)
    assert sum(summary["histogram"].values()) + summary["misclassified_clean"] + summary["not_flipped"] == len(values)


def test_minimal_eps_of_an_image_that_cannot_flip_is_none(models, test_set):
    values = minimal_eps(models["A"], ArraySet(test_set.images[:4], test_set.labels[:4]), torch.device("cpu"), max_k=1)
    assert all(v in (None, 0.0, 1 / 255) for v in values)


def _row(model, attack, kind, eps, acc, source=None, **extra):
    return {"model": model, "attack": attack, "kind": kind, "eps": eps, "accuracy": acc, "source": source, **extra}


def test_masking_flags_fire_on_each_warning_sign_and_not_on_a_healthy_curve():
    healthy = [
        _row("A", "fgsm", "white-box", 2 / 255, 0.6),
        _row("A", "fgsm", "white-box", 8 / 255, 0.4),
        _row("A", "pgd", "white-box", 2 / 255, 0.5),
        _row("A", "pgd", "white-box", 8 / 255, 0.2),
        _row("A", "fgsm", "transfer", 8 / 255, 0.7, source="B"),
        _row("A", "uniform-noise", "baseline", 8 / 255, 0.9),
        _row("A", "square", "black-box", 8 / 255, 0.3, white_box_accuracy_same_images=0.25),
    ]
    assert masking_flags(healthy) == []
    masked = [
        _row("C", "fgsm", "white-box", 2 / 255, 0.5),
        _row("C", "fgsm", "white-box", 8 / 255, 0.7),  # rises with eps
        _row("C", "pgd", "white-box", 2 / 255, 0.6),  # PGD weaker than FGSM at 2/255
        _row("C", "pgd", "white-box", 8 / 255, 0.72),
        _row("C", "pgd", "transfer", 8 / 255, 0.3, source="A"),  # transfer beats white-box
        _row("C", "square", "black-box", 8 / 255, 0.2, white_box_accuracy_same_images=0.7),
    ]
    codes = {f["flag"] for f in masking_flags(masked)}
    assert codes == {
        "accuracy_rises_with_eps",
        "pgd_weaker_than_fgsm",
        "transfer_beats_white_box",
        "blackbox_beats_white_box",
    }
    assert all(f["model"] == "C" and f["message"] for f in masking_flags(masked))


def test_report_tables_show_the_reviewer_columns(rows):
    section = {"rows": rows, "flags": [], "min_eps": {"A": min_eps_summary([None, None, 2 / 255], 16)}}
    table = robust_report.table_rows(section)
    assert robust_report.HEADER[:8] == (
        "model",
        "attack",
        "threat",
        "eps",
        "steps",
        "restarts",
        "clean acc",
        "robust acc",
    )
    pgd_row = next(r for r in table if r[1] == "PGD" and r[3] == "16/255" and r[0] == "A")
    assert pgd_row[2] == "white-box" and pgd_row[4] == "5"
    md = robust_report.markdown(section)
    assert "## Robustness" in md and "transfer from B" in md and "No warning sign" in md and ">16/255" in md
    html = robust_report.html(section, {}, lambda png, alt, width: "")
    assert "<h2>Robustness</h2>" in html and "random (not an attack)" in html


def test_blackbox_flag_holds_when_the_blackbox_eps_is_not_in_the_sweep(models, test_set, monkeypatch):
    """Regression: the black-box row is compared with white-box attacks run at its own eps, also when that eps
    is not one of the sweep's, so a black-box attack that beats them is flagged, not passed over in silence."""
    from engine.core.config import DataConfig, ExperimentConfig, TrainConfig
    from engine.evaluate import suite

    def fake_square(path, images, labels, *, eps_values, **kw):  # the ONNX file's accuracy: every image flipped
        n = len(labels)
        result = {"eps": eps_values[0], "accuracy": 0.0, "balanced_accuracy": 0.0, "sensitivity": 0.0,
                  "specificity": 0.0, "missed_cancer_rate": 1.0, "confusion_matrix": [[0, 0], [0, 0]], "n": n,
                  "ci": {}, "mean_queries": 1.0, "accuracy_curve": []}  # fmt: skip
        return {"provider": "fake", "results": [result]}

    monkeypatch.setattr(suite, "blackbox_stress", fake_square)
    cfg = ExperimentConfig(DataConfig(demo=True), TrainConfig(), eps=3 / 255, sweep_eps=(0, 2 / 255, 16 / 255),
                           robust_attacks=("fgsm", "pgd"), pgd_steps=5, min_eps_max=0, blackbox_images=8)  # fmt: skip
    assert 3 / 255 not in cfg.sweep_eps
    ev = Evaluation(models, test_set, torch.device("cpu"), batch_size=16)
    section = suite.robustness_section(cfg, ev)
    suite.add_blackbox(section, ev, cfg, {"A": "a.onnx"})
    (row,) = [r for r in section["rows"] if r["kind"] == "black-box"]
    assert row["eps"] == 3 / 255 and row["white_box_accuracy_same_images"] > 0.2
    flags = suite.finish(section)["flags"]
    assert any(f["flag"] == "blackbox_beats_white_box" and f["model"] == "A" for f in flags)


def test_a_row_without_white_box_reference_is_said_not_compared():
    rows = [_row("A", "pgd", "white-box", 2 / 255, 0.5), _row("A", "square", "black-box", 3 / 255, 0.1)]
    (flag,) = masking_flags(rows)
    assert flag["flag"] == "not_compared" and "3/255" in flag["message"]


def test_strong_evaluation_takes_the_worst_case_of_its_three_attacks(models, test_set):
    from engine.evaluate.strong import StrongPlan, strong_rows

    ev = Evaluation(models, test_set, torch.device("cpu"), batch_size=16)
    rows = strong_rows(ev, StrongPlan((16 / 255,), images=12, steps=5, queries=40, seed=0))
    for model in models:
        got = {r["attack"]: r for r in rows if r["model"] == model}
        assert set(got) == {"APGD-CE", "APGD-margin", "Square", "worst case"}
        assert all(r["kind"] == "strong" and r["n_images"] == 12 and r["n"] == 12 for r in got.values())
        worst = got.pop("worst case")["accuracy"]
        assert worst <= min(r["accuracy"] for r in got.values())
        clean = Evaluation({model: models[model]}, test_set, torch.device("cpu")).correct(model).mean()
        assert worst < clean  # the attacks found something at 16/255


def test_worst_case_is_right_only_where_every_attack_left_the_call_right(models, test_set):
    from engine.evaluate.robustness import worst_case_perturbations, worst_case_positive

    ev = Evaluation(models, test_set, torch.device("cpu"), batch_size=16)
    plan = RobustnessPlan(eps_values=EPS, steps=5, natural=False, baselines=())
    for eps in EPS:
        perturbations = worst_case_perturbations(ev, plan, eps)
        assert len(perturbations) == 4  # FGSM and PGD, each made on A and on B
        for model in models:
            every = np.all([ev.correct(model, q, "robustness:") for q in perturbations], axis=0)
            worst = (worst_case_positive(ev, plan, model, eps) >= 0.5) == (test_set.labels == 1)
            assert np.array_equal(worst, every)
