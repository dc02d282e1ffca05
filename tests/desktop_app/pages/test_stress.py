"""Stress test page: one image attacked (triptych, captions, verdict), a set swept over eps (curves that
match report.json, the flips table, a row click), ONNX models matched to checkpoints, cancel; the attack
picker (every registry attack, steps/restarts, PGD-L2), targeted attacks, and the black-box (ONNX) mode."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from desktop_app.pages.stress import StressPage
from desktop_app.widgets.flips_table import row_texts
from engine import api
from engine.core.catalog import ATTACK_LABELS, BASELINES, ITERATIVE, WHITE_BOX
from engine.core.config import AttackConfig
from tests.desktop_app.conftest import wait_for_tasks


@pytest.fixture
def page(qtbot, window, tiny_run):
    assert window.controller.open_run(tiny_run) is not None
    wait_for_tasks(qtbot, window)  # opening a run also opens its dataset
    window.show_page("Stress test")
    return window.page("StressPage")


def _image(tiny_demo, label="malignant"):
    return sorted((tiny_demo / label).rglob("*.png"))[0]


def _run(qtbot, window, page):
    page.form.run_button.click()
    wait_for_tasks(qtbot, window, 120_000)
    assert not window.ctx.errors.history, window.ctx.errors.history


def test_page_lists_the_runs_models_and_its_test_split(qtbot, window, page, tiny_run):
    items = [page.form.models.item(i).text() for i in range(page.form.models.count())]
    assert items == ["Model A — model_a/best.pt", "Model B — model_b/best.pt", "Model C — model_c/best.pt"]
    checkpoints = {m: str(tiny_run / f"model_{m.lower()}/best.pt") for m in "ABC"}
    assert page.form.checked_models() == checkpoints
    assert page.form.source() == ("split", tiny_run)
    assert str(tiny_run) in page.form.source_label.text()
    page.form.eps_slider.setValue(7)
    assert page.form.eps_label.text() == "eps = 7/255"
    late = StressPage(window.ctx)  # a page created after the run was opened shows it too
    qtbot.addWidget(late)
    assert late.form.checked_models() == page.form.checked_models()


def test_one_image_shows_three_images_and_the_predictions(qtbot, window, page, tiny_demo):
    page.form.set_source("image", _image(tiny_demo))
    page.form.models.setCurrentRow(0)
    page.form.set_eps_k(8)
    _run(qtbot, window, page)
    trip = page.single
    assert page.results.currentWidget() is trip and trip.has_images()
    r = trip.result
    assert r["original"].shape == (32, 32, 3) and r["linf"] * 255 <= 8 + 1e-4
    before, after = trip.original.caption.text(), trip.adversarial.caption.text()
    assert f"predicted <b>{r['pred_clean']}</b>, p = {max(r['probs_clean']):.2f}" in before
    assert f"predicted <b>{r['pred_adv']}</b>, p = {max(r['probs_adv']):.2f}" in after
    assert "FGSM, eps 8/255" in after and "amplified ×16" in trip.perturbation.caption.text()
    assert ("flipped" if r["flipped"] else "unchanged") in trip.verdict.text()
    assert "p(malignant)" in trip.details.text() and "model_a/best.pt" in trip.title.text()


def test_eps_zero_is_unchanged(qtbot, window, page, tiny_demo):
    page.form.set_source("image", _image(tiny_demo, "benign"))
    page.form.set_eps_k(0)
    _run(qtbot, window, page)
    trip = page.single
    assert trip.has_images() and "Prediction unchanged" in trip.verdict.text()
    assert trip.result["linf"] == 0 and "L∞) = 0/255" in trip.details.text()


def test_pgd_on_one_image(qtbot, window, page, tiny_demo):
    page.form.set_source("image", _image(tiny_demo))
    page.form.set_method("pgd")
    assert page.form.steps_spin.isEnabled()
    page.form.steps_spin.setValue(3)
    page.form.set_eps_k(4)
    _run(qtbot, window, page)
    assert page.single.result["method"] == "pgd" and "PGD, eps 4/255" in page.single.adversarial.caption.text()


def test_set_on_the_test_split_plots_curves_that_match_the_report(qtbot, window, page, tiny_run):
    page.form.set_source("split")
    page.form.set_eps_k(8)
    _run(qtbot, window, page)
    eps_k = [0, 1, 2, 4, 8]
    for model in ("A", "B", "C"):
        for metric in ("accuracy", "sensitivity", "specificity"):
            x, y = page.curves.series[(model, metric)]
            assert x.tolist() == eps_k and len(y) == len(eps_k)
    report = window.ctx.state.run.report
    clean_a = next(
        e for e in report["evaluations"] if e["model"] == "A" and e["condition"] == "clean" and e["level"] == "image"
    )
    assert page.curves.series[("A", "accuracy")][1][0] == pytest.approx(clean_a["accuracy"])
    fgsm_a = next(s for s in report["sweep"] if s["model"] == "A" and s["attack_source"] == "A" and s["eps"] == 8 / 255)
    assert page.curves.series[("A", "accuracy")][1][-1] == pytest.approx(fgsm_a["accuracy"])
    # each model's accuracy band: its patient-level intervals, the same resamples as the report's (same seed)
    x, low, high = page.curves.bands["A"]
    assert x.tolist() == eps_k and [low[0], high[0]] == pytest.approx(clean_a["ci"]["accuracy"])
    assert [low[-1], high[-1]] == pytest.approx(fgsm_a["ci"]["accuracy"])
    assert page.curves.baseline == pytest.approx(clean_a["majority_baseline"])
    flips = page.set_result["flips"]
    assert page.flips.rowCount() == len(flips)
    shown = {tuple(page.flips.item(r, c).text() for c in range(5)) for r in range(page.flips.rowCount())}
    assert shown == {row_texts(f) for f in flips}
    assert f"{len(flips)} prediction(s) flipped at eps 8/255" in page.flips_title.text()
    assert "A</b>: accuracy" in page.summary.text() and "synthetic" in page.summary.text()
    if flips:  # real flips (the tiny models usually flip one or two at 8/255): click the first row
        _click_row(qtbot, window, page, 0)


def _click_row(qtbot, window, page, row):
    flip = page.flips.flip_at(row)
    rect = page.flips.visualItemRect(page.flips.item(row, 0))
    qtbot.mouseClick(page.flips.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    wait_for_tasks(qtbot, window, 60_000)
    view = page.flip_view
    assert view.has_images() and view.result["image_path"] == flip["path"]
    assert view.result["label_attacked"] == flip["label"] and view.result["eps"] == flip["eps"]
    assert flip["model"] in view.title.text() or f"model_{flip['model'].lower()}" in view.title.text()
    assert f"<b>{view.result['pred_clean']}</b><br>p = " in view.original.caption.text()
    assert f"<b>{view.result['pred_adv']}</b><br>p = " in view.adversarial.caption.text()
    return view


def test_clicking_a_constructed_flip_shows_its_triptych(qtbot, window, page, tiny_run, tiny_demo):
    path = str(_image(tiny_demo, "benign"))
    flip = {"path": path, "label": "benign", "model": "B", "eps": 8 / 255, "clean_pred": "benign",
            "adv_pred": "malignant", "p_clean": 0.61, "p_adv": 0.55}  # fmt: skip
    point = {"eps": 0.0, "accuracy": 1.0, "sensitivity": 1.0, "specificity": 1.0, "n_flipped": 0}
    result = {"curves": {"B": [point, dict(point, eps=8 / 255, accuracy=0.9, n_flipped=1)]}, "flips": [flip],
              "flip_eps": 8 / 255, "method": "fgsm", "steps": None, "classes": ["benign", "malignant"],
              "positive_class": "malignant", "majority_baseline": 0.5, "n": 10,
              "checkpoints": {"B": str(tiny_run / "model_b/best.pt")}, "attack": AttackConfig("fgsm")}  # fmt: skip
    page.show_set_result(result)
    assert page.flips.rowCount() == 1 and page.flips.item(0, 3).text() == "benign → malignant"
    assert page.flips.item(0, 4).text() == "0.61 → 0.55"
    view = _click_row(qtbot, window, page, 0)
    assert "model_b/best.pt" in view.title.text() and "true label benign" in view.title.text()


def test_cancel_a_set_run(qtbot, window, page):
    page.form.set_source("split")
    page.form.set_method("pgd")
    page.form.steps_spin.setValue(50)
    page.form.set_eps_k(32)
    page.form.run_button.click()
    assert page.task is not None and not page.form.run_button.isEnabled()
    page.progress.cancel_button.click()
    wait_for_tasks(qtbot, window, 60_000)
    assert page.progress.stage.text() == "Cancelled"
    assert page.form.run_button.isEnabled() and page.set_result is None
    assert not window.ctx.errors.history
    assert window.ctx.tasks.wait(10_000) and window.ctx.tasks.pool.activeThreadCount() == 0


def test_onnx_model_is_attacked_through_its_checkpoint(qtbot, window, page, tiny_run, tmp_path, monkeypatch):
    page.add_onnx(tiny_run / "model_a.onnx")
    wait_for_tasks(qtbot, window)
    item = page.form.models.currentItem()
    assert item.text() == "model_a.onnx (gradients from model_a/best.pt)"
    assert page.form.current_model() == ("model_a", str(tiny_run / "model_a/best.pt"))
    # an ONNX file away from its run folder: the page asks for the checkpoint
    alone = tmp_path / "exported.onnx"
    shutil.copy(tiny_run / "model_a.onnx", alone)
    asked = []

    def fake_dialog(*args, **kwargs):
        asked.append(args[1])
        return str(tiny_run / "model_a/best.pt"), ""

    monkeypatch.setattr(QFileDialog, "getOpenFileName", fake_dialog)
    page.add_onnx(alone)
    wait_for_tasks(qtbot, window)
    assert asked and "exported.onnx has no gradients" in asked[0]
    assert page.form.models.currentItem().text() == "exported.onnx (gradients from model_a/best.pt)"
    assert not window.ctx.errors.history


def test_onnx_with_the_wrong_checkpoint_is_refused(qtbot, window, page, tiny_run):
    count = page.form.models.count()
    page.add_onnx(tiny_run / "model_a.onnx", tiny_run / "model_b/best.pt")
    wait_for_tasks(qtbot, window)
    qtbot.waitUntil(lambda: bool(window.ctx.errors.history))
    title, message = window.ctx.errors.history[-1]
    assert "do not belong together" in message and "model_a.onnx" in message
    assert page.form.models.count() == count


def test_missing_inputs_are_explained(qtbot, window, page, tmp_path):
    page.form.set_source("image")
    assert page.run() is None
    assert "no image chosen" in window.ctx.errors.history[-1][1]
    for i in range(page.form.models.count()):
        page.form.models.item(i).setCheckState(Qt.CheckState.Unchecked)
    page.form.set_source("split")
    assert page.run() is None
    assert "no model ticked" in window.ctx.errors.history[-1][1]
    page.mode_combo.setCurrentIndex(1)  # black-box: no images chosen
    page.bb_form.set_source("folder")
    assert page.blackbox.run() is None and "no images chosen" in window.ctx.errors.history[-1][1]
    page.mode_combo.setCurrentIndex(0)
    page.form.models.item(0).setCheckState(Qt.CheckState.Checked)
    (tmp_path / "flat").mkdir()
    page.form.set_source("folder", tmp_path / "flat")
    shown = len(window.ctx.errors.history)
    page.run()
    wait_for_tasks(qtbot, window)
    qtbot.waitUntil(lambda: len(window.ctx.errors.history) > shown)
    assert window.ctx.errors.history[-1][0] == "Stress test"
    assert "has no images" in window.ctx.errors.history[-1][1]
    assert page.progress.stage.text().startswith("Failed")


# --- the attack picker, targeted and L2 attacks --------------------------------------------------------
def test_attack_picker_lists_the_catalog_and_enables_its_settings(page):
    form = page.form
    combo = form.attack_combo
    keys = [combo.itemData(i) for i in range(combo.count())]
    assert keys == [*WHITE_BOX, *BASELINES]
    assert all(combo.itemText(i).startswith(ATTACK_LABELS[k]) for i, k in enumerate(keys))
    for key in keys:
        form.set_method(key)
        assert form.steps_spin.isEnabled() == (key in ITERATIVE), key
        assert form.restarts_spin.isEnabled() == (key in ("pgd", "pgd-l2", "apgd")), key
        assert form.targeted.isEnabled() == (key in WHITE_BOX), key  # noise has no target
        assert form.loss_combo.isEnabled() == (key in WHITE_BOX), key
        assert form.l2_spin.isVisibleTo(form) == (key == "pgd-l2") != form.eps_slider.isVisibleTo(form), key
    assert form.targeted.text() == "Targeted: make malignant look benign"
    assert "missed-cancer direction" in form.targeted_note.text()
    form.set_method("pgd-l2")
    form.l2_spin.setValue(0.4)
    assert form.eps() == pytest.approx(0.4) and form.eps_values() == pytest.approx([0.05, 0.1, 0.2, 0.4])
    form.set_method("fgsm")
    form.targeted.setChecked(True)
    assert form.attack() == AttackConfig("fgsm", form.eps(), target="benign")
    form.set_method("apgd")
    form.steps_spin.setValue(3)
    form.restarts_spin.setValue(2)
    assert form.attack() == AttackConfig("apgd", form.eps(), steps=3, restarts=2, target="benign")
    assert form.attack().loss == "margin"  # the default: it does not saturate
    form.loss_combo.setCurrentIndex(form.loss_combo.findData("ce"))
    assert form.attack().loss == "ce"


def test_set_with_targeted_pgd_matches_the_engine(qtbot, window, page, tiny_run):
    page.form.set_source("split")
    page.form.set_method("pgd")
    page.form.steps_spin.setValue(3)
    page.form.restarts_spin.setValue(2)
    page.form.set_eps_k(4)
    page.form.targeted.setChecked(True)
    _run(qtbot, window, page)
    assert page.set_result["target"] == "benign" and page.set_result["restarts"] == 2
    models = {m: str(tiny_run / f"model_{m.lower()}/best.pt") for m in "ABC"}
    pgd = AttackConfig("pgd", steps=3, restarts=2, target="benign")
    expected = api.stress_test_set(
        models, api.ImageSource.of_run(tiny_run), pgd, eps_values=[1 / 255, 2 / 255, 4 / 255]
    )
    for model, points in expected["curves"].items():
        for metric in ("accuracy", "sensitivity", "specificity"):
            x, y = page.curves.series[(model, metric)]
            assert x.tolist() == [0, 1, 2, 4]
            assert y.tolist() == pytest.approx([p[metric] for p in points]), (model, metric)
    assert "PGD, 3 steps, 2 restarts, targeted towards benign" in page.summary.text()
    assert all(f["adv_pred"] == "benign" for f in page.set_result["flips"])  # pulled towards benign only


def test_one_image_targeted_and_l2(qtbot, window, page, tiny_demo):
    page.form.set_source("image", _image(tiny_demo))
    page.form.set_method("bim")
    page.form.steps_spin.setValue(3)
    page.form.set_eps_k(8)
    page.form.targeted.setChecked(True)
    _run(qtbot, window, page)
    r = page.single.result
    assert r["method"] == "bim" and r["targeted"] and r["label_attacked"] == "benign"
    assert "target class: benign" in page.single.details.text()
    page.form.targeted.setChecked(False)
    page.form.set_method("pgd-l2")
    page.form.l2_spin.setValue(0.5)
    _run(qtbot, window, page)
    r = page.single.result
    delta = r["perturbation"].astype(float)
    assert (delta**2).sum() ** 0.5 <= 0.5 + 2 / 255 * delta.size**0.5  # L2 ball, then rounded to 8 bits
    assert "PGD-L2, L2 radius 0.5" in page.single.adversarial.caption.text()
    view = r["perturbation_view"]
    assert r["linf"] > 0 and (view.min() == 0 or view.max() == 255)  # scaled by its largest change, not by 0.5


# --- black-box (ONNX) ---------------------------------------------------------------------------------
def test_blackbox_on_the_runs_onnx_shows_metrics_curve_and_provider(qtbot, window, page, tiny_run):
    page.mode_combo.setCurrentIndex(page.mode_combo.findData("black"))
    assert page.forms.currentWidget() is page.bb_form and page.results.currentWidget() is page.bb_view
    bb = page.bb_form
    options = [bb.model_combo.itemData(i) for i in range(bb.model_combo.count())]
    assert options == [str(tiny_run / f"model_{m}.onnx") for m in "abc"]
    assert bb.model() == tiny_run / "model_b.onnx"  # the app's chosen ONNX model
    bb.set_model(tiny_run / "model_a.onnx")
    bb.queries_spin.setValue(20)
    bb.limit_spin.setValue(8)
    bb.set_eps_k(8)
    assert bb.source() == ("split", tiny_run)
    bb.run_button.click()
    wait_for_tasks(qtbot, window, 120_000)
    assert not window.ctx.errors.history, window.ctx.errors.history
    result, view = page.blackbox.result, page.bb_view
    assert result["provider"] in view.summary.text() and "ExecutionProvider" in result["provider"]
    assert result["n_images"] == 8 and [r["eps"] for r in result["results"]] == [0.0, 8 / 255]
    clean, attacked = result["results"]
    assert view.table.rowCount() == 2 and view.table.item(1, 0).text() == "Square, eps 8/255"
    lo, hi = clean["ci"]["accuracy"]  # the 8 images' patients resampled (the run's test split has 2)
    assert result["intervals"]["n_resamples"] == 1000
    assert view.table.item(0, 1).text() == f"{clean['accuracy']:.2f} ({lo:.2f}–{hi:.2f})"
    missed, ci = attacked["missed_cancer_rate"], attacked["ci"]["missed_cancer_rate"]
    assert view.table.item(1, 4).text() == (
        f"{missed:.2f} (—)" if ci is None else f"{missed:.2f} ({ci[0]:.2f}–{ci[1]:.2f})"
    )
    x, y = view.curves["Square, eps 8/255"]
    assert x.tolist() == list(range(21)) and y.tolist() == pytest.approx(attacked["accuracy_curve"])
    assert y[0] == pytest.approx(clean["accuracy"]) and y[-1] == pytest.approx(attacked["accuracy"])
    assert "model_a.onnx" in view.summary.text() and "missed-cancer rate" in view.summary.text()


def test_blackbox_on_a_folder_and_an_opened_onnx(qtbot, window, page, tiny_run, tiny_demo, tmp_path):
    alone = tmp_path / "deployed.onnx"
    shutil.copy(tiny_run / "model_c.onnx", alone)
    window.ctx.state.set_onnx(alone)  # File > Open ONNX model… elsewhere in the app
    bb = page.bb_form
    assert bb.model() == alone and bb.model_combo.currentText() == "deployed.onnx"
    bb.set_source("folder", tiny_demo)
    bb.queries_spin.setValue(10)
    bb.limit_spin.setValue(4)
    page.mode_combo.setCurrentIndex(1)
    bb.run_button.click()
    wait_for_tasks(qtbot, window, 120_000)
    assert not window.ctx.errors.history, window.ctx.errors.history
    assert page.blackbox.result["n_images"] == 4 and page.blackbox.result["model"] == alone.name
    assert "deployed.onnx" in page.bb_view.summary.text()
