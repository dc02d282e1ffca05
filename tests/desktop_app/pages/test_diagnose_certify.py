"""Diagnose page, Certify: a tiny sealed ONNX model whose smoothed classifier is known exactly
(``tests/engine/deploy/smoothing_models.py``) certifies a folder on a worker; the radii are the engine's for the same
files and seed, an image on the decision boundary abstains (shaded like an uncertain call), sigma is the model's own
or the spin box's for a model without one, the CSV carries the certificate, and Cancel leaves the table as it was."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from desktop_app.widgets.prediction_table import ERROR_COLUMN, RADIUS_COLUMN, UNCERTAIN
from engine import api
from engine.core.config import CertifyConfig
from tests.desktop_app.conftest import wait_for_tasks
from tests.engine.deploy.smoothing_models import SIZE, D, linear_model

GAUSSIAN = {"method": "gaussian", "sigma": 0.5}
LEVELS = {"dark.png": 60, "bright.png": 195, "edge.png": 128}  # edge: mean 0.502, on the boundary at 0.5


@pytest.fixture
def smoothing(tmp_path):
    """A model that calls 'malignant' when the mean pixel value is over 0.5 (trained, its record says, with sigma
    0.5), the same model without a sigma, and a folder of three flat images."""
    w, b = np.full(D, 1 / np.sqrt(D), np.float32), -0.5 * np.sqrt(D)
    folder = tmp_path / "images"
    folder.mkdir()
    for name, level in LEVELS.items():
        Image.fromarray(np.full((SIZE, SIZE, 3), level, np.uint8)).save(folder / name)
    return {
        "own": linear_model(tmp_path / "smooth.onnx", w, b, training=GAUSSIAN),
        "none": linear_model(tmp_path / "clean.onnx", w, b, training={"method": "clean"}),
        "folder": folder,
    }


def open_and_predict(qtbot, window, model, folder):
    window.ctx.state.set_onnx(model)
    window.show_page("Diagnose")
    wait_for_tasks(qtbot, window)
    page = window.page("DiagnosePage")
    assert not page.certify.form.button.isEnabled()  # nothing predicted yet
    page.add_inputs([folder])
    page.run_prediction()
    wait_for_tasks(qtbot, window)
    assert page.certify.form.button.isEnabled() and not window.ctx.errors.history
    return page


def cells(page) -> dict:
    t = page.table
    return {t.item(i, 0).text(): t.item(i, RADIUS_COLUMN) for i in range(t.rowCount())}


def test_certify_fills_the_radius_column_with_the_engines_certificates(qtbot, window, smoothing, tmp_path):
    page = open_and_predict(qtbot, window, smoothing["own"], smoothing["folder"])
    form = page.certify.form
    assert form.sigma.value() == 0.5 and not form.sigma.isEnabled() and "model's own" in form.sigma_note.text()
    assert (form.n.value(), form.alpha.value()) == (CertifyConfig().n, CertifyConfig().alpha)
    assert "smoothed" in form.hint.text() and "abstain" in form.hint.text()
    assert page.table.isColumnHidden(RADIUS_COLUMN)  # no certificate yet
    form.n.setValue(200)
    form.button.click()
    assert not form.button.isEnabled() and not page.run_button.isEnabled()  # one task at a time
    wait_for_tasks(qtbot, window)
    assert not window.ctx.errors.history
    want = {r["path"]: r for r in api.certify_files(smoothing["own"], [smoothing["folder"]],
                                                     config=CertifyConfig(sigma=0.5, n=200))}  # fmt: skip
    assert not page.table.isColumnHidden(RADIUS_COLUMN) and page.table.isColumnHidden(ERROR_COLUMN)  # all read
    shown = cells(page)
    for row in page.rows:
        radius = shown[row["path"].rsplit("/", 1)[-1]]
        assert row["certified_radius_l2"] == want[row["path"]]["radius_l2"]  # same files, order and seed
        if row["path"].endswith("edge.png"):
            assert radius.text() == "abstain" and radius.background().color() == UNCERTAIN
            assert "abstains" in radius.toolTip()
            continue
        want_text = f"{row['certified_radius_l2']:.3f} ({row['certified_linf_255']:.2f}/255)"
        assert radius.text() == want_text and row["certified_radius_l2"] > 0.5 and "L2 distance" in radius.toolTip()
        assert row["certified_call"] == row["predicted"] and row["certified_sigma"] == 0.5
    assert "2 certified (median L2 radius" in page.summary.text() and "1 abstained" in page.summary.text()
    page.table.selectRow(0)
    assert "Certified" in page.details.text() and "smoothed classifier" in page.details.text()
    out = page.export_csv(tmp_path / "certified.csv")
    rows = {r["path"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    for path, cert in want.items():
        assert rows[path]["certified_call"] == cert["predicted"] and rows[path]["certified_n"] == "200"
        assert float(rows[path]["certified_radius_l2"]) == pytest.approx(cert["radius_l2"])


def test_a_model_without_sigma_uses_the_spin_box(qtbot, window, smoothing):
    page = open_and_predict(qtbot, window, smoothing["none"], smoothing["folder"])
    form = page.certify.form
    assert form.sigma.isEnabled() and form.sigma.value() == 0.25 and "has none" in form.sigma_note.text()
    form.n.setValue(100)
    form.button.click()
    wait_for_tasks(qtbot, window)
    assert not window.ctx.errors.history
    assert {r["certified_sigma"] for r in page.rows} == {0.25}


def test_cancel_keeps_the_table_without_certificates(qtbot, window, smoothing):
    page = open_and_predict(qtbot, window, smoothing["own"], smoothing["folder"])
    page.certify.form.n.setValue(1_000_000)
    page.certify.form.button.click()
    assert page.progress.cancel_button.isEnabled()
    page.progress.cancel_button.click()
    wait_for_tasks(qtbot, window)
    assert page.progress.stage.text() == "Cancelled" and not window.ctx.errors.history
    assert page.table.isColumnHidden(RADIUS_COLUMN) and all("certified_call" not in r for r in page.rows)
    assert page.certify.form.button.isEnabled() and page.run_button.isEnabled()
