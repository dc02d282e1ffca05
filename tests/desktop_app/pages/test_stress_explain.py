"""Stress page, Maps (one image): after an attack of one image, the original and the adversarial image side by side,
each with its attribution map for the original's call, and the change between them in numbers and words (the
engine's ``explain_attack`` on the same images); off in the Diagnose edition."""

from __future__ import annotations

import numpy as np
import pytest

from engine import api
from tests.desktop_app.conftest import wait_for_tasks


@pytest.fixture
def page(qtbot, window, tiny_run):
    assert window.controller.open_run(tiny_run) is not None
    wait_for_tasks(qtbot, window)
    window.show_page("Stress test")
    return window.page("StressPage")


def test_the_maps_of_the_original_and_the_adversarial_image(qtbot, window, page, tiny_demo):
    view = page.explain.view
    assert not view.run_button.isEnabled() and view.current_method() == "gradcam"
    page.form.set_source("image", sorted((tiny_demo / "malignant").rglob("*.png"))[0])
    page.form.models.setCurrentRow(0)
    page.form.set_eps_k(16)
    page.form.run_button.click()
    wait_for_tasks(qtbot, window, 120_000)
    attack = page.single.result
    assert view.run_button.isEnabled() and "Explain both" in view.title.text()
    view.run_button.click()
    page.results.setCurrentWidget(view)
    wait_for_tasks(qtbot, window, 120_000)
    assert not window.ctx.errors.history, window.ctx.errors.history
    r = view.result
    want = api.explain_attack(attack["model"], attack["original"], attack["adversarial"], method="gradcam")
    assert np.array_equal(r["original"]["map"], want["original"]["map"])
    assert np.array_equal(r["adversarial"]["map"], want["adversarial"]["map"])
    assert r["target"] == attack["pred_clean"] and view.has_maps()
    rho = r["comparison"]["rank_correlation"]
    assert f"rank correlation {rho:.2f}" in view.summary.text() and "top-10% overlap" in view.summary.text()
    assert view.views[1].caption.text().startswith(f"Adversarial<br>{attack['pred_adv']}")
    assert ("moved the model's attention" in view.summary.text()) == api.attention_moved(r["comparison"])
    assert "blue lost, red gained" in view.views[2].caption.text()
    view.opacity.setValue(20)
    assert view.views[0].opacity == view.views[1].opacity == pytest.approx(0.2)


def test_a_new_attack_clears_the_old_maps_and_the_diagnose_edition_has_none(page):
    page.explain.attack_done({**_fake_attack(), "image_path": "/x/new.png"})
    assert page.explain.view.result is None and "new.png" in page.explain.view.title.text()
    page.limit_to_blackbox()
    assert not page.results.isTabEnabled(page.results.indexOf(page.explain.view))


def _fake_attack() -> dict:
    image = np.zeros((32, 32, 3), np.uint8)
    return {"model": "m.pt", "original": image, "adversarial": image, "method": "fgsm", "eps": 8 / 255}
