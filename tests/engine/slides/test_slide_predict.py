"""A slide predicted tile by tile: the heatmap marks the known region, tiles are streamed (never the whole
slide), and the CSV / GeoJSON / PNG outputs are complete. The model is the self-test's fixed linear model
(engine.deploy.tiny): its positive-class probability rises with red and falls with green, so the test
paints a "malignant" region it scores high inside "benign" tissue it scores low."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest

from engine.cli import main as cli_main
from engine.deploy.tiny import write_tiny_model
from tests.engine.slides.test_slides import write_pyramid

SIDE = 2048
TISSUE = (slice(512, 1536), slice(256, 1792))  # rows, cols: benign tissue, bluish (p < 0.5)
TUMOUR = (slice(768, 1280), slice(1024, 1536))  # inside it: magenta (p > 0.9)


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(236, 3, (SIDE, SIDE, 3)), 0, 255).astype(np.uint8)
    image[TISSUE] = np.clip(rng.normal((130, 170, 190), 6, (1024, 1536, 3)), 0, 255).astype(np.uint8)
    image[TUMOUR] = np.clip(rng.normal((220, 60, 200), 6, (512, 512, 3)), 0, 255).astype(np.uint8)
    folder = tmp_path_factory.mktemp("slide")
    write_pyramid(folder / "slide.tiff", image, levels=3, mpp=0.5)
    model = write_tiny_model(folder / "tiny.onnx", image_size=32)
    return folder / "slide.tiff", model


def test_heatmap_marks_the_known_region_and_skips_background(slide):
    from engine.slides.predict import predict_slide

    path, model = slide
    pred = predict_slide(path, model, model_mpp=1.0, device="cpu")  # 32 px at 1 µm = 64 slide px at 0.5 µm
    assert pred.tile_size == 64 and pred.grid == (32, 32) and pred.level == 1
    heat = pred.heatmap()
    rows, cols = (slice(s.start // 64, s.stop // 64) for s in TISSUE)
    t_rows, t_cols = (slice(s.start // 64, s.stop // 64) for s in TUMOUR)
    background = np.ones(heat.shape, bool)
    background[rows, cols] = False
    assert np.isnan(heat[background]).all()  # glass: no tile
    assert not np.isnan(heat[rows, cols]).any()  # every tissue tile predicted
    tumour = np.zeros(heat.shape, bool)
    tumour[t_rows, t_cols] = True
    benign = ~np.isnan(heat) & ~tumour
    assert heat[tumour].min() > 0.9 and heat[benign].max() < 0.5
    summary = pred.summary(top=3)
    assert summary["tissue_tiles"] == 16 * 24 and summary["positive_tiles"] == 8 * 8
    assert all(t["probability"] > 0.9 for t in summary["top_tiles"])


def test_tiles_are_streamed_never_the_whole_slide(slide, monkeypatch):
    from engine.slides import predict as module

    path, model = slide
    requests = []
    real_open = module.open_slide

    def spying_open(p):
        s = real_open(p)
        real_read = s.read_region

        def read_region(location, level, size):
            requests.append(size)
            return real_read(location, level, size)

        s.read_region = read_region
        return s

    monkeypatch.setattr(module, "open_slide", spying_open)
    module.predict_slide(path, model, model_mpp=1.0, device="cpu", batch_size=16)
    tiles = [r for r in requests if r == (32, 32)]  # one tile at a time, read at level 1
    others = [r for r in requests if r != (32, 32)]
    assert len(tiles) == 384
    assert others == [(1024, 1024)]  # the tissue thumbnail, from level 1: never level 0 (2048 x 2048)


def test_slide_command_writes_heatmap_csv_and_geojson(slide, tmp_path, capsys):
    path, model = slide
    out = tmp_path / "out"
    assert cli_main(["slide", str(path), "--model", str(model), "--out", str(out), "--model-mpp", "1.0"]) == 0
    text = capsys.readouterr().out
    assert "2048 x 2048 px, 3 levels, 0.500 µm/px" in text and "384 tissue tiles of 64 px" in text
    rows = list(csv.DictReader((out / "tiles.csv").open()))
    assert len(rows) == 384 and {"x", "y", "width", "height", "level", "probability"} <= set(rows[0])
    assert {r["width"] for r in rows} == {"64"}
    low, high = 0.2, 0.8  # the tiny model has no calibration record: the default review band
    assert [r["review"] for r in rows] == ["uncertain" if low <= float(r["probability"]) <= high else "" for r in rows]
    geo = json.loads((out / "tiles.geojson").read_text())
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == 384
    for feature in geo["features"]:
        ring = feature["geometry"]["coordinates"][0]
        assert feature["geometry"]["type"] == "Polygon" and ring[0] == ring[-1] and len(ring) == 5
        assert all(0 <= x <= SIDE and 0 <= y <= SIDE for x, y in ring)
        assert 0.0 <= feature["properties"]["measurements"]["probability"] <= 1.0
    from PIL import Image

    heat = Image.open(out / "heatmap.png")
    assert heat.mode == "RGBA" and heat.size[0] == heat.size[1] and heat.size[0] >= 32
    record = json.loads((out / "slide.json").read_text())
    assert record["positive_tiles"] == 64 and len(record["model_sha256"]) == 64
    assert record["uncertain_tiles"] == sum(r["review"] == "uncertain" for r in rows) and record["review_band"] == [
        low,
        high,
    ]
    assert sum(f["properties"]["measurements"]["uncertain"] for f in geo["features"]) == record["uncertain_tiles"]


def test_slide_command_refuses_an_unreadable_slide(tmp_path, capsys):
    bad = tmp_path / "scan.svs"
    bad.write_bytes(b"truncated")
    model = write_tiny_model(tmp_path / "tiny.onnx")
    assert cli_main(["slide", str(bad), "--model", str(model), "--out", str(tmp_path / "o")]) == 2
    assert "scan.svs" in capsys.readouterr().err


def test_a_model_trained_with_input_mpp_tiles_slides_at_its_training_scale(slide, tmp_path):
    """--input-mpp goes into the checkpoint and ONNX metadata as "mpp"; predict_slide then needs no --model-mpp."""
    from engine.core.config import TrainConfig
    from engine.data.arrays import ArraySet
    from engine.export.onnx_export import export_onnx
    from engine.slides.predict import predict_slide
    from engine.train.study import train_new_model
    from tests.conftest import toy_arrays

    path, _ = slide
    cfg = TrainConfig(arch="small_cnn", image_size=32, epochs=1, batch_size=8, weights="none", device="cpu")
    x, y = toy_arrays(16, 32, seed=0)
    sets = ArraySet(x, y), ArraySet(x[:8], y[:8])
    common = {"classes": ("benign", "malignant"), "how": {"method": "clean"}, "split_hash": "-"}
    scaled = replace(cfg, input_mpp=1.0)
    model, _, meta = train_new_model(scaled, *sets, **common, out_dir=tmp_path / "a", name="A")
    assert meta.mpp == 1.0
    export_onnx(model.cpu(), tmp_path / "a.onnx", meta, 32)
    assert predict_slide(path, tmp_path / "a.onnx", device="cpu").tile_size == 64  # 32 px at 1 µm, slide 0.5 µm
    # control: without input_mpp the model records none, and a tile is 32 slide pixels
    model, _, meta = train_new_model(cfg, *sets, **common, out_dir=tmp_path / "b", name="B")
    assert meta.mpp is None and "mpp" not in meta.to_dict()
    export_onnx(model.cpu(), tmp_path / "b.onnx", meta, 32)
    assert predict_slide(path, tmp_path / "b.onnx", device="cpu").tile_size == 32
