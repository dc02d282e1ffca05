"""The formats labs send, written by the tests with their real structure (tests/engine/slides/slide_files.py) and
read by OpenSlide: vendor, pyramid levels, microns per pixel and objective come from each file's own metadata
(Aperio's ImageDescription, NDPI's private tags, DICOM's PixelSpacing and ObjectiveLensPower, TIFF resolution
tags), the pixels are the ones written, and each predicts with the tiny ONNX model at its own scale."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.core.errors import SlideError
from engine.deploy.tiny import write_tiny_model
from engine.slides import open_slide, slide_info, tissue_mask
from tests.engine.slides import slide_files as sf

H, W = 256, 512  # tissue: the middle half of each side, aligned to tiles of 16, 32 and 64 px
PINK = np.array((205, 120, 185))


@pytest.fixture(scope="module")
def image():
    return sf.tissue_image(H, W)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("formats")


def info_of(path):
    with open_slide(path) as slide:
        info = slide_info(slide, path)
        centre = np.asarray(slide.read_region((W // 2 - 8, H // 2 - 8), 0, (16, 16)).convert("RGB"), dtype=float)
        mask, downsample = tissue_mask(slide, max_side=64)
    return info, centre.reshape(-1, 3).mean(0), mask, downsample


def check_pixels(centre, mask, downsample, tolerance):
    assert np.abs(centre - PINK).max() < tolerance  # the tissue that was written, at level 0
    assert mask.mean() == pytest.approx(0.25, abs=0.05)  # the middle half of each side is tissue
    assert downsample == pytest.approx(W / mask.shape[1])


def test_aperio_svs_is_read_as_aperio_with_its_mpp_and_objective(folder, image):
    path = sf.write_svs(folder / "scan.svs", image, levels=3, mpp=0.499, app_mag=20, tile=128)
    info, centre, mask, ds = info_of(path)
    assert info.vendor == "aperio"
    assert info.level_dimensions == ((512, 256), (256, 128), (128, 64)) and info.level_downsamples == (1.0, 2.0, 4.0)
    assert info.mpp == pytest.approx((0.499, 0.499)) and info.objective_power == 20
    assert info.properties["aperio.AppMag"] == "20" and info.properties["tiff.ImageDescription"].startswith("Aperio")
    check_pixels(centre, mask, ds, tolerance=12)  # JPEG tiles


def test_hamamatsu_ndpi_is_read_with_its_mpp_and_source_lens(folder, image):
    path = sf.write_ndpi(folder / "scan.ndpi", image, levels=2, mpp=0.46, lens=40.0)
    info, centre, mask, ds = info_of(path)
    assert info.vendor == "hamamatsu"
    assert info.level_dimensions[:2] == ((512, 256), (256, 128))  # OpenSlide adds JPEG-scaled levels below
    assert info.mpp == pytest.approx((0.46, 0.46)) and info.objective_power == 40
    check_pixels(centre, mask, ds, tolerance=20)  # one JPEG per level, chroma subsampled


@pytest.mark.parametrize("open_by", ["folder", "level1.dcm"])
def test_a_dicom_wsi_folder_is_one_slide_with_its_levels(folder, image, open_by):
    """Two VL Whole Slide Microscopy instances of one series: OpenSlide finds the other beside the one opened;
    ``open_slide`` also takes the folder."""
    dicom = sf.write_dicom(folder / f"dicom-{open_by}", image, levels=2, mpp=0.25, objective=40, tile=64)
    info, centre, mask, ds = info_of(dicom if open_by == "folder" else dicom / open_by)
    assert info.vendor == "dicom"
    assert info.level_dimensions == ((512, 256), (256, 128)) and info.level_downsamples == (1.0, 2.0)
    assert info.mpp == pytest.approx((0.25, 0.25)) and info.objective_power == 40
    check_pixels(centre, mask, ds, tolerance=1)  # uncompressed frames: the very pixels


def test_a_folder_without_dicom_files_is_refused(folder):
    (folder / "empty").mkdir()
    with pytest.raises(SlideError, match="empty: a folder with no .dcm files"):
        open_slide(folder / "empty")


@pytest.mark.parametrize(("resolution", "unit", "mpp"), [(2e4, "CENTIMETER", 0.5), (25400 / 0.25, "INCH", 0.25)])
def test_a_generic_tiled_tiff_reads_its_resolution_tags(folder, image, resolution, unit, mpp):
    path = sf.write_tiff(folder / f"scan-{unit}.tif", image, levels=3, resolution=resolution, unit=unit)
    info, centre, mask, ds = info_of(path)
    assert info.vendor == "generic-tiff" and info.level_count == 3 and info.objective_power is None
    assert info.mpp == pytest.approx((mpp, mpp))
    check_pixels(centre, mask, ds, tolerance=1)  # zlib: lossless


@pytest.mark.parametrize("name", ["crop.png", "crop.jpg", "untiled.tif"])
def test_plain_pictures_are_one_level_slides_without_a_scale(folder, image, name):
    info, centre, mask, ds = info_of(sf.write_plain(folder / name, image))
    assert info.vendor == "image" and info.plain and info.level_dimensions == ((W, H),)
    assert info.mpp is None and info.objective_power is None
    check_pixels(centre, mask, ds, tolerance=12)


@pytest.mark.parametrize(
    ("write", "tile"),
    [
        (lambda f, im: sf.write_svs(f / "p.svs", im, mpp=0.5), 32),  # the model's 16 px at 1 µm = 32 px at 0.5
        (lambda f, im: sf.write_ndpi(f / "p.ndpi", im, mpp=0.5), 32),
        (lambda f, im: sf.write_dicom(f / "p-dicom", im, mpp=0.25), 64),
        (lambda f, im: sf.write_tiff(f / "p.tif", im, resolution=2e4), 32),
        (lambda f, im: sf.write_plain(f / "p.png", im), 16),  # no scale: one slide pixel per model pixel
    ],
    ids=["svs", "ndpi", "dicom", "tiff", "png"],
)
def test_each_format_predicts_at_its_own_scale(tmp_path, image, write, tile):
    from engine.cli import main as cli_main

    path, model = write(tmp_path, image), write_tiny_model(tmp_path / "tiny.onnx", image_size=16)
    out = tmp_path / "out"
    assert cli_main(["slide", str(path), "--model", str(model), "--out", str(out), "--model-mpp", "1"]) == 0
    record = json.loads((out / "slide.json").read_text())
    assert record["tile_size"] == tile
    tissue_tiles = (H // 2 // tile) * (W // 2 // tile)  # the pink block, tile-aligned (it starts at 1/4 of each side)
    assert record["tissue_tiles"] == tissue_tiles
    source = "file" if tile != 16 else "model"
    assert record["scale"]["slide_mpp_source"] == source and record["scale"]["model_mpp_source"] == "user"
