"""A finished run's calibration: every model's temperature in its checkpoint, its ONNX metadata and
report.json; ECE and Brier before and after with intervals; reliability bins, the coverage curve and the
review band consistent with the test split; report.md and report.html show them."""

from __future__ import annotations

import json

import pytest

from engine.core.metadata import ModelMeta
from engine.deploy.model_info import onnx_meta
from engine.models.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def report(run_dir) -> dict:
    return json.loads((run_dir / "report.json").read_text(encoding="utf-8"))


def test_every_model_carries_its_temperature_everywhere(run_dir, report):
    section = report["calibration"]
    assert set(section) == {"A", "B", "C"}
    for name, entry in section.items():
        ckpt = ModelMeta.from_dict(read_checkpoint(run_dir / f"model_{name.lower()}" / "best.pt")["metadata"])
        assert ckpt.calibration == entry["fit"] == report["training"][name]["calibration"]
        assert onnx_meta(run_dir / f"model_{name.lower()}.onnx").temperature == entry["temperature"] == ckpt.temperature
        fit = entry["fit"]
        assert fit["method"] == "temperature scaling" and fit["n_images"] == report["split"]["val"]["n_images"]
        if fit["fitted"]:
            assert fit["nll"][1] <= fit["nll"][0] + 1e-12  # the fit minimises the validation NLL
        else:
            assert entry["temperature"] == 1.0 and fit["nll"][0] == fit["nll"][1] and "no maximum" in fit["note"]


def test_ece_brier_bins_curve_and_band_are_consistent(report):
    n_test, n_val = report["split"]["test"]["n_images"], report["split"]["val"]["n_images"]
    clean = {r["model"]: r["accuracy"] for r in report["robustness"]["rows"] if r["kind"] == "clean"}
    for model, entry in report["calibration"].items():
        for split, n in (("val", n_val), ("test", n_test)):
            for kind in ("raw", "calibrated"):
                m = entry[split][kind]
                assert m["n"] == n and sum(b["n"] for b in m["reliability"]) == n
                assert 0 <= m["ece"] <= 1 and 0 <= m["brier"] <= 1
                assert m["ci"]["ece"][0] <= m["ci"]["ece"][1] and m["ci"]["brier"][0] <= m["ci"]["brier"][1]
        curve = entry["selective"]["calibrated"]
        assert curve[0]["coverage"] == 1.0 and curve[0]["n"] == n_test
        band = entry["review_band"]
        assert band["band"] == [0.2, 0.8] and band["n"] == n_test and 0 <= band["flagged"] <= n_test
        assert band["accuracy_all"] == pytest.approx(curve[0]["accuracy"]) == pytest.approx(clean[model])


def test_report_shows_the_calibration(run_dir):
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "## Calibration (clean images)" in md and "![reliability](reliability.png)" in md
    assert (run_dir / "reliability.png").is_file() and (run_dir / "coverage_accuracy.png").is_file()
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<h2>Calibration (clean images)</h2>" in html and "ECE validation" in html
