"""Damaged slide files end in one SlideError naming the file and what to do, wherever they fail: at open, or
later when a tile is decoded (read_region, the thumbnail, so the tissue mask), for every caller of the slide.

Regression: a corrupt Aperio .svs opened fine and then ended `histoguard slide` with "unexpected error:
OpenSlideError: Bogus marker length", raised while reading regions."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tifffile

from engine.cli import main as cli_main
from engine.core.errors import SlideError
from engine.deploy.tiny import write_tiny_model
from engine.slides import reader, tissue_mask
from engine.slides.grid import Tile
from engine.slides.predict import predict_slide, read_tile_rgb
from engine.slides.reader import open_slide
from tests.engine.slides import slide_files as sf

BOGUS = r"is damaged or truncated \(OpenSlide: Bogus marker length\); re-export or re-scan it"


@pytest.fixture(scope="module")
def image():
    return sf.tissue_image(256, 256)


@pytest.fixture
def damaged(tmp_path, image):
    """An SVS whose level-0 JPEG tiles are broken: it opens, and fails when a level-0 tile is decoded."""
    return sf.damage_jpeg_tiles(sf.write_svs(tmp_path / "scan.svs", image, levels=3, tile=64), page=0)


def test_a_damaged_svs_opens_and_every_read_of_it_is_a_slide_error(damaged):
    with open_slide(damaged) as slide:
        assert slide.properties["openslide.vendor"] == "aperio"  # the header is fine
        with pytest.raises(SlideError, match="scan.svs " + BOGUS):
            slide.read_region((0, 0), 0, (32, 32))
        with pytest.raises(SlideError, match=BOGUS):  # OpenSlide keeps the error: the thumbnail fails too
            slide.get_thumbnail((64, 64))
        with pytest.raises(SlideError, match=BOGUS):
            tissue_mask(slide, max_side=64)
        with pytest.raises(SlideError, match=BOGUS):  # what the robustness map, the tile attack, the viewer read
            read_tile_rgb(slide, Tile(0, 0, 0, 0, 64, 1.0), 0, 32)


def test_the_thumbnail_of_a_damaged_level_fails_alone(tmp_path, image):
    path = sf.damage_jpeg_tiles(sf.write_svs(tmp_path / "thumb.svs", image, levels=3, tile=64), page=2)
    with open_slide(path) as slide:
        with pytest.raises(SlideError, match="thumb.svs " + BOGUS):
            tissue_mask(slide, max_side=64)  # the mask's thumbnail comes from the smallest level


def test_predicting_a_damaged_svs_names_the_file_in_one_line(damaged, tmp_path, capsys):
    model = write_tiny_model(tmp_path / "tiny.onnx", image_size=32)
    with pytest.raises(SlideError, match=BOGUS):
        predict_slide(damaged, model, model_mpp=1.0, device="cpu")
    args = ["slide", str(damaged), "--model", str(model), "--out", str(tmp_path / "o"), "--model-mpp", "1"]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected error" not in err
    assert err.startswith(f"histoguard: error: {damaged} is damaged or truncated (OpenSlide: Bogus marker length)")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_a_truncated_svs_fails_at_open_or_read_naming_the_file(tmp_path, image, keep):
    data = sf.write_svs(tmp_path / "whole.svs", image, levels=2, tile=64).read_bytes()
    path = tmp_path / "cut.svs"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(SlideError, match=r"cut.svs (is damaged or truncated|: not a slide format)"):
        with open_slide(path) as slide:
            slide.read_region((0, 0), 0, (256, 256))
            tissue_mask(slide, max_side=64)


def test_a_tile_size_no_scanner_writes_is_refused_before_openslide_allocates_it(tmp_path, image):
    """OpenSlide allocates a whole tile from the header and aborts the process when that fails (the fuzz test
    found a damaged TileWidth asking for 400 GB): tifffile checks the structure first."""
    path = sf.write_tiff(tmp_path / "wide.tif", image, levels=1, tile=64)
    with tifffile.TiffFile(path, mode="r+b") as tf:
        tf.pages[0].tags["TileWidth"].overwrite(65_536 * 64)
        tf.pages[0].tags["TileLength"].overwrite(65_536)
    with pytest.raises(SlideError, match=r"wide.tif is damaged or truncated \(its header gives tiles of 4,194,304 x"):
        open_slide(path)


def test_a_dicom_frame_size_no_scanner_writes_is_refused(tmp_path, image):
    import pydicom

    folder = sf.write_dicom(tmp_path / "dicom", image, levels=1)
    ds = pydicom.dcmread(folder / "level0.dcm")
    ds.Rows = ds.Columns = 30_000
    ds.save_as(folder / "level0.dcm")
    with pytest.raises(SlideError, match=r"level0.dcm is damaged or truncated \(its header gives frames of 30,000"):
        open_slide(folder)


def test_reads_too_large_for_memory_are_refused_up_front(tmp_path, image, monkeypatch):
    path = sf.write_tiff(tmp_path / "flat.tif", image, levels=1)  # no pyramid: the thumbnail reads level 0
    monkeypatch.setattr(reader, "MAX_READ_PIXELS", 100 * 100)
    with open_slide(path) as slide:
        with pytest.raises(SlideError, match=r"flat.tif: one overview read would be 256 x 256 px, too large"):
            slide.get_thumbnail((64, 64))
        with pytest.raises(SlideError, match=r"one region read would be 101 x 100 px"):
            slide.read_region((0, 0), 0, (101, 100))
        assert slide.read_region((0, 0), 0, (100, 100)).size == (100, 100)  # control: at the limit it reads


def test_a_large_plain_picture_is_announced_at_open(tmp_path, image, monkeypatch, caplog):
    path = sf.write_plain(tmp_path / "huge.png", image)
    monkeypatch.setattr(reader, "PLAIN_IMAGE_WARN", 1000)
    with caplog.at_level(logging.WARNING, logger="engine.slides.reader"):
        open_slide(path).close()
    assert "huge.png is a plain 256 x 256 picture: it is decoded whole" in caplog.text
    caplog.clear()
    sf.write_svs(tmp_path / "tiled.svs", image)  # control: a pyramid is never decoded whole
    with caplog.at_level(logging.WARNING, logger="engine.slides.reader"):
        open_slide(tmp_path / "tiled.svs").close()
    assert caplog.text == ""


def test_odd_pixel_formats_of_plain_pictures_are_read_as_rgb(tmp_path, image):
    from PIL import Image

    for mode, name in (("P", "palette.png"), ("I;16", "grey16.png"), ("CMYK", "cmyk.jpg"), ("LA", "la.png")):
        Image.fromarray(image).convert(mode).save(tmp_path / name)
        with open_slide(tmp_path / name) as slide:
            rgb = np.asarray(slide.read_region((0, 0), 0, (32, 32)).convert("RGB"))
            assert rgb.shape == (32, 32, 3)
            mask, _ = tissue_mask(slide, max_side=64)
            assert mask.shape == (64, 64)


@pytest.mark.timeout(60)  # before the fix this test hung
def test_a_circular_ifd_chain_does_not_hang(tmp_path, image):
    """The fuzz test found it: the last IFD's next-IFD offset pointing back at itself made tifffile's page iterator
    (the structure check before OpenSlide) loop for ever; the chain is read once."""
    import struct
    import time

    path = sf.write_tiff(tmp_path / "loop.tif", image, levels=2, tile=64)
    with tifffile.TiffFile(path) as tf:
        last = tf.pages[1]
        at, count = last.offset, len(last.tags)
    with open(path, "r+b") as fh:
        fh.seek(at + 2 + 12 * count)  # a classic TIFF IFD: count, 12-byte entries, then the next IFD's offset
        fh.write(struct.pack("<I", at))
    started = time.perf_counter()
    with open_slide(path) as slide:
        assert slide.level_count >= 1 and tissue_mask(slide, max_side=64)[0].shape == (64, 64)
    assert time.perf_counter() - started < 5
