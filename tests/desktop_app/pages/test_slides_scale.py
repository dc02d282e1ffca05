"""Slides page and a slide whose scale is wrong: the form's hint refuses it before anything runs, with what the
file records and the page's own field to fix it (not a command-line flag); the slide resolution field fixes it,
the summary says where each scale came from; a damaged slide goes to the error dialog in one line."""

from __future__ import annotations

from tests.desktop_app.conftest import wait_for_tasks
from tests.desktop_app.pages.test_slides import open_page
from tests.engine.slides import slide_files as sf
from tests.engine.slides.test_slide_scale import model_with_mpp


def test_a_print_resolution_is_refused_in_the_hint_and_the_slide_resolution_fixes_it(qtbot, window, tmp_path):
    tiff = sf.write_tiff(tmp_path / "print.tif", sf.tissue_image(512, 512), resolution=72, unit="INCH")
    page = open_page(qtbot, window, tiff, model_with_mpp(tmp_path / "m.onnx", 32, 1.0))
    hint = page.form.tile_hint.text()
    assert hint.startswith("Cannot predict: print.tif records 352.8 µm/px (TIFF XResolution 72 per inch)")
    assert "the slide resolution on the Slides page" in hint and "--slide-mpp" not in hint
    page.form.slide_mpp.setValue(0.5)
    assert page.form.tile_hint.text() == (
        "One tile = 64 × 64 slide px, read at level 1 (slide 0.5 µm/px (given; the file records 352.8), "
        "model 1 µm/px (from its metadata))."
    )
    assert page.run_prediction() is not None
    wait_for_tasks(qtbot, window)
    assert page.prediction.tile_size == 64 and len(page.prediction.tiles) == 16
    assert "Scale: slide 0.5 µm/px (given; the file records 352.8)" in page.summary.text.text()
    assert window.ctx.errors.history == []


def test_a_damaged_slide_reaches_the_error_dialog_in_one_line(qtbot, window, tmp_path):
    svs = sf.damage_jpeg_tiles(sf.write_svs(tmp_path / "scan.svs", sf.tissue_image(256, 256), tile=64), page=0)
    window.show_page("Slides")
    page = window.page("SlidesPage")
    page.open_slide(svs)  # the overview of a 256-px slide is read from level 0, whose tiles are broken
    wait_for_tasks(qtbot, window)
    title, message = window.ctx.errors.history[-1][:2]
    assert title == "Open slide" and "\n" not in message
    assert message == f"{svs} is damaged or truncated (OpenSlide: Bogus marker length); re-export or re-scan it"
    assert page.open_button.isEnabled()
