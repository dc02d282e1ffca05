"""Overlapping tiles: tiles every stride, each listed with its own box; the heatmap has one cell per stride
holding the mean probability of the tiles over the cell's centre. Without overlap the output is exactly what
it was before overlap existed (tests/engine/slides/data/no_overlap_golden.json, written by the old code)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from engine.core.errors import SlideError
from engine.slides.grid import Tile, cell_span, cell_values, overlap_stride, tile_grid
from tests.engine.slides.painted import mean_colour_model, paint_slide
from tests.engine.slides.test_slide_predict import TISSUE, TUMOUR

GOLDEN = Path(__file__).parent / "data" / "no_overlap_golden.json"


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    folder = tmp_path_factory.mktemp("overlap")
    return paint_slide(folder), mean_colour_model(folder)


@pytest.fixture(scope="module")
def half(slide):
    from engine.slides.predict import predict_slide

    return predict_slide(*slide, model_mpp=1.0, overlap=0.5, device="cpu")


def _tile(col, row, stride=1, size=2):
    return Tile(col, row, col * stride, row * stride, size, 1.0)


def test_cell_span_counts_the_cells_whose_centre_a_tile_covers():
    assert [cell_span(64, s) for s in (64, 45, 32, 16, 1)] == [1, 1, 2, 4, 64]
    assert overlap_stride(64, 0.0) == 64 and overlap_stride(64, 0.5) == 32 and overlap_stride(64, 0.75) == 16
    with pytest.raises(SlideError, match="overlap"):
        overlap_stride(64, 1.0)


def test_each_cell_is_the_mean_of_the_tiles_over_it():
    # tiles of 2 cells (span 2) at (col, row) (0, 0), (1, 0) and (1, 1) on a 3 x 3 grid of cells
    tiles = [_tile(0, 0), _tile(1, 0), _tile(1, 1)]
    heat = cell_values(tiles, np.array([0.1, 0.5, 0.9]), (3, 3), span=2)
    expected = np.array(
        [
            [0.1, (0.1 + 0.5) / 2, 0.5],
            [0.1, (0.1 + 0.5 + 0.9) / 3, (0.5 + 0.9) / 2],
            [np.nan, 0.9, 0.9],
        ]
    )
    np.testing.assert_allclose(heat, expected, rtol=1e-6)
    assert heat.dtype == np.float32
    eps = cell_values(tiles, np.array([np.inf, 2 / 255, np.nan]), (3, 3), span=2, reduce="min")
    assert eps[0, 0] == np.inf and eps[1, 1] == pytest.approx(2 / 255) and np.isnan(eps[2, 1])  # NaN: not computed


def test_tile_grid_steps_by_the_stride_and_keeps_the_tissue_fractions():
    mask = np.zeros((16, 16), bool)
    mask[4:12, 2:10] = True
    side_by_side, grid = tile_grid((128, 128), 32, mask, 4.0, min_tissue=0.01)
    overlapping, fine = tile_grid((128, 128), 32, mask, 4.0, min_tissue=0.01, stride=16)
    assert grid == (4, 4) and fine == (8, 8)  # 7 tile positions a side + 1 cell for the last tile's second half
    assert {(t.x % 16, t.y % 16, t.size) for t in overlapping} == {(0, 0, 32)}
    at = {(t.x, t.y): t.tissue for t in overlapping}
    for t in side_by_side:  # a tile at the same place has the same tissue fraction
        assert at[(t.x, t.y)] == t.tissue and (t.col * 2, t.row * 2) == next(
            (o.col, o.row) for o in overlapping if (o.x, o.y) == (t.x, t.y)
        )
    assert at[(16, 16)] == pytest.approx(mask[4:12, 4:12].mean())
    with pytest.raises(SlideError, match="stride"):
        tile_grid((128, 128), 32, mask, 4.0, stride=33)


def test_without_overlap_the_output_is_the_old_one(slide):
    from engine.slides.predict import predict_slide

    golden = json.loads(GOLDEN.read_text())
    for overlap in (0.0, None):
        kw = {} if overlap is None else {"overlap": overlap}
        pred = predict_slide(*slide, model_mpp=1.0, device="cpu", **kw)
        assert list(pred.grid) == golden["grid"] and pred.tile_size == golden["tile_size"] == pred.cell
        assert pred.stride is None and pred.level == golden["level"]
        tiles = [[t.col, t.row, t.x, t.y, t.size, round(t.tissue, 9)] for t in pred.tiles]
        assert tiles == golden["tiles"]
        np.testing.assert_allclose(pred.probabilities, golden["probabilities"], rtol=0, atol=2e-6)
        heat = pred.heatmap()
        assert int(np.isnan(heat).sum()) == golden["heat_nan"]
        for t, p in zip(pred.tiles, pred.probabilities):
            assert heat[t.row, t.col] == p  # exactly the tile's value


def test_overlapping_tiles_heatmap_cells_are_means_of_the_tiles_over_them(slide, half):
    from engine.slides.predict import predict_slide

    plain = predict_slide(*slide, model_mpp=1.0, device="cpu")
    assert half.tile_size == 64 and half.stride == half.cell == 32 and half.grid == (64, 64)
    assert {(t.x % 32, t.y % 32, t.size) for t in half.tiles} == {(0, 0, 64)}
    assert len(half.tiles) > 3.5 * len(plain.tiles)
    heat = half.heatmap()
    rng = np.random.default_rng(0)
    boxes = np.array([(t.x, t.y) for t in half.tiles])
    for r, c in zip(*np.nonzero(~np.isnan(heat))):
        if rng.random() > 0.1:
            continue  # a sample of the cells, checked against the rule computed directly from the tiles' boxes
        cx, cy = (c + 0.5) * 32, (r + 0.5) * 32
        over = (boxes[:, 0] <= cx) & (cx < boxes[:, 0] + 64) & (boxes[:, 1] <= cy) & (cy < boxes[:, 1] + 64)
        assert heat[r, c] == pytest.approx(half.probabilities[over].mean(), abs=1e-6)
    inside = heat[
        TUMOUR[0].start // 32 + 1 : TUMOUR[0].stop // 32 - 1, TUMOUR[1].start // 32 + 1 : TUMOUR[1].stop // 32 - 1
    ]
    assert inside.min() > 0.9  # the tumour, away from its edges
    glass = np.ones(heat.shape, bool)
    rows, cols = (slice(s.start // 32 - 1, s.stop // 32 + 1) for s in TISSUE)  # a half-tissue tile: half a tile out
    glass[rows, cols] = False
    assert np.isnan(heat[glass]).all()
    # the same slide side by side: each old tile's probability is one of the 2 x 2 cells' contributions
    by_box = {(t.x, t.y): p for t, p in zip(half.tiles, half.probabilities)}
    for t, p in zip(plain.tiles, plain.probabilities):
        assert by_box[(t.x, t.y)] == pytest.approx(p, abs=1e-6)


def test_tile_at_finds_the_tile_whose_centre_is_nearest(half):
    i = half.tile_at(1100.0, 900.0)
    t = half.tiles[i]
    assert t.x <= 1100 < t.x + 64 and t.y <= 900 < t.y + 64
    assert (t.x + 32, t.y + 32) == (1088, 896)  # of the 4 tiles over this point, the centred one
    assert half.tile_at(10.0, 10.0) is None  # glass


def test_exports_list_every_tile_and_record_the_stride(slide, half, tmp_path):
    from PIL import Image

    from engine.slides.export import write_slide_outputs

    write_slide_outputs(half, tmp_path, slide[1])
    rows = list(csv.DictReader((tmp_path / "tiles.csv").open()))
    assert len(rows) == len(half.tiles) and {(r["width"], r["height"]) for r in rows} == {("64", "64")}
    assert [(int(r["x"]), int(r["y"])) for r in rows] == [(t.x, t.y) for t in half.tiles]
    geo = json.loads((tmp_path / "tiles.geojson").read_text())
    ring = geo["features"][0]["geometry"]["coordinates"][0]
    assert len(geo["features"]) == len(half.tiles) and ring[2][0] - ring[0][0] == 64
    record = json.loads((tmp_path / "slide.json").read_text())
    assert record["stride"] == 32 and record["tile_size"] == 64 and record["grid"] == [64, 64]
    assert record["tta"] == {"mode": "none", "transforms": 1, "average": "probabilities"}
    png = Image.open(tmp_path / "heatmap.png")
    assert png.size[0] % 64 == 0 and png.size[0] // 64 == png.size[1] // 64  # whole pixels per cell


def test_slide_command_takes_overlap_and_refuses_a_bad_one(slide, tmp_path, capsys):
    from engine.cli import main as cli_main

    path, model = slide
    args = ["slide", str(path), "--model", str(model), "--out", str(tmp_path), "--model-mpp", "1.0"]
    assert cli_main([*args, "--overlap", "0.5"]) == 0
    assert "tiles every 32 px (overlap 50%)" in capsys.readouterr().out
    assert json.loads((tmp_path / "slide.json").read_text())["stride"] == 32
    with pytest.raises(SystemExit):
        cli_main([*args, "--overlap", "1.5"])
    assert "outside 0..0.9" in capsys.readouterr().err
