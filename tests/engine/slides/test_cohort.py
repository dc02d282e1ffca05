"""A cohort of slides: five small pyramids whose tissue is 0, 20, 40, 60 and 80% "tumour" (magenta, which the
self-test's tiny ONNX model scores high; tests/engine/slides/test_slide_predict), each slide into its own complete
sub-folder, the table in input order; an interrupted run continues with the slides not done and ends with the
same cohort.csv bytes; a damaged slide is one failed row; a changed model or setting is never reused."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.core.errors import Cancelled, ConfigError
from engine.core.progress import CancelToken
from engine.deploy.tiny import write_tiny_model
from engine.slides.cohort import CohortSettings, CohortSlide, list_slides, slide_folder_names
from engine.workflows import cohort as workflow
from engine.workflows.cohort import run_cohort
from tests.engine.slides.test_slides import write_pyramid

SIDE, N = 1024, 5
SETTINGS = CohortSettings(model_mpp=2.0)  # the tiny model's 32 px at 2 µm = 128 slide px at 0.5 µm: 16 tissue tiles


def write_cohort(folder: Path, n: int = N, side: int = SIDE) -> Path:
    """``n`` slides case_0 ... whose tissue square is i/n magenta (left part), the rest bluish benign."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rng = np.random.default_rng(i)
        image = np.clip(rng.normal(236, 3, (side, side, 3)), 0, 255).astype(np.uint8)
        a, b = side // 4, 3 * side // 4
        image[a:b, a:b] = np.clip(rng.normal((130, 170, 190), 6, (b - a, b - a, 3)), 0, 255)
        width = (b - a) * i // n
        if width:
            image[a:b, a : a + width] = np.clip(rng.normal((220, 60, 200), 6, (b - a, width, 3)), 0, 255)
        write_pyramid(folder / f"case_{i}.tiff", image, levels=3, mpp=0.5)
    return folder


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    return {"slides": write_cohort(root / "slides"), "model": write_tiny_model(root / "tiny.onnx", image_size=32)}


@pytest.fixture(scope="module")
def reference(cohort, tmp_path_factory) -> Path:
    """An uninterrupted run's folder."""
    out = tmp_path_factory.mktemp("reference") / "out"
    run_cohort([cohort["slides"]], cohort["model"], out, SETTINGS)
    return out


def rows(out: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO((out / "cohort.csv").read_text())))


def slide_folders(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.is_dir())


def count_predictions(monkeypatch) -> list:
    calls = []
    import engine.slides.predict as predict

    real = predict.predict_slide

    def counted(path, *args, **kwargs):
        calls.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(predict, "predict_slide", counted)
    return calls


def test_each_slide_gets_a_complete_folder_and_a_row_in_input_order(cohort, reference):
    table = rows(reference)
    assert [r["slide"] for r in table] == [f"case_{i}.tiff" for i in range(N)]
    assert {r["status"] for r in table} == {"done"} and len({r["folder"] for r in table}) == N
    assert [float(r["positive_fraction"]) for r in table] == [0.0, 0.25, 0.5, 0.75, 1.0]  # 4 x 4 tiles, i/5 magenta
    for r in table:
        folder = reference / r["folder"]
        assert {"heatmap.png", "tiles.csv", "tiles.geojson", "slide.json", "cohort_slide.json"} <= set(
            p.name for p in folder.iterdir()
        )
        probs = sorted((float(t["probability"]) for t in csv.DictReader((folder / "tiles.csv").open())), reverse=True)
        assert int(r["tissue_tiles"]) == len(probs) == 16
        assert float(r["top_k_score"]) == pytest.approx(np.mean(probs[:10]), abs=1e-4)  # the top 10 tiles' mean
        assert r["uncertain_fraction"] == ""  # the tiny model is not calibrated
    scores = [float(r["top_k_score"]) for r in table]
    assert scores == sorted(scores) and scores[0] < 0.5 < scores[-1]
    meta = json.loads((reference / "cohort.json").read_text())
    assert meta["top_k"] == 10 and "not calibrated" in meta["uncertain_note"]
    assert "seconds" not in (reference / "cohort.csv").read_text()  # wall-clock times only in cohort.json
    assert all(s["seconds"] > 0 for s in meta["slides"])
    html = (reference / "cohort.html").read_text()
    assert html.count('<tr class="done">') == N and "score (top 10)" in html


def test_an_interrupted_run_goes_on_and_ends_with_the_same_table(cohort, reference, tmp_path, monkeypatch):
    out, token = tmp_path / "out", CancelToken()

    def cancel_after_two(p):
        if p.stage == "cohort" and p.done >= 2:
            token.cancel()

    with pytest.raises(Cancelled):
        run_cohort([cohort["slides"]], cohort["model"], out, SETTINGS, on_progress=cancel_after_two, cancel=token)
    assert len(slide_folders(out)) == 2
    assert [r["status"] for r in rows(out)] == ["done", "done", "pending", "pending", "pending"]
    calls = count_predictions(monkeypatch)
    run_cohort([cohort["slides"]], cohort["model"], out, SETTINGS)
    assert calls == ["case_2.tiff", "case_3.tiff", "case_4.tiff"]  # only the slides not done
    assert (out / "cohort.csv").read_bytes() == (reference / "cohort.csv").read_bytes()


def test_a_slide_killed_half_written_leaves_no_folder_and_is_run_again(cohort, reference, tmp_path, monkeypatch):
    out, real = tmp_path / "out", workflow.write_json
    writes: list = []

    def dies_on_the_third(path, obj):
        if Path(path).name == "cohort_slide.json":
            writes.append(path)
        if len(writes) == 3:
            raise KeyboardInterrupt  # as a kill would, between the slide's files and its record
        real(path, obj)

    monkeypatch.setattr(workflow, "write_json", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        run_cohort([cohort["slides"]], cohort["model"], out, SETTINGS)
    assert len(slide_folders(out)) == 2 and not [p for p in out.iterdir() if p.name.startswith(".")]
    monkeypatch.setattr(workflow, "write_json", real)
    (out / ".case_2-x.abc.tmp").mkdir()  # what a SIGKILL leaves: a temp folder, removed on the next run
    run_cohort([cohort["slides"]], cohort["model"], out, SETTINGS)
    assert (out / "cohort.csv").read_bytes() == (reference / "cohort.csv").read_bytes()
    assert not (out / ".case_2-x.abc.tmp").exists()


def test_a_damaged_slide_is_a_failed_row_and_the_others_complete(cohort, tmp_path, monkeypatch):
    bad = tmp_path / "scan 7 <b>.svs"
    bad.write_bytes(b"truncated")
    out = tmp_path / "out"
    result = run_cohort([bad, cohort["slides"]], cohort["model"], out, SETTINGS)
    table = rows(out)
    assert [r["slide"] for r in table][0] == bad.name and table[0]["status"] == "failed"
    assert bad.name in table[0]["error"] and table[0]["folder"] == ""
    assert [r["status"] for r in table[1:]] == ["done"] * N
    assert result["counts"] == {"done": 5, "failed": 1, "pending": 0}
    assert len(slide_folders(out)) == N
    assert "scan 7 &lt;b&gt;.svs" in (out / "cohort.html").read_text()  # names are escaped
    calls = count_predictions(monkeypatch)
    run_cohort([bad, cohort["slides"]], cohort["model"], out, SETTINGS)
    assert calls == [bad.name]  # a failed slide is tried again, the finished ones are kept


def test_a_changed_model_or_setting_is_not_reused(cohort, reference, tmp_path, monkeypatch):
    out = tmp_path / "out"
    run_cohort([cohort["slides"]], cohort["model"], out, SETTINGS)
    other = write_tiny_model(tmp_path / "other.onnx", image_size=16)  # another file: another sha256
    calls = count_predictions(monkeypatch)
    run_cohort([cohort["slides"]], other, out, SETTINGS)
    assert len(calls) == N
    table = rows(out)
    assert {r["model_sha256"] for r in table} != {r["model_sha256"] for r in rows(reference)}
    assert all(json.loads((out / r["folder"] / "cohort_slide.json").read_text())["model_sha256"] == r["model_sha256"]
               for r in table)  # fmt: skip
    assert len(slide_folders(out)) == N  # the stale folders were replaced, not kept beside
    calls.clear()
    run_cohort([cohort["slides"]], other, out, CohortSettings(model_mpp=2.0, top_k=3))
    assert len(calls) == N  # another top-k: another score, so the slides are run again
    calls.clear()
    run_cohort([cohort["slides"]], other, out, CohortSettings(model_mpp=2.0, top_k=3, batch_size=7))
    assert calls == []  # the batch size changes the speed, not the results
    calls.clear()
    run_cohort([cohort["slides"]], other, out, CohortSettings(model_mpp=2.0, top_k=3, overlap=0.5, tta="flips"))
    assert len(calls) == N  # overlapping tiles and TTA change the tiles and their probabilities: run again
    rec = json.loads((out / rows(out)[0]["folder"] / "slide.json").read_text())
    assert rec["stride"] < rec["tile_size"] and rec["tta"]["mode"] == "flips"


def test_folder_names_are_unique_stable_and_the_output_folder_is_skipped(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / "in" / sub).mkdir(parents=True)
        (tmp_path / "in" / sub / "x.svs").write_bytes(b"1")
    (tmp_path / "in" / "out").mkdir()
    (tmp_path / "in" / "out" / "heatmap.png").write_bytes(b"1")
    (tmp_path / "in" / ".hidden.tiff").write_bytes(b"1")
    slides = list_slides([tmp_path / "in"], exclude=tmp_path / "in" / "out")
    assert [s.name for s in slides] == ["a/x.svs", "b/x.svs"]
    assert len({s.folder for s in slides}) == 2 and all(s.folder.startswith("x-") for s in slides)
    assert [s.folder for s in list_slides([tmp_path / "in"], exclude=tmp_path / "in" / "out")] == [
        s.folder for s in slides
    ]  # the same names every run
    twins = [CohortSlide(tmp_path / "in" / sub / "x.svs", "x.svs") for sub in ("a", "b")]
    assert len(set(slide_folder_names(twins))) == 2  # same relative name from two inputs: still unique


def test_bad_inputs_are_refused_with_what_to_do(cohort, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="top-k"):
        CohortSettings(top_k=0)
    with pytest.raises(ConfigError, match="slides' microns per pixel"):
        CohortSettings(slide_mpp=0)
    from engine.core.errors import DataError

    with pytest.raises(DataError, match="no slides"):
        run_cohort([tmp_path], cohort["model"], tmp_path / "out", SETTINGS)
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    with pytest.raises(ConfigError, match=r"pip install histoguard\[cluster\]"):
        run_cohort([cohort["slides"]], cohort["model"], tmp_path / "out2", SETTINGS, ray="local")


def test_a_robustness_map_gives_the_median_and_10th_percentile_of_flip_eps(tmp_path):
    from tests.engine.workflows.test_slide_robust import SIDE as R_SIDE
    from tests.engine.workflows.test_slide_robust import SIZE, _slide_image, _train

    pytest.importorskip("torch")
    import torch

    from engine.export.onnx_export import export_verified, parity_batches
    from engine.models.checkpoint import make_metadata, save_checkpoint

    image = _slide_image(np.random.default_rng(0))
    (tmp_path / "slides").mkdir()
    write_pyramid(tmp_path / "slides" / "ramp.tiff", image, levels=2, mpp=0.5)
    model, meta = _train(image), make_metadata("small_cnn", ("benign", "malignant"), SIZE, {"method": "clean"})
    save_checkpoint(tmp_path / "model" / "best.pt", model, meta)
    x = torch.rand(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    checks = parity_batches(model, x, torch.tensor([0, 1, 0, 1]), 4 / 255)
    export_verified(model, tmp_path / "model.onnx", meta, SIZE, checks)
    settings = CohortSettings(model_mpp=1.0, robustness="fgsm", robust_limit=24)
    run_cohort([tmp_path / "slides"], tmp_path / "model.onnx", tmp_path / "out", settings)
    (row,) = rows(tmp_path / "out")
    tiles = list(csv.DictReader((tmp_path / "out" / row["folder"] / "tiles.csv").open()))
    k = np.array([float(t["flip_eps_255"]) for t in tiles if t["flip_eps_255"] != ""])
    assert len(k) == 24 and R_SIDE == 1024
    assert float(row["median_flip_eps_255"]) == np.median(k)
    assert float(row["p10_flip_eps_255"]) == np.sort(k)[int(np.floor(0.1 * (len(k) - 1)))]  # a real tile's value
    assert "Flip eps (FGSM up to 16/255)" in (tmp_path / "out" / "cohort.html").read_text()
