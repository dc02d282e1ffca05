"""Stress page, certificate of one image: the panel under the one-image result certifies the chosen image with the
chosen ONNX file on a worker (the model's own sigma), shows the engine's radius, abstains on the decision boundary,
and sets the attack's size beside the certified one."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from desktop_app.pages.stress.certify import attack_comparison
from desktop_app.widgets.certify_panel import ABSTAIN_STYLE, CERTIFIED_STYLE
from engine import api
from engine.core.config import CertifyConfig
from tests.desktop_app.conftest import wait_for_tasks
from tests.engine.deploy.smoothing_models import SIZE, D, linear_model


@pytest.fixture
def setup(tmp_path):
    w, b = np.full(D, 1 / np.sqrt(D), np.float32), -0.5 * np.sqrt(D)  # 'malignant' when the mean is over 0.5
    model = linear_model(tmp_path / "smooth.onnx", w, b, training={"method": "gaussian", "sigma": 0.5})
    images = {}
    for name, level in (("bright", 195), ("edge", 128)):
        images[name] = tmp_path / f"{name}.png"
        Image.fromarray(np.full((SIZE, SIZE, 3), level, np.uint8)).save(images[name])
    return model, images


def certify(qtbot, window, page, image):
    page.form.set_source("image", image)
    page.certify.panel.form.n.setValue(200)
    page.certify.panel.form.button.click()
    wait_for_tasks(qtbot, window)
    assert not window.ctx.errors.history, window.ctx.errors.history


def test_the_panel_shows_the_radius_of_the_chosen_image(qtbot, window, setup):
    model, images = setup
    window.ctx.state.set_onnx(model)
    window.show_page("Stress test")
    page = window.page("StressPage")
    panel = page.certify.panel
    assert panel.model() == model and panel.isVisible()
    assert "(if none of its own)" in panel.form.sigma_note.text() and panel.form.sigma.value() == 0.25
    certify(qtbot, window, page, images["bright"])
    want = api.certify_files(model, [images["bright"]], config=CertifyConfig(sigma=0.5, n=200))[0]
    text = panel.result.text()
    assert f"certified L2 radius <b>{want['radius_l2']:.3f}</b>" in text and want["radius_l2"] > 0.5
    assert f"{want['linf_equivalent_255']:.2f}/255" in text and "malignant" in text and "smoothed" in text
    assert "sigma 0.5 (the model’s own), n 200" in text and panel.result.styleSheet() == CERTIFIED_STYLE
    assert page.certify.result["radius_l2"] == want["radius_l2"]
    assert panel.form.sigma.value() == 0.5 and not panel.form.sigma.isEnabled()  # now known: the model's own

    certify(qtbot, window, page, images["edge"])
    assert "abstains" in panel.result.text() and panel.result.styleSheet() == ABSTAIN_STYLE
    page.results.setCurrentWidget(page.bb_view)
    assert not panel.isVisible()  # the panel belongs to the one-image result


def test_the_attack_is_set_beside_the_certificate():
    row = {"path": "/x/a.png", "predicted": "malignant", "radius_l2": 0.5, "linf_equivalent_255": 1.2}
    linf = {"image_path": "/x/a.png", "method": "pgd", "eps": 1 / 255}
    assert "inside" in attack_comparison(row, linf) and "cannot change" in attack_comparison(row, linf)
    assert "beyond" in attack_comparison(row, {**linf, "eps": 8 / 255})
    assert "inside" in attack_comparison(row, {**linf, "method": "pgd-l2", "eps": 0.4})
    assert attack_comparison(row, {**linf, "image_path": "/x/b.png"}) == ""  # another image
    assert attack_comparison({**row, "predicted": "abstain"}, linf) == ""
