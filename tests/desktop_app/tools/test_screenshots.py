"""``histoguard gui --screenshots``: one non-blank 1280x800 PNG per page, no error on the way."""

from __future__ import annotations

import numpy as np
from PIL import Image

from desktop_app.app import get_app
from desktop_app.tools.screenshots import take_screenshots


def test_screenshots_of_every_page(tmp_path, tiny_run, monkeypatch):
    monkeypatch.setenv("HISTOGUARD_DATA_DIR", str(tmp_path / "data"))
    assert take_screenshots(get_app(), tmp_path / "shots", run=str(tiny_run)) == 0
    names = sorted(p.name for p in (tmp_path / "shots").glob("*.png"))
    assert names == ["1-start.png", "10-results-calibration.png", "12-diagnose-explain.png", "13-stress-maps.png",
                     "14-slides-tile-map.png", "15-results-gallery.png", "2-data.png", "3-train.png",
                     "4-stress-test.png", "5-results.png", "6-diagnose.png", "7-slides.png", "8-cohort.png",
                     "9-results-robustness.png"]  # fmt: skip
    for name in names:
        image = np.asarray(Image.open(tmp_path / "shots" / name).convert("RGB"))
        assert image.shape == (800, 1280, 3), name
        assert image.std() > 20 and len(np.unique(image.reshape(-1, 3), axis=0)) > 200, f"{name} looks blank"


def test_the_screenshot_run_records_the_demo_slide_scale():
    from desktop_app.tools.screenshots import TINY
    from engine.data.demo_slide import demo_input_mpp

    assert abs(TINY.input_mpp - demo_input_mpp(TINY.image_size)) < 1e-3
