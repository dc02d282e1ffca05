"""The robustness map of a slide and the attack on one slide tile.

The slide's tissue is a colour ramp from bluish "benign" (left) to magenta "tumour" (right); a small_cnn,
trained for a second on tiles of it and exported with HistoGuard's exporter (so the ONNX file and its
checkpoint verify as a pair), calls the left benign and the right malignant. Tiles near the decision
boundary must flip at small eps and tiles far from it must not; every FGSM answer is re-checked with
``engine.attacks.fgsm`` (an independent path): the 8-bit image flips at k and not at k - 1.
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engine.attacks import fgsm
from engine.attacks.perturbation import quantised as _quantised
from engine.cli import main as cli_main
from engine.core.config import AttackConfig
from engine.core.errors import Cancelled, ConfigError, ModelError
from engine.core.progress import CancelToken
from engine.export.onnx_export import export_verified, parity_batches
from engine.models.checkpoint import make_metadata, save_checkpoint
from engine.models.registry import create_model
from tests.engine.slides.test_slides import write_pyramid

SIDE, SIZE = 1024, 32  # a 16 x 16 grid of 64-px tiles (32 px at 1 µm on a 0.5 µm slide), read at level 1
ROWS, COLS = slice(256, 768), slice(128, 896)  # tissue: 8 x 12 tiles
BENIGN, TUMOUR = np.array([130, 170, 190]), np.array([220, 60, 200])
MPP = ["--model-mpp", "1.0"]


def _slide_image(rng) -> np.ndarray:
    image = np.clip(rng.normal(236, 3, (SIDE, SIDE, 3)), 0, 255).astype(np.uint8)
    t = np.linspace(0, 1, COLS.stop - COLS.start)[None, :, None]
    ramp = (1 - t) * BENIGN + t * TUMOUR
    image[ROWS, COLS] = np.clip(ramp + rng.normal(0, 6, (ROWS.stop - ROWS.start, *ramp.shape[1:])), 0, 255)
    return image


def _train(image: np.ndarray) -> torch.nn.Module:
    """A small_cnn that calls the ramp's right half malignant (tiles at level 1, as the slide is read)."""
    small, boundary = image[::2, ::2], (COLS.start + COLS.stop) // 4
    crops = [(r, c) for r in range(ROWS.start // 2, ROWS.stop // 2 - SIZE, 8) for c in range(64, 448 - SIZE, 8)]
    x = torch.from_numpy(np.stack([small[r : r + SIZE, c : c + SIZE] for r, c in crops])).permute(0, 3, 1, 2) / 255
    y = torch.tensor([int(c + SIZE // 2 > boundary) for _, c in crops])
    torch.manual_seed(0)
    model = create_model("small_cnn")
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(40):
        i = torch.randint(0, len(x), (32,))
        loss = F.cross_entropy(model(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    from engine.slides.predict import predict_slide

    folder = tmp_path_factory.mktemp("robust")
    image = _slide_image(np.random.default_rng(0))
    write_pyramid(folder / "slide.tiff", image, levels=2, mpp=0.5)
    model = _train(image)
    meta = make_metadata("small_cnn", ("benign", "malignant"), SIZE, {"method": "clean"})
    save_checkpoint(folder / "model" / "best.pt", model, meta)  # where checkpoint_for_onnx looks
    x = torch.rand(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    checks = parity_batches(model, x, torch.tensor([0, 1, 0, 1]), 4 / 255)
    export_verified(model, folder / "model.onnx", meta, SIZE, checks)
    pred = predict_slide(folder / "slide.tiff", folder / "model.onnx", model_mpp=1.0, device="cpu")
    return {"slide": folder / "slide.tiff", "onnx": folder / "model.onnx", "model": model, "pred": pred}


@pytest.fixture(scope="module")
def fgsm_map(case):
    from engine.workflows.slide_robustness import slide_robustness

    events = []
    fgsm16 = AttackConfig("fgsm", 16 / 255)
    eps = slide_robustness(case["slide"], case["onnx"], case["pred"], fgsm16, device="cpu", on_progress=events.append)
    return eps, events


def _tile(case, i) -> torch.Tensor:
    from engine.slides.predict import read_tile_rgb
    from engine.slides.reader import open_slide

    with open_slide(case["slide"]) as slide:
        rgb = read_tile_rgb(slide, case["pred"].tiles[i], case["pred"].level, SIZE)
    assert rgb.shape == (SIZE, SIZE, 3) and rgb.dtype == np.uint8
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255


def _calls_after_fgsm(model, x: torch.Tensor, k: int) -> tuple[int, int]:
    with torch.no_grad():
        y = model(x).argmax(1)
    adv = _quantised(fgsm(model, x, y, eps=k / 255)) if k else x
    with torch.no_grad():
        return int(y), int(model(adv).argmax(1))


# --- the map -----------------------------------------------------------------------------------------
def test_fgsm_map_values_are_whole_grey_levels_or_inf_and_progress_counts_tiles(case, fgsm_map):
    eps, events = fgsm_map
    pred = case["pred"]
    assert eps.shape == (len(pred.tiles),) == (96,) and eps.dtype == np.float32
    k = eps * 255
    finite = np.isfinite(k)
    assert not np.isnan(k).any() and np.isinf(k[~finite]).all() and (k[~finite] > 0).all()
    assert np.allclose(k[finite], np.round(k[finite]), atol=1e-4) and ((k[finite] >= 1) & (k[finite] <= 16)).all()
    assert 0 < finite.sum() < len(k)  # some tiles flip, some do not: the map says something
    assert {e.unit for e in events} == {"tiles"} and events[-1].done == events[-1].total == 96
    assert [e.done for e in events] == sorted(e.done for e in events)


def test_fgsm_answer_flips_at_k_and_not_at_k_minus_1(case, fgsm_map):
    """Checked with engine.attacks.fgsm on freshly read tiles: the returned k is where the 8-bit FGSM image
    flips the model's own call, and k - 1 (the clean tile for k = 1) does not; inf: 16/255 does not flip."""
    eps, _ = fgsm_map
    k = np.round(eps * 255)
    finite = np.flatnonzero(np.isfinite(k))
    never = np.flatnonzero(np.isinf(k))
    for i in [*finite, *never[:4]]:
        x = _tile(case, i)
        if np.isinf(k[i]):
            clean, adv = _calls_after_fgsm(case["model"], x, 16)
            assert adv == clean
            continue
        clean, at_k = _calls_after_fgsm(case["model"], x, int(k[i]))
        _, below = _calls_after_fgsm(case["model"], x, int(k[i]) - 1)
        assert at_k != clean and below == clean, (i, k[i])


def test_fragile_tiles_lie_at_the_decision_boundary(case, fgsm_map):
    eps, _ = fgsm_map
    p = case["pred"].probabilities
    unsure, sure = (p > 0.1) & (p < 0.9), (p < 0.01) | (p > 0.99)
    assert unsure.sum() >= 4 and sure.sum() >= 40
    assert np.isfinite(eps[unsure]).all() and eps[unsure].max() * 255 <= 8
    assert np.median(eps[sure]) > eps[unsure].max()  # confident tiles are much harder to flip
    heat = case["pred"].heatmap()
    pred = replace(case["pred"], flip_eps=eps)
    robust = pred.robustness_heatmap()
    assert robust.shape == heat.shape and np.array_equal(np.isnan(robust), np.isnan(heat))  # aligned with the map
    t = pred.tiles[int(np.argmin(eps))]
    assert robust[t.row, t.col] == eps.min()


def test_limit_attacks_only_the_most_suspicious_tiles(case, fgsm_map, monkeypatch):
    from engine.workflows import slide_robustness as module

    reads = []
    real_open = module.open_slide

    def spying_open(path):
        slide = real_open(path)
        real_read = slide.read_region
        slide.read_region = lambda loc, level, size: reads.append((level, size)) or real_read(loc, level, size)
        return slide

    monkeypatch.setattr(module, "open_slide", spying_open)
    p = case["pred"].probabilities
    eps = module.slide_robustness(case["slide"], case["onnx"], case["pred"], limit=5, batch_size=2, device="cpu")
    top = np.argsort(-p)[:5]
    assert set(np.flatnonzero(~np.isnan(eps))) == set(top)
    assert p[~np.isnan(eps)].min() >= p[np.isnan(eps)].max()
    np.testing.assert_array_equal(eps[top], fgsm_map[0][top])  # the same answers as the full map
    assert reads == [(1, (SIZE, SIZE))] * 5  # one tile-sized read per attacked tile, nothing else


def test_pgd_map_flips_the_boundary_within_max_k(case):
    from engine.workflows.slide_robustness import slide_robustness

    p = case["pred"].probabilities
    eps = slide_robustness(
        case["slide"], case["onnx"], case["pred"], AttackConfig("pgd", 8 / 255, steps=3), device="cpu"
    )
    k = eps * 255
    finite = np.isfinite(k)
    assert not np.isnan(k).any()
    assert np.allclose(k[finite], np.round(k[finite]), atol=1e-4) and ((k[finite] >= 1) & (k[finite] <= 8)).all()
    unsure = (p > 0.1) & (p < 0.9)
    assert finite[unsure].all() and not finite.all()


def test_cancel_stops_between_batches(case):
    from engine.workflows.slide_robustness import slide_robustness

    token, seen = CancelToken(), []

    def on_progress(event):
        seen.append(event.done)
        if event.done > 0:
            token.cancel()

    with pytest.raises(Cancelled, match="robustness"):
        slide_robustness(
            case["slide"], case["onnx"], case["pred"], batch_size=8, device="cpu", on_progress=on_progress, cancel=token
        )
    assert seen == [0, 8]  # stopped after the first batch, long before 96 tiles


def test_another_model_or_bad_settings_are_refused(case):
    from engine.workflows.slide_robustness import slide_robustness

    other = replace(case["pred"], model_sha256="0" * 64)
    with pytest.raises(ModelError, match="model.onnx is not the model this slide was predicted with"):
        slide_robustness(case["slide"], case["onnx"], other, device="cpu")
    for bad in ({"method": "bim"}, {"eps": 0.0}, {"eps": 2.5 / 255}, {"limit": -1}, {"batch_size": 0}):
        attack = AttackConfig(bad.pop("method", "fgsm"), bad.pop("eps", 16 / 255))
        with pytest.raises(ConfigError):
            slide_robustness(case["slide"], case["onnx"], case["pred"], attack, device="cpu", **bad)
    for bad in ({"method": "cw"}, {"eps": 300 / 255}, {"steps": 0}):  # the attack itself is refused
        with pytest.raises(ConfigError):
            AttackConfig(**{"method": "fgsm", "eps": 16 / 255, **bad})


# --- one tile ----------------------------------------------------------------------------------------
def test_attack_tile_flips_at_large_eps_within_the_ball(case, fgsm_map):
    from engine.workflows.slide_robustness import attack_tile

    pred, eps = case["pred"], fgsm_map[0]
    i = int(np.argmin(eps))
    k = int(round(eps[i] * 255))
    tile = pred.tiles[i]
    pgd32 = AttackConfig("pgd", 32 / 255, steps=5)
    big = attack_tile(case["slide"], case["onnx"], tile, pred.level, pgd32, device="cpu")
    assert big["flipped"] and big["pred_adv"] != big["pred_clean"] and big["linf"] <= 32 / 255 + 1e-6
    assert big["original"].shape == big["adversarial"].shape == (SIZE, SIZE, 3) and big["adversarial"].dtype == np.uint8
    np.testing.assert_array_equal(big["original"], (_tile(case, i)[0].permute(1, 2, 0) * 255).round().numpy())
    assert big["probs_clean"][1] == pytest.approx(pred.probabilities[i], abs=1e-4)  # the pixels predict_slide saw
    assert big["image_path"] == str(case["slide"]) and big["tile"] == {"x": tile.x, "y": tile.y, "size": 64, "level": 1}
    # the map's k is where FGSM on this tile starts to flip: the tile attack agrees on both sides
    assert attack_tile(case["slide"], case["onnx"], tile, pred.level, AttackConfig("fgsm", k / 255), device="cpu")[
        "flipped"
    ]
    below = attack_tile(
        case["slide"], case["onnx"], tile, pred.level, AttackConfig("fgsm", (k - 1) / 255), device="cpu"
    )
    assert not below["flipped"] and below["linf"] <= (k - 1) / 255 + 1e-6


# --- summary and files -------------------------------------------------------------------------------
def test_summary_counts_over_the_computed_tiles(case):
    n = len(case["pred"].tiles)
    flip = np.full(n, np.nan, dtype=np.float32)
    flip[:5] = np.array([1, 2, 8, 9, np.inf]) / 255
    r = replace(case["pred"], flip_eps=flip).summary()["robustness"]
    assert r == {
        "tiles_computed": 5,
        "median_flip_eps_255": 8.0,
        "flipped_at_2_255_fraction": 0.4,
        "flipped_at_8_255_fraction": 0.6,
        "not_flipped": 1,
    }
    assert "robustness" not in case["pred"].summary()


def _strict_json(path):
    def refuse(token):
        raise AssertionError(f"{path.name} holds the non-JSON token {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_outputs_carry_the_flip_eps(case, fgsm_map, tmp_path):
    from engine.slides.export import write_slide_outputs

    eps = fgsm_map[0].copy()
    eps[-3:] = np.nan  # not computed
    pred = replace(case["pred"], flip_eps=eps)
    settings = {"method": "fgsm", "max_k": 16, "steps": None}
    files = write_slide_outputs(pred, tmp_path / "with", case["onnx"], robustness=settings)
    assert set(files) == {"heatmap.png", "tiles.csv", "tiles.geojson", "slide.json", "robustness.png"}
    want = ["" if np.isnan(e) else "inf" if np.isinf(e) else str(round(e * 255)) for e in eps]
    assert [r["flip_eps_255"] for r in csv.DictReader(files["tiles.csv"].open())] == want
    measured = [f["properties"]["measurements"] for f in _strict_json(files["tiles.geojson"])["features"]]
    geo_want = [None if w == "" else "Infinity" if w == "inf" else int(w) for w in want]
    assert [m.get("flip_eps_255") for m in measured] == geo_want
    record = _strict_json(files["slide.json"])["robustness"]
    assert record["method"] == "fgsm" and record["max_k"] == 16 and record["steps"] is None
    assert record["tiles_computed"] == 93 and record["not_flipped"] == int(np.isinf(eps).sum())
    assert record["median_flip_eps_255"] == "Infinity"  # most tiles are far from the boundary
    png = np.asarray(Image.open(files["robustness.png"]))
    scale = png.shape[0] // pred.grid[0]
    fragile, robust = pred.tiles[int(np.nanargmin(eps))], pred.tiles[int(np.flatnonzero(np.isinf(eps))[0])]
    at = lambda t: png[t.row * scale, t.col * scale]  # noqa: E731
    assert at(fragile)[0] > at(fragile)[2] and at(robust)[2] > at(robust)[0]  # red = fragile, blue = robust
    assert png[0, 0, 3] == 0 and at(pred.tiles[-1])[3] == 0 and at(fragile)[3] == 255  # no tissue / not computed
    # control: without a map the column is empty and nothing else is written
    plain = write_slide_outputs(case["pred"], tmp_path / "without", case["onnx"])
    assert "robustness.png" not in plain
    assert {r["flip_eps_255"] for r in csv.DictReader(plain["tiles.csv"].open())} == {""}
    features = _strict_json(plain["tiles.geojson"])["features"]
    assert all("flip_eps_255" not in f["properties"]["measurements"] for f in features)
    assert "robustness" not in _strict_json(plain["slide.json"])


# --- the command line ----------------------------------------------------------------------------------
def test_slide_command_maps_robustness(case, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["slide", str(case["slide"]), "--model", str(case["onnx"]), "--out", str(out), *MPP]
    assert cli_main([*args, "--robustness", "fgsm", "--max-eps", "8", "--robust-limit", "20", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "robustness (FGSM, up to 8/255) of 20 tiles" in text and "robustness.png" in text
    rows = list(csv.DictReader((out / "tiles.csv").open()))
    values = [r["flip_eps_255"] for r in rows]
    assert len(rows) == 96 and sum(v != "" for v in values) == 20
    assert all(v == "inf" or 1 <= int(v) <= 8 for v in values if v)
    record = _strict_json(out / "slide.json")["robustness"]
    assert record["method"] == "fgsm" and record["max_k"] == 8 and record["tiles_computed"] == 20
    assert Image.open(out / "robustness.png").mode == "RGBA"


def test_diagnose_edition_refuses_robustness_before_predicting(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HISTOGUARD_EDITION", "diagnose")
    args = ["slide", str(case["slide"]), "--model", str(case["onnx"]), *MPP]
    assert cli_main([*args, "--out", str(tmp_path / "a"), "--robustness", "pgd"]) == 2
    err = capsys.readouterr().err
    assert "`histoguard slide --robustness pgd` needs PyTorch" in err and "full edition" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "a").exists()
    assert cli_main([*args, "--out", str(tmp_path / "b")]) == 0  # control: prediction alone still runs
    assert (tmp_path / "b" / "heatmap.png").is_file()
