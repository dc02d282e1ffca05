"""Diagnose page, Show map: the selected image's attribution map laid over the image as the model saw it (the engine's
map, computed on a worker), the opacity slider, another image or method explained again, the randomisation check in
words, Export PNG, the map switched off; methods that need the checkpoint or PyTorch are offered only where they can
run."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from desktop_app.pages.diagnose.explain import NO_CHECKPOINT, NO_TORCH
from engine import api
from tests.desktop_app.conftest import wait_for_tasks


@pytest.fixture
def page(qtbot, window, tiny_run, tiny_demo):
    """The Diagnose page with Model B's predictions of four images, the first selected."""
    window.controller.open_run(tiny_run)
    window.show_page("Diagnose")
    wait_for_tasks(qtbot, window)
    page = window.page("DiagnosePage")
    page.add_inputs(sorted(tiny_demo.rglob("*.png"))[:4])
    page.run_prediction()
    wait_for_tasks(qtbot, window)
    page.table.selectRow(0)
    wait_for_tasks(qtbot, window)
    return page


def pixels(image: QImage) -> np.ndarray:
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), rgb.bytesPerLine())
    return rows[:, : 3 * rgb.width()].reshape(rgb.height(), rgb.width(), 3).copy()  # before the QImage is freed


def _method(page, name: str) -> None:
    page.explain.bar.method.setCurrentIndex(page.explain.bar.method.findData(name))


def test_show_map_lays_the_engines_map_over_the_image(qtbot, window, page, tiny_run):
    bar, view = page.explain.bar, page.image_view
    assert view.has_image() and not view.has_map() and bar.current_method() == "occlusion"
    bar.show_button.click()
    wait_for_tasks(qtbot, window)
    assert not window.ctx.errors.history, window.ctx.errors.history
    r = page.explain.result
    path = page.table.row_at(0)["path"]
    want = api.explain_image(tiny_run / "model_b.onnx", path)
    assert r["image_path"] == path and np.array_equal(r["map"], want["map"]) and r["map"].shape == (32, 32)
    assert view.has_map() and "Occlusion map" in view.caption.text() and bar.show_button.text() == "Hide map"
    assert "randomisation check" in bar.status.text() and r["target"] in bar.status.text()
    bar.opacity.setValue(0)
    assert view.opacity == 0
    assert np.array_equal(pixels(view.composed_image()), r["image"])  # opacity 0: the model's input alone
    bar.show_button.click()  # off: the image as it was
    assert not view.has_map() and view.has_image() and not bar.export_button.isEnabled()


def test_another_image_or_method_is_explained_again(qtbot, window, page):
    bar = page.explain.bar
    bar.show_button.click()
    wait_for_tasks(qtbot, window)
    page.table.selectRow(1)
    wait_for_tasks(qtbot, window)
    assert page.explain.result["image_path"] == page.table.row_at(1)["path"] and page.image_view.has_map()
    _method(page, "gradcam")  # Model B's checkpoint lies beside its ONNX file
    wait_for_tasks(qtbot, window)
    r = page.explain.result
    assert r["method"] == "gradcam" and r["checkpoint"].endswith("model_b/best.pt") and "Grad-CAM" in bar.status.text()
    assert not window.ctx.errors.history


def test_export_png_writes_the_map_at_the_sliders_opacity(qtbot, window, page, tmp_path, monkeypatch):
    bar = page.explain.bar
    bar.show_button.click()
    wait_for_tasks(qtbot, window)
    bar.opacity.setValue(100)
    target = tmp_path / "map.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    bar.export_button.click()
    wait_for_tasks(qtbot, window)
    r = page.explain.result
    assert Image.open(target).size == (256, 256)
    assert target.read_bytes() == api.overlay_png(r["image"], r["shown"], 1.0)


def test_methods_are_offered_only_where_they_can_run(qtbot, window, page, tiny_run, tmp_path):
    combo = page.explain.bar.method
    enabled = {combo.itemData(i): combo.model().item(i).isEnabled() for i in range(combo.count())}
    assert enabled == {"occlusion": True, "gradcam": True, "ig": True, "smoothgrad": True}
    alone = tmp_path / "alone.onnx"  # an ONNX file without its checkpoint: occlusion only
    shutil.copy(tiny_run / "model_b.onnx", alone)
    shutil.copy(tiny_run / "model_b.onnx.sha256", tmp_path / "alone.onnx.sha256")
    (tmp_path / "alone.onnx.sha256").write_text(
        (tmp_path / "alone.onnx.sha256").read_text().replace("model_b.onnx", "alone.onnx")
    )
    window.ctx.state.set_onnx(alone)
    wait_for_tasks(qtbot, window)
    assert not window.ctx.errors.history, window.ctx.errors.history
    assert [combo.model().item(i).isEnabled() for i in range(combo.count())] == [True, False, False, False]
    assert combo.itemData(1, Qt.ItemDataRole.ToolTipRole) == NO_CHECKPOINT  # the tooltip says why
    page.explain.limit_to_onnx()  # the Diagnose edition
    assert combo.itemData(2, Qt.ItemDataRole.ToolTipRole) == NO_TORCH and combo.currentData() == "occlusion"
