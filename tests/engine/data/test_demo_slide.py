"""The SYNTHETIC demo slide: a pyramid OpenSlide opens, marked synthetic, with tissue where the layout puts
it, carcinoma patches in the tumour region, levels that agree, and a scale that matches demo models."""

from __future__ import annotations

import numpy as np
import pytest

from engine.cli import main as cli_main
from engine.core.config import DEMO_TRAIN
from engine.core.errors import DataError
from engine.core.progress import CancelToken
from engine.data.demo_slide import DESCRIPTION, MPP, demo_input_mpp, regions, write_demo_slide
from engine.slides import open_slide, slide_info, tissue_mask

SIDE = 2048


@pytest.fixture(scope="module")
def demo_slide(tmp_path_factory):
    return write_demo_slide(tmp_path_factory.mktemp("demo-slide") / "demo.tiff", SIDE)


def test_openslide_reads_it_as_a_synthetic_pyramid(demo_slide):
    slide = open_slide(demo_slide)
    info = slide_info(slide, demo_slide)
    assert info.dimensions == (SIDE, SIDE) and info.level_downsamples == (1.0, 2.0)
    assert info.mpp == pytest.approx((MPP, MPP))
    assert DESCRIPTION in info.properties.get("tiff.ImageDescription", "")


def test_tissue_and_tumour_are_where_the_layout_puts_them(demo_slide):
    slide = open_slide(demo_slide)
    mask, ds = tissue_mask(slide, max_side=256)
    yy, xx = np.mgrid[0:256, 0:256]
    tissue, tumour = regions(SIDE, (xx + 0.5) * ds, (yy + 0.5) * ds)
    assert mask[tissue].mean() > 0.9  # gland lumens are white, not tissue
    assert mask[~tissue].mean() < 0.01
    # carcinoma patches are darker (crowded haematoxylin nuclei) than the benign tissue around them
    level0 = np.asarray(slide.read_region((0, 0), 0, (SIDE, SIDE)).convert("L"), dtype=np.float32)
    y0, x0 = np.mgrid[0:SIDE, 0:SIDE]
    tissue0, tumour0 = regions(SIDE, x0, y0)
    assert level0[tumour0].mean() < level0[tissue0 & ~tumour0].mean() - 15


def test_lower_levels_are_the_level_zero_image_downsampled(demo_slide):
    slide = open_slide(demo_slide)
    level0 = np.asarray(slide.read_region((0, 0), 0, (SIDE, SIDE)).convert("RGB"), dtype=np.float32)
    level1 = np.asarray(slide.read_region((0, 0), 1, (SIDE // 2, SIDE // 2)).convert("RGB"), dtype=np.float32)
    halved = level0.reshape(SIDE // 2, 2, SIDE // 2, 2, 3).mean(axis=(1, 3))
    assert np.abs(halved - level1).mean() < 12  # same picture (box-filtered patches vs masked edges)
    control = np.roll(halved, 100, axis=1)  # a shifted picture is far off: the check can see a mismatch
    assert np.abs(control - level1).mean() > 2 * np.abs(halved - level1).mean()


def test_demo_models_record_the_scale_of_the_demo_slide():
    assert DEMO_TRAIN.input_mpp == pytest.approx(demo_input_mpp(DEMO_TRAIN.image_size), abs=1e-3)


def test_bad_requests_are_refused_and_cancel_leaves_no_file(tmp_path):
    with pytest.raises(DataError, match="tiled pyramidal TIFF"):
        write_demo_slide(tmp_path / "demo.png", SIDE)
    with pytest.raises(DataError, match="between"):
        write_demo_slide(tmp_path / "demo.tiff", 100)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Exception, match="[Cc]ancel"):
        write_demo_slide(tmp_path / "demo.tiff", SIDE, cancel=token)
    assert list(tmp_path.iterdir()) == []  # neither the slide nor its partial file


def test_the_command_writes_a_slide(tmp_path, capsys):
    assert cli_main(["demo-slide", str(tmp_path / "s.tiff"), "--side", "1024"]) == 0
    assert "SYNTHETIC demo slide" in capsys.readouterr().out
    assert open_slide(tmp_path / "s.tiff").dimensions == (1024, 1024)
