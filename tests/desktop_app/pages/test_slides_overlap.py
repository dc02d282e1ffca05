"""Slides page with overlapping tiles and test-time augmentation: the form's choices reach the prediction, the
heatmap's finer cells (one per stride) are drawn at the right place, and a click selects the tile whose centre
is nearest. The slide and the tiny model are test_slides' (tests/engine/slides/test_slide_predict)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt

from engine.slides.export import colourise
from tests.desktop_app.conftest import wait_for_tasks
from tests.desktop_app.pages.test_slides import open_page, screen_colour
from tests.engine.slides import test_slide_predict
from tests.engine.slides.test_slide_predict import TUMOUR

slide = test_slide_predict.slide  # fixture (module scope)


def _colour(p: float) -> np.ndarray:
    return colourise(np.array([[p]], dtype=np.float32))[0, 0, :3].astype(int)


def test_overlap_and_tta_reach_the_prediction_and_the_cells_are_placed_right(qtbot, window, slide):
    page = open_page(qtbot, window, *slide)
    form = page.form
    assert form.tiling_options() == {"overlap": 0.0, "tta": "none"}  # the defaults: as before
    form.model_mpp.setValue(1.0)
    form.overlap.setCurrentIndex(form.overlap.findData(0.5))
    form.tta.setCurrentIndex(form.tta.findData("d4"))
    assert page.run_prediction() is not None
    wait_for_tasks(qtbot, window)
    pred = page.prediction
    assert pred.tile_size == 64 and pred.stride == pred.cell == 32 and pred.tta == "d4" and pred.grid == (64, 64)
    assert "every 32 px (overlap 50%)" in page.summary.text.text() and "TTA d4" in page.summary.text.text()
    item = page.view.overlay_item
    assert item.transform().m11() == 32 and item.pixmap().width() == 64  # one pixel per 32-px cell
    page.opacity.setValue(100)
    heat = pred.heatmap()
    # the cell left of the tumour's edge is the mean of a benign tile and a half-tumour tile: its own colour,
    # unlike both neighbours, so a misplaced overlay (a cell off, or tile-sized cells) shows the wrong one
    row, col = (TUMOUR[0].start + TUMOUR[0].stop) // 64, TUMOUR[1].start // 32 - 1
    assert min(np.abs(_colour(heat[row, col]) - _colour(heat[row, c])).max() for c in (col - 1, col + 1)) > 30
    seen = screen_colour(page, col * 32 + 16, row * 32 + 16)
    assert np.abs(_colour(heat[row, col]) - seen).max() <= 3, (heat[row, col - 1 : col + 2], seen)
    page.tiles.attacks_available = False  # the tiny model has no torch checkpoint
    view = page.view
    point = QPointF(col * 32 + 16, row * 32 + 16)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(point))
    tile = pred.tiles[page.tiles.selected]
    assert tile.x <= point.x() < tile.x + 64 and tile.y <= point.y() < tile.y + 64
    assert abs(tile.x + 32 - point.x()) <= 16 and abs(tile.y + 32 - point.y()) <= 16  # the nearest-centred one
    assert view.selection_item.rect().width() == 64  # the tile's own box, not a cell
