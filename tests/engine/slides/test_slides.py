"""Whole-slide reading and tissue detection on a small pyramidal tiled TIFF the test writes (tifffile) and
OpenSlide opens: levels and mpp are read from the file, background is not tissue, tissue is."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from engine.core.errors import SlideError
from engine.slides import open_slide, otsu_threshold, slide_info, tissue_mask
from engine.slides.tissue import MAX_SATURATION

SIDE, TILE, MPP = 2048, 256, 0.5
TISSUE = (slice(512, 1536), slice(384, 1664))  # rows, columns of level 0


def write_pyramid(path, image: np.ndarray, levels: int = 3, mpp: float = MPP) -> None:
    """A tiled TIFF with reduced-resolution pages (NewSubfileType=1): what OpenSlide reads as a pyramid."""
    opts = {"tile": (TILE, TILE), "photometric": "rgb", "compression": "zlib", "resolutionunit": "CENTIMETER"}
    with tifffile.TiffWriter(path) as tw:
        for level in range(levels):
            f = 2**level
            extra = {"subfiletype": 1} if level else {}
            tw.write(image[::f, ::f], resolution=(1e4 / (mpp * f), 1e4 / (mpp * f)), **opts, **extra)


@pytest.fixture(scope="module")
def slide_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(236, 4, (SIDE, SIDE, 3)), 0, 255).astype(np.uint8)  # glass: bright, grey
    tissue = np.clip(rng.normal((205, 120, 185), 12, (1024, 1280, 3)), 0, 255).astype(np.uint8)  # eosin pink
    image[TISSUE] = tissue
    path = tmp_path_factory.mktemp("slides") / "slide.tiff"
    write_pyramid(path, image)
    return path


def test_openslide_reads_the_pyramid_and_its_mpp(slide_file):
    info = slide_info(open_slide(slide_file), slide_file)
    assert info.dimensions == (SIDE, SIDE) and info.level_count == 3
    assert info.level_dimensions == ((2048, 2048), (1024, 1024), (512, 512))
    assert info.level_downsamples == (1.0, 2.0, 4.0)
    assert info.mpp == pytest.approx((MPP, MPP))
    assert info.vendor == "generic-tiff" and info.objective_power is None


def test_tissue_is_found_and_background_is_not(slide_file):
    slide = open_slide(slide_file)
    mask, downsample = tissue_mask(slide, max_side=256)
    assert mask.shape == (256, 256) and downsample == pytest.approx(8.0)
    rows, cols = (slice(s.start // 8, s.stop // 8) for s in TISSUE)
    inside = mask[rows, cols]
    outside = mask.copy()
    outside[rows, cols] = False
    assert inside.mean() > 0.98  # the stained region
    assert outside.sum() == 0  # no glass counted as tissue


def test_a_slide_of_glass_only_has_no_tissue(tmp_path):
    rng = np.random.default_rng(1)
    glass = np.clip(rng.normal(236, 4, (512, 512, 3)), 0, 255).astype(np.uint8)
    write_pyramid(tmp_path / "glass.tiff", glass, levels=2)
    mask, _ = tissue_mask(open_slide(tmp_path / "glass.tiff"), max_side=128)
    assert mask.sum() == 0  # Otsu alone would split the noise in two; the floor keeps it out


def test_a_plain_png_of_tissue_only_opens_as_a_slide_and_is_all_tissue(tmp_path):
    """A crop with no glass (pale and dark stain): Otsu alone would call the pale half background."""
    from PIL import Image

    rng = np.random.default_rng(2)
    image = np.clip(rng.normal((225, 170, 210), 6, (300, 400, 3)), 0, 255).astype(np.uint8)  # pale eosin
    image[:, 200:] = np.clip(rng.normal((120, 40, 130), 6, (300, 200, 3)), 0, 255).astype(np.uint8)  # dark
    Image.fromarray(image).save(tmp_path / "crop.png")
    slide = open_slide(tmp_path / "crop.png")
    info = slide_info(slide, tmp_path / "crop.png")
    assert info.dimensions == (400, 300) and info.level_count == 1 and info.mpp is None
    saturation = np.asarray(Image.fromarray(image).convert("HSV"))[..., 1]
    assert otsu_threshold(saturation) > MAX_SATURATION  # control: Otsu's own level splits the stain
    mask, _ = tissue_mask(slide, max_side=200)
    assert mask.mean() > 0.99


def test_a_plain_picture_too_large_to_decode_whole_is_refused_with_advice(tmp_path, monkeypatch):
    from PIL import Image

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "big.png")
    assert open_slide(tmp_path / "big.png").dimensions == (64, 64)  # control: under the limit it opens
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses above twice this
    with pytest.raises(SlideError, match="big.png.*tiled pyramidal TIFF"):
        open_slide(tmp_path / "big.png")


def test_otsu_splits_two_populations():
    values = np.concatenate([np.full(900, 20), np.full(100, 200)]).astype(np.uint8)
    assert 20 <= otsu_threshold(values) < 200
    assert otsu_threshold(np.array([], dtype=np.uint8)) == 0


@pytest.mark.parametrize("content", [None, b"not a slide at all", b"II*\x00" + b"\x00" * 20])
def test_unreadable_slides_are_refused_with_the_file_name(tmp_path, content):
    path = tmp_path / "broken.svs"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SlideError, match="broken.svs"):
        open_slide(path)
