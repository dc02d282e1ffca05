"""``histoguard experiment --folds 3`` end to end: three complete fold run folders whose test patients cover
every patient once, cv.json/cv.md whose means are those of the fold reports, resume keeps finished folds, and
opening the cross-validation folder opens its first fold with the summary."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from engine import api
from engine.cli import main
from tests.conftest import CV_RUN


def _test_patients(fold) -> set[str]:
    with (fold / "split.csv").open(encoding="utf-8") as handle:
        return {r["patient_id"] for r in csv.DictReader(handle) if r["split"] == "test"}


def test_three_folds_test_every_patient_once(cv_run):
    folds = [cv_run / f"fold_{k}" for k in (1, 2, 3)]
    for fold in folds:
        assert (fold / "report.json").is_file() and (fold / "model_a.onnx").is_file()
    tested = [_test_patients(f) for f in folds]
    assert not (tested[0] & tested[1]) and not (tested[0] & tested[2]) and not (tested[1] & tested[2])
    assert len(set().union(*tested)) == 10  # 5 patients per class, each tested exactly once


def test_summary_means_are_the_fold_reports(cv_run):
    summary = json.loads((cv_run / "cv.json").read_text(encoding="utf-8"))
    reports = [json.loads((cv_run / f"fold_{k}" / "report.json").read_text(encoding="utf-8")) for k in (1, 2, 3)]
    assert summary["k"] == 3 and [f["run"] for f in summary["folds"]] == ["fold_1", "fold_2", "fold_3"]
    for row in summary["evaluations"]:
        values = [
            next(e for e in r["evaluations"] if (e["model"], e["condition"], e["attack_source"], e["level"]) ==
                 (row["model"], row["condition"], row["attack_source"], row["level"]))["accuracy"]
            for r in reports
        ]  # fmt: skip
        assert row["accuracy"]["values"] == values
        assert row["accuracy"]["mean"] == pytest.approx(np.mean(values))
        assert row["accuracy"]["sd"] == pytest.approx(np.std(values, ddof=1))
    md = (cv_run / "cv.md").read_text(encoding="utf-8")
    assert "# HistoGuard cross-validation (3 folds)" in md and " ± " in md


def test_resume_keeps_the_finished_folds(cv_run, capsys):
    data = json.loads((cv_run / "fold_1" / "config.json").read_text(encoding="utf-8"))["data"]["data"]
    before = {k: (cv_run / f"fold_{k}" / "report.json").stat().st_mtime_ns for k in (1, 2, 3)}
    assert main(["experiment", "--data", data, "--out", str(cv_run), *CV_RUN, "--resume"]) == 0
    assert {k: (cv_run / f"fold_{k}" / "report.json").stat().st_mtime_ns for k in (1, 2, 3)} == before
    assert "mean ± sd over the 3 folds" in capsys.readouterr().out
    assert main(["experiment", "--data", data, "--out", str(cv_run), *CV_RUN]) != 0  # finished: not overwritten
    assert "--force" in capsys.readouterr().err


def test_opening_the_cv_folder_opens_its_first_fold(cv_run):
    run = api.open_run(cv_run)
    assert run.path == cv_run / "fold_1" and run.cross_validation["k"] == 3
    assert api.open_run(cv_run / "fold_2").cross_validation == run.cross_validation
