"""Slides page: a small pyramid (tests/engine/slides/test_slides.write_pyramid) opened and viewed at the level its
zoom needs, predicted with the torch-free tiny ONNX model (magenta "tumour" inside bluish "benign" tissue,
tests/engine/slides/test_slide_predict), the heatmap drawn over the right places, a tile clicked, cancel, export,
bad inputs in the error dialog, and the event loop kept free while a prediction runs. The robustness map
and the tile attack use the torch model / ONNX pair of tests/engine/workflows/test_slide_robust."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QLabel

from engine.core.config import AttackConfig
from engine.deploy.tiny import tiny_onnx_model
from engine.slides.export import colourise
from tests.desktop_app.conftest import wait_for_tasks
from tests.engine.slides import test_slide_predict
from tests.engine.slides.test_slide_predict import TISSUE, TUMOUR
from tests.engine.slides.test_slides import write_pyramid
from tests.engine.workflows import test_slide_robust

slide = test_slide_predict.slide  # fixtures (module scope): the tiny ONNX model's slide ...
case = test_slide_robust.case  # ... and a small_cnn checkpoint + its ONNX export with their slide
TUMOUR_CENTRE = ((TUMOUR[1].start + TUMOUR[1].stop) / 2 + 32, (TUMOUR[0].start + TUMOUR[0].stop) / 2 + 32)  # x, y:
BENIGN_POINT = (TISSUE[1].start + 160, (TISSUE[0].start + TISSUE[0].stop) / 2 + 32)  # the centres of 64-px tiles


def open_page(qtbot, window, slide_path, model):
    window.ctx.state.set_onnx(model)
    window.show_page("Slides")
    page = window.page("SlidesPage")
    page.open_slide(slide_path)
    wait_for_tasks(qtbot, window)
    return page


@pytest.fixture
def page(qtbot, window, slide):
    return open_page(qtbot, window, *slide)


def predict(qtbot, window, page, model_mpp: float = 1.0):
    page.form.model_mpp.setValue(model_mpp)
    task = page.run_prediction()
    assert task is not None
    wait_for_tasks(qtbot, window)
    assert page.prediction is not None
    return page.prediction


def screen_colour(page, x: float, y: float) -> tuple[int, int, int]:
    """The colour the viewer shows at level-0 ``(x, y)``."""
    view = page.view
    image = view.viewport().grab().toImage()
    c = image.pixelColor(view.mapFromScene(QPointF(x, y)))
    return c.red(), c.green(), c.blue()


def test_opening_shows_the_properties_and_the_thumbnail_at_once(page):
    values = {k: v.text() for k, v in page.info_box.values.items()}
    assert values["file"] == "slide.tiff" and values["vendor"] == "generic-tiff"
    assert values["size"] == "2,048 × 2,048 px"
    assert values["levels"].count("<br>") == 2 and "512 × 512 (÷4)" in values["levels"]
    assert values["mpp"].startswith("0.500 µm/px") and values["objective"] == "not recorded"
    assert "tile = 32 × 32 slide px" in page.form.tile_hint.text()  # no model mpp given: 1 px per model px
    assert page.view.thumb_item is not None and not page.view.thumb_item.pixmap().isNull()
    tissue = screen_colour(page, *BENIGN_POINT)
    glass = screen_colour(page, 100, 100)
    assert glass[0] > 220 and glass[2] > 220 and tissue[0] < 170  # the slide is drawn, not a blank view
    assert page.form.run_button.isEnabled() and not page.form.robust_button.isEnabled()


def test_a_slide_without_mpp_says_so(qtbot, window, slide, tmp_path):
    from PIL import Image

    rgb = np.full((300, 400, 3), 235, np.uint8)
    Image.fromarray(rgb).save(tmp_path / "plain.png")
    page = open_page(qtbot, window, tmp_path / "plain.png", slide[1])
    assert (
        "not recorded" in page.info_box.values["mpp"].text() and page.info_box.values["size"].text() == "400 × 300 px"
    )
    assert "records no resolution" in page.form.tile_hint.text()


def test_zooming_in_reads_a_finer_level_about_the_cursor(qtbot, window, slide, monkeypatch):
    from desktop_app.pages.slides import SlidesPage

    monkeypatch.setattr(SlidesPage, "THUMB_SIDE", 128)  # a coarse thumbnail: the fitted view needs tiles too
    page = open_page(qtbot, window, *slide)
    view, reader = page.view, page.view.reader
    qtbot.waitUntil(lambda: bool(reader.levels_requested), timeout=10_000)
    fitted = view.level
    assert fitted >= 1 and set(reader.levels_requested) == {fitted}
    qtbot.waitUntil(lambda: any(k.level == fitted for k in view.items), timeout=10_000)
    point = QPointF(view.viewport().width() * 0.3, view.viewport().height() * 0.6)
    before = view.mapToScene(point.toPoint())
    for _ in range(8):  # mouse wheel, one notch at a time, at the same place
        wheel = QWheelEvent(point, view.mapToGlobal(point), QPoint(), QPoint(0, 120), Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)  # fmt: skip
        view.wheelEvent(wheel)
    after = view.mapToScene(point.toPoint())
    assert view.scale_factor() > 1.0  # past 1:1
    assert abs(after.x() - before.x()) < 4 and abs(after.y() - before.y()) < 4  # zoomed about the cursor
    qtbot.waitUntil(lambda: reader.levels_requested[-1] == 0, timeout=5_000)  # a lower level index: more detail
    assert view.level == 0 and all(k.level == 0 for k in reader.last_request)
    qtbot.waitUntil(lambda: any(k.level == 0 for k in view.items), timeout=10_000)
    view.fit()
    qtbot.waitUntil(lambda: view.level == fitted, timeout=5_000)
    view.one_to_one()
    assert view.scale_factor() == pytest.approx(1.0)


def test_prediction_fills_the_overlay_red_over_tumour_and_blue_over_benign(qtbot, window, page):
    pred = predict(qtbot, window, page)
    assert len(pred.tiles) == 384 and pred.tile_size == 64
    assert "384" in page.summary.text.text() and "64" in page.summary.text.text()
    assert page.overlay_combo.currentData() == "probability" and page.view.overlay_item is not None
    assert page.colour_bar.labels == ("0 benign", "0.5", "1 malignant")
    page.opacity.setValue(100)
    tumour, benign = screen_colour(page, *TUMOUR_CENTRE), screen_colour(page, *BENIGN_POINT)
    assert tumour[0] > 180 and tumour[2] < 90, tumour  # reddish
    assert benign[2] > tumour[2] + 60 and benign[0] > benign[2], benign  # towards the blue end (p ≈ 0.47: yellowish)
    for (x, y), seen in ((TUMOUR_CENTRE, tumour), (BENIGN_POINT, benign)):  # the colour of that very tile's p
        p = pred.heatmap()[int(y // 64), int(x // 64)]
        assert np.abs(colourise(np.array([[p]]))[0, 0, :3].astype(int) - seen).max() <= 3, (p, seen)
    glass = screen_colour(page, 100, 100)
    assert min(glass) > 220  # no tissue tile, no colour: the overlay is transparent there
    top = page.summary.top
    assert top.count() == 10 and "p 0.9" in top.item(0).text()


def test_opacity_slider_and_overlay_choice(qtbot, window, page):
    predict(qtbot, window, page)
    page.opacity.setValue(20)
    assert page.view.overlay_item.opacity() == pytest.approx(0.2)
    faint = screen_colour(page, *TUMOUR_CENTRE)
    page.opacity.setValue(90)
    strong = screen_colour(page, *TUMOUR_CENTRE)
    assert strong[2] < faint[2] - 60  # more of the overlay's red, less of the magenta tissue's blue
    page.overlay_combo.setCurrentIndex(page.overlay_combo.findData("none"))
    assert page.view.overlay_item is None and page.colour_bar.isHidden()
    robust = page.overlay_combo.model().item(page.overlay_combo.findData("robustness"))
    assert not robust.isEnabled()  # no robustness map yet


def test_cancel_leaves_the_page_usable(qtbot, window, page):
    page.run_prediction()
    assert page.progress.cancel_button.isEnabled() and not page.form.run_button.isEnabled()
    page.progress.cancel_button.click()
    wait_for_tasks(qtbot, window)
    assert page.prediction is None and "cancelled" in page.summary.text.text()
    assert page.view.overlay_item is None and window.ctx.errors.history == []
    assert page.form.run_button.isEnabled() and page.open_button.isEnabled()
    assert len(predict(qtbot, window, page).tiles) == 384  # and it runs again


def test_clicking_a_tile_shows_its_probability(qtbot, window, page):
    pred = predict(qtbot, window, page)
    page.tiles.attacks_available = False  # the tiny model has no torch checkpoint (attacks: tests below)
    view = page.view
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(QPointF(*TUMOUR_CENTRE)))
    i = page.tiles.selected
    tile = pred.tiles[i]
    assert tile.x <= TUMOUR_CENTRE[0] < tile.x + 64 and tile.y <= TUMOUR_CENTRE[1] < tile.y + 64
    assert f"p(malignant) = {pred.probabilities[i]:.3f}" in page.tile_panel.verdict.text()
    assert page.tile_panel.verdict.text().startswith("malignant")
    assert view.selection_item.isVisible() and view.selection_item.rect().topLeft() == QPointF(tile.x, tile.y)
    qtbot.waitUntil(page.tile_panel.triptych.original.has_image, timeout=10_000)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(QPointF(*BENIGN_POINT)))
    assert page.tile_panel.verdict.text().startswith("benign")
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(QPointF(100, 100)))
    assert page.tiles.selected is None and not view.selection_item.isVisible()
    assert "No tissue tile" in page.tile_panel.where.text()
    top = page.summary.top
    top.itemClicked.emit(top.item(0))  # the most suspicious tile: selected and centred
    best = int(np.argmax(pred.probabilities))
    assert page.tiles.selected == best
    centre = view.mapToScene(view.viewport().rect().center())
    assert abs(centre.x() - (pred.tiles[best].x + 32)) < 40 and abs(centre.y() - (pred.tiles[best].y + 32)) < 40


def test_export_writes_heatmap_csv_and_geojson(qtbot, window, page, tmp_path):
    predict(qtbot, window, page)
    page.export_to(tmp_path / "out")
    wait_for_tasks(qtbot, window)
    names = {"heatmap.png", "tiles.csv", "tiles.geojson", "slide.json"}
    assert {p.name for p in (tmp_path / "out").iterdir()} == names
    assert all(name in page.export_message.text() for name in names)
    assert len(json.loads((tmp_path / "out" / "tiles.geojson").read_text())["features"]) == 384


def test_bad_inputs_go_to_the_error_dialog(qtbot, window, page, tmp_path):
    errors = window.ctx.errors.history
    bad = tmp_path / "scan.svs"
    bad.write_bytes(b"truncated")
    page.open_slide(bad)
    wait_for_tasks(qtbot, window)
    assert errors[-1][0] == "Open slide" and "scan.svs" in errors[-1][1]
    assert page.info_box.values["file"].text() == "slide.tiff"  # the open slide stays
    write_pyramid(tmp_path / "small.tiff", np.full((24, 24, 3), (200, 80, 190), np.uint8), levels=1)
    page.open_slide(tmp_path / "small.tiff")
    wait_for_tasks(qtbot, window)
    page.run_prediction()
    wait_for_tasks(qtbot, window)
    assert errors[-1][0] == "Predict slide" and "smaller than one tile" in errors[-1][1]
    assert page.form.run_button.isEnabled()
    model = tiny_onnx_model()
    del model.metadata_props[:]
    (tmp_path / "bare.onnx").write_bytes(model.SerializeToString())
    count = len(errors)
    window.ctx.state.set_onnx(tmp_path / "bare.onnx")
    wait_for_tasks(qtbot, window)
    assert len(errors) == count + 1 and "no HistoGuard metadata" in errors[-1][1]  # one dialog, not one per page
    assert "cannot be used" in page.model_box.status.text() and not page.form.run_button.isEnabled()


class GapMeter:
    """The longest time between ticks of a 20 ms timer: how long the event loop was blocked."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self.tick)
        self.last, self.worst = None, 0.0

    def tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.worst = max(self.worst, now - self.last)
        self.last = now

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.stop()


def test_the_event_loop_stays_free_while_a_prediction_runs(qtbot, window, page):
    with GapMeter() as control:  # the meter sees a blocked loop
        QTimer.singleShot(50, lambda: time.sleep(0.3))
        qtbot.wait(500)
    assert control.worst >= 0.3
    page.form.model_mpp.setValue(0.0)  # 32-px tiles: 1,536 tissue tiles
    view, steps = page.view, []

    def interact() -> None:  # the user pans and zooms meanwhile; the viewer reads tiles for it
        view.zoom_by(1.4 if len(steps) % 8 < 4 else 1 / 1.4)
        view.horizontalScrollBar().setValue(view.horizontalScrollBar().value() + 15)
        steps.append(view.level)

    poke = QTimer()
    poke.timeout.connect(interact)
    with GapMeter() as meter:
        task = page.run_prediction()
        poke.start(60)
        wait_for_tasks(qtbot, window)
        poke.stop()
    assert task is not None and page.prediction is not None and len(page.prediction.tiles) == 1536
    assert len(steps) >= 3 and view.reader.reads > 0  # the view was used during the run
    assert meter.worst < 1.0, f"the event loop stalled for {meter.worst:.3f} s"


# --- robustness map and tile attack (PyTorch: a small_cnn and its exported ONNX file) ----------------------
@pytest.fixture
def robust_page(qtbot, window, case):
    page = open_page(qtbot, window, case["slide"], case["onnx"])
    assert len(predict(qtbot, window, page).tiles) == 96
    return page


def test_robustness_map_is_drawn_and_summarised(qtbot, window, robust_page):
    page = robust_page
    page.form.limit.setValue(0)  # all tiles
    assert page.form.robustness_attack() == (AttackConfig("fgsm", 16 / 255, steps=10), None)
    assert page.run_robustness() is not None
    wait_for_tasks(qtbot, window)
    pred = page.prediction
    k = pred.flip_eps * 255
    assert k.shape == (96,) and not np.isnan(k).any() and 0 < np.isfinite(k).sum() < 96
    assert page.overlay_combo.currentData() == "robustness" and page.colour_bar.labels[2].startswith("fragile")
    assert "median flip eps" in page.summary.robust.text()
    top = int(np.argmax(pred.probabilities))
    phrase = f"flips at {round(k[top])}/255" if np.isfinite(k[top]) else "not flipped"
    assert phrase in page.summary.top.item(0).text()
    page.opacity.setValue(100)
    fragile, robust = pred.tiles[int(np.argmin(k))], pred.tiles[int(np.argmax(k))]
    red, _, blue = screen_colour(page, fragile.x + 32, fragile.y + 32)
    assert red > blue + 60, (red, blue)  # flips at the smallest eps: red
    red, _, blue = screen_colour(page, robust.x + 32, robust.y + 32)
    assert blue > red + 60, (red, blue)  # not flipped at 16/255: blue
    page.overlay_combo.setCurrentIndex(page.overlay_combo.findData("probability"))
    assert page.colour_bar.labels[0] == "0 benign"


def test_clicking_a_tile_attacks_it_as_the_map_says(qtbot, window, robust_page):
    """The most fragile tile of the robustness map (FGSM flips it at k/255): attacked at k its call flips,
    at k - 1 it does not; the clean call and probability are the prediction's (torch sees the ONNX tile)."""
    page, view = robust_page, robust_page.view
    page.form.limit.setValue(0)
    page.run_robustness()
    wait_for_tasks(qtbot, window)
    pred = page.prediction
    k = np.round(pred.flip_eps * 255)
    i = int(np.argmin(np.where(np.isfinite(k), k, np.inf)))
    tile, k = pred.tiles[i], int(k[i])
    assert 1 < k <= 16
    page.tile_panel.eps_k.setValue(k)
    qtbot.mouseClick(
        view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(QPointF(tile.x + 32, tile.y + 32))
    )
    assert page.tiles.selected == i
    wait_for_tasks(qtbot, window)
    triptych = page.tile_panel.triptych
    assert triptych.has_images() and window.ctx.errors.history == []
    r = triptych.result
    assert r["eps"] == pytest.approx(k / 255) and r["linf"] <= k / 255 + 1e-6
    assert r["pred_clean"] == pred.predicted(pred.probabilities[i])
    positive = r["classes"].index(pred.positive)
    assert r["probs_clean"][positive] == pytest.approx(float(pred.probabilities[i]), abs=1e-3)
    assert "the call flips" in page.tile_panel.status.text() and "flipped" in triptych.verdict.text()
    page.tile_panel.eps_k.setValue(k - 1)
    page.tile_panel.attack_button.click()
    wait_for_tasks(qtbot, window)
    assert triptych.result["eps"] == pytest.approx((k - 1) / 255)
    assert "does not flip" in page.tile_panel.status.text() and "unchanged" in triptych.verdict.text()


def test_diagnose_edition_switches_off_the_attacks(qtbot, settings, slide, monkeypatch):
    monkeypatch.setenv("HISTOGUARD_EDITION", "diagnose")
    from desktop_app.app import build_window, get_app
    from tests.desktop_app.conftest import _end_tasks

    get_app()
    win = build_window(settings)
    qtbot.addWidget(win, before_close_func=_end_tasks)
    win.show()
    page = open_page(qtbot, win, *slide)
    banners = [b.text() for b in page.findChildren(QLabel, "editionBanner")]
    assert len(banners) == 1 and "robustness map" in banners[0] and "full edition" in banners[0]
    predict(qtbot, win, page)  # prediction works without PyTorch
    assert not page.form.robust_button.isEnabled() and "needs PyTorch" in page.form.hint.text()
    view = page.view
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(QPointF(*TUMOUR_CENTRE)))
    assert page.tiles.selected is not None and not page.tile_panel.attack_button.isEnabled()
    wait_for_tasks(qtbot, win)
    assert win.ctx.errors.history == []  # no attack was tried
