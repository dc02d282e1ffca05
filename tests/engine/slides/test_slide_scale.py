"""A slide's scale is trusted only when it can be right, and refused before any tile is read otherwise, with what
the file records and how to override it; slide.json records where each scale came from.

Regression: a generic TIFF whose resolution tags are a print resolution (72 dpi: OpenSlide reports 352.8 µm/px
from tiff.XResolution / ResolutionUnit) made `histoguard slide` cut one-pixel tiles, enlarge each to the model's
input and run tens of thousands of them for minutes, with no warning."""

from __future__ import annotations

import json
import logging

import pytest

from engine.cli import main as cli_main
from engine.core.errors import ConfigError, SlideError
from engine.deploy.tiny import write_tiny_model
from engine.slides import scale as scale_module
from engine.slides.predict import predict_slide
from engine.slides.reader import Slide, open_slide, slide_info
from engine.slides.scale import Scale, resolve_scale
from tests.engine.slides import slide_files as sf

SIDE = 512


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale")
    image = sf.tissue_image(SIDE, SIDE)
    return {
        "print": sf.write_tiff(folder / "print.tif", image, resolution=72, unit="INCH"),  # 352.8 µm/px
        "scan": sf.write_tiff(folder / "scan.tif", image, resolution=2e4),  # 0.5 µm/px
        "plain": sf.write_plain(folder / "plain.png", image),  # no scale at all
        "model": write_tiny_model(folder / "tiny.onnx", image_size=32),  # records no µm/px
        "model_1um": model_with_mpp(folder / "tiny-1um.onnx", 32, 1.0),
        "model_128": write_tiny_model(folder / "tiny-128.onnx", image_size=128),
    }


def model_with_mpp(path, size: int, mpp: float):
    """The tiny self-test model with ``mpp`` in its metadata, sealed and recorded like an export."""
    from onnx import helper

    from engine.core.fileio import write_bytes
    from engine.deploy.integrity import record_model, seal
    from engine.deploy.tiny import tiny_onnx_model

    model = tiny_onnx_model(size)
    helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, "mpp": json.dumps(mpp)})
    write_bytes(path, seal(model))
    record_model(path)
    return path


@pytest.fixture
def reads(monkeypatch):
    """Every region and thumbnail read through the slide wrapper (the tissue mask's thumbnail included)."""
    seen = []
    real_region, real_thumb = Slide.read_region, Slide.get_thumbnail
    monkeypatch.setattr(Slide, "read_region", lambda s, *a: seen.append(("region", a)) or real_region(s, *a))
    monkeypatch.setattr(Slide, "get_thumbnail", lambda s, *a: seen.append(("thumbnail", a)) or real_thumb(s, *a))
    return seen


def test_a_print_resolution_is_refused_before_any_tile_is_read(files, reads):
    with pytest.raises(SlideError) as caught:
        predict_slide(files["print"], files["model_1um"], device="cpu")
    message = str(caught.value)
    assert "print.tif records 352.8 µm/px (TIFF XResolution 72 per inch)" in message
    assert "outside the 0.05-20 µm/px" in message and "--slide-mpp" in message and "\n" not in message
    assert reads == []  # not even the thumbnail for the tissue mask


def test_the_cli_says_so_in_one_line_and_slide_mpp_overrides_it(files, tmp_path, capsys):
    args = ["slide", str(files["print"]), "--model", str(files["model"]), "--out", str(tmp_path / "o")]
    assert cli_main([*args, "--model-mpp", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("histoguard: error: print.tif records 352.8 µm/px")
    assert cli_main([*args, "--model-mpp", "1", "--slide-mpp", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "scale: slide 0.5 µm/px (given; the file records 352.8), model 1 µm/px (given)" in out
    record = json.loads((tmp_path / "o" / "slide.json").read_text())
    assert record["tile_size"] == 64 and record["tissue_tiles"] == 16  # the middle half of 512 px in 64-px tiles
    assert record["scale"] == {
        "slide_mpp": 0.5, "slide_mpp_source": "user", "file_mpp": pytest.approx(352.7778, abs=1e-3),
        "model_mpp": 1.0, "model_mpp_source": "user",
    }  # fmt: skip
    assert record["mpp"] == [pytest.approx(352.7778, abs=1e-3)] * 2  # what the file records, kept as it is


def test_the_model_metadata_and_the_file_are_the_default_sources(files):
    pred = predict_slide(files["scan"], files["model_1um"], device="cpu")
    assert pred.tile_size == 64 and pred.info.scale.record() == {
        "slide_mpp": 0.5, "slide_mpp_source": "file", "file_mpp": 0.5, "model_mpp": 1.0, "model_mpp_source": "metadata",
    }  # fmt: skip
    assert pred.info.scale.describe() == "slide 0.5 µm/px (from the file), model 1 µm/px (from its metadata)"
    assert predict_slide(files["scan"], files["model_1um"], model_mpp=0.5, device="cpu").tile_size == 32  # user wins


def test_a_model_without_mpp_keeps_working_one_pixel_per_pixel_and_says_so(files, caplog):
    with caplog.at_level(logging.WARNING, logger="engine.slides.scale"):
        pred = predict_slide(files["print"], files["model"], device="cpu")  # the file's absurd mpp is not used
    assert pred.tile_size == 32 and len(pred.tiles) == 64
    assert pred.info.scale.record()["model_mpp_source"] == "none"
    assert "the model records no resolution" in caplog.text and "one tile is 32 slide pixels" in caplog.text


def test_a_slide_without_mpp_takes_the_models_scale_but_not_a_whole_glass_slide_of_it(files, tmp_path):
    pred = predict_slide(files["plain"], files["model_1um"], device="cpu")
    assert pred.tile_size == 32 and pred.info.scale.slide_source == "model" and pred.info.scale.slide_mpp == 1.0
    big = model_with_mpp(tmp_path / "coarse.onnx", 32, 200.0)  # 32 px of 200 µm: each tile 6.4 mm a side
    with pytest.raises(SlideError, match=r"plain.png: its tissue would cover 2,621 mm² .* 75 x 25 mm glass slide"):
        predict_slide(files["plain"], big, device="cpu")


@pytest.mark.parametrize(
    ("model_mpp", "slide_mpp", "match"),
    [
        (0.2, 0.5, r"one tile would be only 13 slide pixels \(the model's 32 px at 0.2 µm/px on a slide at 0.5"),
        (0.25, 1.25, r"each tile would be enlarged 4.9x from 26 to 128 px"),  # model_128
    ],
)
def test_tiny_or_blown_up_tiles_are_refused(files, reads, model_mpp, slide_mpp, match):
    model = files["model_128"] if "128" in match else files["model"]
    with pytest.raises(SlideError, match=match) as caught:
        predict_slide(files["scan"], model, model_mpp=model_mpp, slide_mpp=slide_mpp, device="cpu")
    assert "--slide-mpp" in str(caught.value) and "--model-mpp" in str(caught.value) and reads == []


def test_four_times_enlargement_is_still_allowed(files):
    pred = predict_slide(files["scan"], files["model_128"], model_mpp=0.25, slide_mpp=1.0, device="cpu")
    assert pred.tile_size == 32 and pred.level == 0


def test_given_values_are_checked(files):
    with open_slide(files["scan"]) as slide:
        info = slide_info(slide, files["scan"])
    for bad in (0.01, 50.0, float("nan")):
        with pytest.raises(ConfigError, match="--slide-mpp .* must be between 0.05 and 20"):
            resolve_scale(info, None, slide_mpp=bad)
    with pytest.raises(ConfigError, match="--model-mpp -1 must be a positive number"):
        resolve_scale(info, None, model_mpp=-1.0)
    assert resolve_scale(info, 2.0, model_mpp=0.0) == Scale(0.5, "file", 2.0, "metadata", 0.5)  # 0: not given


def test_a_long_run_is_said_up_front_and_an_absurd_grid_refused(files, reads, caplog, monkeypatch):
    monkeypatch.setattr(scale_module, "LONG_TILES", 10)
    with caplog.at_level(logging.WARNING, logger="engine.slides.scale"):
        predict_slide(files["scan"], files["model"], model_mpp=0.5, device="cpu")  # 32-px tiles
    assert "tissue tiles of 32 px to predict: this will take a long time" in caplog.text
    monkeypatch.setattr(scale_module, "MAX_GRID_CELLS", 100)
    reads.clear()
    with pytest.raises(SlideError, match="256 tile positions"):
        predict_slide(files["scan"], files["model"], model_mpp=0.5, device="cpu")
    assert [kind for kind, _ in reads] == ["thumbnail", "region"]  # the tissue mask only: no tile was read
    assert reads[1][1] == ((0, 0), 0, (512, 512))  # the thumbnail's one read: a whole level (1024-px mask)


def test_the_page_and_cli_wording_of_each_source():
    assert Scale(None, "model", None, "none").describe() == (
        "one slide pixel per model pixel: the slide records no resolution, nor does the model"
    )
    assert "the model records no resolution" in Scale(None, "model", None, "none", 0.5).describe()
    assert "the slide records no resolution (model 2 µm/px)" in Scale(2.0, "model", 2.0, "metadata").describe()
