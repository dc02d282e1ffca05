"""The report's gallery: per model test images called right, called wrong and flipped by the white-box attack, each
the real test image beside its attribution map (at the image's size), the adversarial image within eps of its
original; report.md links them, report.html embeds them, the torch-free export finds them in the run folder, and
``--no-gallery`` leaves them out."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.data.decode import decode_image
from engine.report.export import export_report
from engine.workflows.gallery import CATEGORIES, PER_CATEGORY

RUN = ["--arch", "small_cnn", "--image-size", "32", "--epochs", "2", "--batch-size", "16", "--weights", "none",
       "--device", "cpu", "--defence", "none", "--min-eps-max", "0", "--blackbox-images", "0", "--bootstrap", "20",
       "--eps", "16/255"]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("gallery")
    assert main(["demo-data", str(root / "data"), "--patients-per-class", "5", "--images-per-patient", "8"]) == 0
    assert main(["experiment", "--data", str(root / "data"), "--out", str(root / "run"), *RUN]) == 0
    return root


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_each_model_shows_right_wrong_and_flipped_images_with_maps_of_their_size(run):
    report = json.loads((run / "run" / "report.json").read_text())
    gallery = report["gallery"]
    assert gallery["attack"]["method"] == "pgd" and gallery["attack"]["eps"] == pytest.approx(16 / 255)
    assert set(gallery["models"]) == {"A", "B"} and report["timings_s"]["gallery"] > 0
    sources = {p.name: p for p in (run / "data").rglob("*.png")}
    for name, m in gallery["models"].items():
        assert m["method"] == "gradcam"
        items = m["items"]
        assert {it["category"] for it in items} == set(CATEGORIES), name
        assert all(sum(it["category"] == c for it in items) <= PER_CATEGORY for c in CATEGORIES)
        maps = np.load(run / "run" / m["maps"])
        for it in items:
            stem = it["files"]["image"].rsplit("/", 1)[-1].removesuffix(".png")
            shown = png(run / "run" / it["files"]["image"])
            scale = shown.shape[0] // 32
            assert np.array_equal(shown[::scale, ::scale], decode_image(sources[it["name"]], 32))  # the real image
            assert maps[stem].shape == (32, 32) == tuple(it["map_size"]) and np.isfinite(maps[stem]).all()
            assert png(run / "run" / it["files"]["map"]).shape == shown.shape
            assert (it["predicted"] == it["label"]) == (it["category"] != "wrong")
            assert it["sanity"] is not None and isinstance(it["sanity"]["passed"], bool)
            if it["category"] == "flipped":
                adv = png(run / "run" / it["files"]["adversarial"]).astype(int)
                change = np.abs(adv - shown.astype(int)).max()
                assert 0 < change <= 16 and it["predicted_adversarial"] != it["label"]
                assert maps[stem + "_adv"].shape == (32, 32)
        assert any(np.ptp(maps[k]) > 0 for k in maps.files)  # not a blank map everywhere
        checks = [c for it in items for c in (it["sanity"], it.get("sanity_adversarial")) if c]
        assert m["sanity"]["of"] == len(checks) and m["sanity"]["passed"] == sum(c["passed"] for c in checks)


def test_the_report_shows_the_gallery_and_the_randomisation_check(run, tmp_path):
    folder = run / "run"
    report = json.loads((folder / "report.json").read_text())
    files = [f for m in report["gallery"]["models"].values() for it in m["items"] for f in it["files"].values()]
    md = (folder / "report.md").read_text()
    assert "## Explanations: a gallery of test images" in md and all(f"]({f})" in md for f in files)
    assert "maps passed the randomisation check" in md
    html = (folder / "report.html").read_text()
    assert "Explanations: a gallery of test images" in html and "maps passed the randomisation check" in html
    embedded = html.count('src="data:image/png;base64,')
    exported = export_report(report, tmp_path / "out", run_dir=folder)  # torch-free: read from the run folder
    assert exported["html"].read_text().count('src="data:image/png;base64,') == embedded
    assert embedded >= len(files) + 1  # the gallery's pictures and the figures
    without = export_report(report, tmp_path / "bare")  # no run folder: the gallery's text, no pictures
    assert "Explanations: a gallery" in without["html"].read_text()


def test_no_gallery_leaves_it_out(run):
    out = run / "bare"
    assert main(["experiment", "--data", str(run / "data"), "--out", str(out), *RUN, "--epochs", "1",
                 "--no-gallery"]) == 0  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["gallery"] is False and "gallery" not in report and not (out / "gallery").exists()
    assert "Explanations: a gallery" not in (out / "report.md").read_text()
