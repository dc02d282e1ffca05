"""The Slides page's tile map: with Show map on, the selected tile's attribution map is computed on the worker pool
(occlusion on the ONNX file when there is no checkpoint or no PyTorch; Grad-CAM on the checkpoint beside the ONNX
file in the full edition) and drawn over the tile, its opacity set by the slider."""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QPointF, Qt

from desktop_app.pages.slides import tiles
from tests.desktop_app.conftest import wait_for_tasks
from tests.desktop_app.pages.test_slides import BENIGN_POINT, TUMOUR_CENTRE, case, open_page, predict, slide  # noqa: F401


def click(qtbot, page, x: float, y: float) -> None:
    view = page.view
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(QPointF(x, y)))


def test_a_selected_tile_gets_its_occlusion_map_on_a_worker(qtbot, window, slide, monkeypatch):  # noqa: F811
    threads = []

    def recorded(*args, **kwargs):
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    original = tiles.tile_map
    monkeypatch.setattr(tiles, "tile_map", recorded)
    page = open_page(qtbot, window, *slide)
    predict(qtbot, window, page)
    page.tiles.attacks_available = False  # the tiny ONNX model has no checkpoint: no attack, occlusion only
    tile_map = page.tile_panel.map
    tile_map.show_button.setChecked(True)
    click(qtbot, page, *TUMOUR_CENTRE)
    wait_for_tasks(qtbot, window)
    assert threads and all(t is not threading.main_thread() for t in threads)
    r = tile_map.result
    size = page.input_size
    assert r is not None and r["method"] == "occlusion" and window.ctx.errors.history == []
    assert r["map"].shape == (size, size) and r["image"].shape == (size, size, 3) and np.ptp(r["map"]) > 0
    assert r["predicted"] == "malignant" and "Occlusion" in tile_map.status.text()
    assert "randomisation check" in tile_map.status.text()
    assert tile_map.has_map() and tile_map.view.isVisible()
    tumour_map = r["map"]
    tile_map.opacity.setValue(0)
    plain = np.asarray(_pixels(tile_map.view.composed_image()))
    tile_map.opacity.setValue(100)
    assert np.abs(np.asarray(_pixels(tile_map.view.composed_image())) - plain).max() > 20  # the map is drawn
    assert np.abs(plain[..., :3] - r["image"]).max() <= 1  # at opacity 0: the tile as the model saw it
    click(qtbot, page, *BENIGN_POINT)
    wait_for_tasks(qtbot, window)
    assert tile_map.result["predicted"] == "benign" and not np.array_equal(tile_map.result["map"], tumour_map)
    tile_map.show_button.setChecked(False)
    assert not tile_map.has_map() and tile_map.result is None


def test_the_full_edition_maps_a_tile_with_grad_cam_on_the_checkpoint(qtbot, window, case):  # noqa: F811
    page = open_page(qtbot, window, case["slide"], case["onnx"])
    pred = predict(qtbot, window, page)
    assert page.tiles.map_method() == "gradcam"
    page.tile_panel.map.show_button.setChecked(True)
    tile = pred.tiles[int(np.argmax(pred.probabilities))]
    click(qtbot, page, tile.x + 32, tile.y + 32)
    wait_for_tasks(qtbot, window)
    r = page.tile_panel.map.result
    assert window.ctx.errors.history == [] and r is not None and r["method"] == "gradcam"
    assert r["map"].shape == (page.input_size, page.input_size) and r["sanity"] is not None
    assert "Grad-CAM" in page.tile_panel.map.status.text()


def _pixels(image):
    """A QImage as an (H, W, 4) uint8 RGBA array."""
    from PySide6.QtGui import QImage

    image = image.convertToFormat(QImage.Format.Format_RGBA8888)
    return (
        np.frombuffer(image.constBits(), np.uint8)
        .reshape(image.height(), image.bytesPerLine() // 4, 4)[:, : image.width()]
        .astype(np.int16)
    )
