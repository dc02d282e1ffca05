"""Test-time augmentation: the mean of the model's probabilities over the flips (4) or the dihedral group (8) of
each tile, one ``run_session`` call per batch of tiles x transforms. A model that is itself invariant (the
mean-colour model) gives the same probabilities; one that is not (a linear model of the pixels) gives the mean
of the transforms made by hand with numpy's own rot90/flip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.core.errors import ConfigError
from engine.slides.tta import TRANSFORMS, expand, tta_record
from tests.engine.slides.painted import SIZE, mean_colour_model, paint_slide, pixel_linear_model

HAND = {  # the transforms on an (H, W, 3) tile, written with numpy's named functions
    "flips": [lambda a: a, np.fliplr, np.flipud, lambda a: np.flipud(np.fliplr(a))],
    "d4": [lambda a, k=k: np.rot90(a, k) for k in range(4)]
    + [lambda a, k=k: np.rot90(np.fliplr(a), k) for k in range(4)],
}


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tta")
    return paint_slide(folder), mean_colour_model(folder), pixel_linear_model(folder)


def test_the_transforms_are_the_dihedral_group():
    x = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)  # no symmetry at all
    for mode, n in (("none", 1), ("flips", 4), ("d4", 8)):
        out = expand(x, mode)
        assert out.shape == (n * 2, 1, 3, 3) and out.flags.c_contiguous
        got = {out[i * 2 + 1, 0].tobytes() for i in range(n)}  # transform-major: image 1 of each transform
        assert len(got) == n  # all different
        if mode != "none":
            assert got == {f(x[1, 0]).tobytes() for f in HAND[mode]}
    assert tta_record("d4") == {"mode": "d4", "transforms": 8, "average": "probabilities"}
    with pytest.raises(ConfigError, match="d4"):
        expand(x, "rotate")


def _by_hand(slide_path, model, pred, mode):
    from engine.deploy.session import create_session, run_session
    from engine.slides.predict import read_tile_rgb
    from engine.slides.reader import open_slide

    session = create_session(model, device="cpu")
    out = []
    with open_slide(slide_path) as slide:
        for tile in pred.tiles:
            rgb = read_tile_rgb(slide, tile, pred.level, SIZE)
            x = np.stack([np.ascontiguousarray(f(rgb)).transpose(2, 0, 1) for f in HAND[mode]]).astype(np.float32) / 255
            out.append(run_session(session, x)[:, 1].mean())
    return np.array(out)


@pytest.mark.parametrize("mode", ["flips", "d4"])
def test_tta_is_the_mean_over_the_transforms_made_by_hand(case, mode):
    from engine.slides.predict import predict_slide

    path, _, model = case
    # half-tile overlap: tiles straddling the tumour's edge have a structure that turning changes
    plain = predict_slide(path, model, model_mpp=1.0, overlap=0.5, device="cpu")
    tta = predict_slide(path, model, model_mpp=1.0, overlap=0.5, tta=mode, device="cpu")
    assert tta.tta == mode and [t.x for t in tta.tiles] == [t.x for t in plain.tiles]
    np.testing.assert_allclose(tta.probabilities, _by_hand(path, model, tta, mode), atol=1e-5)
    assert np.abs(tta.probabilities - plain.probabilities).max() > 0.2  # the model is far from invariant


def test_an_invariant_model_gives_the_same_probabilities(case):
    from engine.slides.predict import predict_slide

    path, model, _ = case
    plain = predict_slide(path, model, model_mpp=1.0, device="cpu")
    for mode in ("flips", "d4"):
        tta = predict_slide(path, model, model_mpp=1.0, tta=mode, device="cpu")
        np.testing.assert_allclose(tta.probabilities, plain.probabilities, atol=1e-6)


def test_one_run_session_call_per_batch_of_tiles_times_transforms(case, monkeypatch):
    from engine.slides import tta as module
    from engine.slides.predict import predict_slide

    path, model, _ = case
    calls = []
    real = module.run_session

    def spy(session, images, batch_size=32):
        calls.append((len(images), batch_size))
        return real(session, images, batch_size)

    monkeypatch.setattr(module, "run_session", spy)
    pred = predict_slide(path, model, model_mpp=1.0, tta="d4", batch_size=50, device="cpu")
    n = len(pred.tiles)  # 384: 7 full batches of 50 and one of 34
    assert calls == [(8 * 50, 50)] * (n // 50) + [(8 * (n % 50), 50)]


def test_slide_json_records_the_tta_and_the_cli_takes_it(case, tmp_path, capsys):
    from engine.cli import main as cli_main

    path, model, _ = case
    args = ["slide", str(path), "--model", str(model), "--out", str(tmp_path), "--model-mpp", "1.0", "--tta", "flips"]
    assert cli_main(args) == 0
    assert "TTA flips (4 transforms per tile" in capsys.readouterr().out
    assert json.loads((tmp_path / "slide.json").read_text())["tta"]["transforms"] == 4
    with pytest.raises(SystemExit):
        cli_main([*args[:-1], "rotate"])
    assert len(TRANSFORMS) == 3
