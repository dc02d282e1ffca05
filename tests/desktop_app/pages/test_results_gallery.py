"""The Results page's gallery tab: the report's test images and their maps, read from the run folder."""

from __future__ import annotations

import json
from html import escape

from desktop_app.widgets.gallery_view import NONE


def test_the_gallery_tab_shows_every_picture_of_the_report(qtbot, window, tiny_run):
    assert window.controller.open_run(tiny_run) is not None
    window.show_page("Results")
    page = window.page("ResultsPage")
    gallery = json.loads((tiny_run / "report.json").read_text())["gallery"]
    files = [f for m in gallery["models"].values() for it in m["items"] for f in it["files"].values()]
    assert files and page.gallery.shown_pictures() == len(files)
    text = " ".join(label.text() for label in page.gallery.findChildren(type(page.run_label)))
    assert "maps passed the randomisation check" in text and "Model A" in text
    page.gallery.set_gallery(None, None)
    assert page.gallery.shown_pictures() == 0
    assert any(escape(NONE) in label.text() for label in page.gallery.findChildren(type(page.run_label)))
    page.gallery.set_gallery(gallery, tiny_run)  # the "no gallery" line goes at once (it was drawn over the intro)
    labels = page.gallery.findChildren(type(page.run_label))
    assert not any(escape(NONE) in label.text() for label in labels) and page.gallery.shown_pictures() == len(files)
