"""Every point estimate of a finished run's report.json has its interval beside it, the comparisons are
consistent with the rows they compare, and report.md / the CLI table show them."""

from __future__ import annotations

import json
import re

import pytest

from engine.report.tables import text_table

INTERVAL = re.compile(r"\d\.\d\d \(\d\.\d\d–\d\.\d\d\)")


@pytest.fixture(scope="module")
def report(run_dir) -> dict:
    return json.loads((run_dir / "report.json").read_text(encoding="utf-8"))


def _check(row: dict, keys) -> None:
    """Every metric has its interval entry; an undefined metric has no interval, accuracy (resting on all the
    test patients) always has one, and an interval lies in [0, 1] (bounds in order)."""
    assert row["ci"]["accuracy"] is not None
    for k in keys:
        ci = row["ci"][k]
        assert row[k] is not None or ci is None, (k, row)
        if ci is not None:
            assert 0 <= ci[0] <= ci[1] <= 1, (k, ci)


def test_the_bootstrap_is_recorded(report):
    rec = report["intervals"]
    assert rec["method"].startswith("patient-level cluster bootstrap") and rec["confidence"] == 0.95
    assert rec["n_resamples"] == 1000 and rec["seed"] == report["config"]["train"]["seed"]
    assert rec["unit"] == "patient" and rec["n_units"] == report["split"]["test"]["n_patients"]


def test_every_evaluation_sweep_and_robustness_row_has_intervals(report):
    metrics = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "precision", "f1", "roc_auc",
               "missed_cancer_rate")  # fmt: skip
    for e in report["evaluations"]:
        _check(e, metrics)
    for r in report["sweep"]:
        _check(r, ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "missed_cancer_rate"))
    rows = report["robustness"]["rows"]
    assert {r["kind"] for r in rows} >= {"clean", "white-box", "transfer", "baseline", "natural", "black-box"}
    for r in rows:
        _check(r, ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "missed_cancer_rate"))


def test_comparisons_pair_every_model_on_the_same_images(report):
    comps = report["robustness"]["comparisons"]
    plan = report["robustness"]["plan"]
    assert {(c["x"], c["y"]) for c in comps} == {("A", "B"), ("A", "C"), ("B", "C")}
    # clean, each white-box attack at each eps, and the worst case over every attack at each eps
    assert len(comps) == 3 * (1 + (len(plan["attacks"]) + 1) * len(plan["eps_values"]))
    assert {c["eps"] for c in comps if c["attack"] == "worst-case"} == set(plan["eps_values"])
    clean = {r["model"]: r["accuracy"] for r in report["robustness"]["rows"] if r["kind"] == "clean"}
    for c in comps:
        assert c["accuracy_x"] - c["accuracy_y"] == pytest.approx(c["difference"])
        assert c["difference"] == pytest.approx((c["only_x_right"] - c["only_y_right"]) / c["n"])
        assert 0 < c["p_value"] <= 1 and c["ci"][0] <= c["ci"][1]
        if c["attack"] == "none":
            assert (c["accuracy_x"], c["accuracy_y"]) == pytest.approx((clean[c["x"]], clean[c["y"]]))


def test_report_and_cli_table_show_the_intervals(run_dir, report):
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "confidence intervals from a patient-level bootstrap (1000 resamples" in md
    assert len(INTERVAL.findall(md)) > 50 and "### Paired comparisons" in md
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Paired comparisons" in html and len(INTERVAL.findall(html)) > 50
    lines = text_table(report["evaluations"]).splitlines()
    e = next(e for e in report["evaluations"] if e["level"] == "image")
    lo, hi = e["ci"]["accuracy"]
    assert lines[2].startswith("Model A, clean") and f"({lo:.2f}–{hi:.2f})" in lines[3]
