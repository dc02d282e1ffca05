"""Patient-level folds (every patient tested exactly once, validation the next fold, classes in every fold) and
the cross-validation summary (mean and sample sd of each fold's figure, per-fold values kept)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.core.errors import ConfigError, DataError
from engine.data.records import Dataset, ImageRecord
from engine.report.cv import cv_summary, mean_sd, spread
from engine.workflows.folds import patient_folds


def _dataset(patients_per_class: int = 6, images: int = 3, missing_id: bool = False) -> Dataset:
    records = [
        ImageRecord(Path(f"/x/{c}-{p}-{i}.png"), c, None if missing_id and p == 0 else f"{c}-{p}")
        for c in ("benign", "malignant")
        for p in range(patients_per_class)
        for i in range(images + p % 2)  # patients of unequal size
    ]
    return Dataset(Path("/x"), "csv", records, ("benign", "malignant"))


def test_every_patient_is_tested_once_and_never_in_two_splits():
    ds = _dataset()
    splits = patient_folds(ds, 3, seed=0)
    tested = []
    for i, split in enumerate(splits):
        by_patient: dict[str, set] = {}
        for r, s in zip(ds.records, split.assignment):
            by_patient.setdefault(r.patient_id, set()).add(s)
        assert all(len(s) == 1 for s in by_patient.values())  # a patient lies in one split only
        test = {p for p, s in by_patient.items() if s == {"test"}}
        val = {p for p, s in by_patient.items() if s == {"val"}}
        nxt = {r.patient_id for r, s in zip(ds.records, splits[(i + 1) % 3].assignment) if s == "test"}
        assert val == nxt and {p.split("-")[0] for p in test} == {"benign", "malignant"}  # stratified
        tested += sorted(test)
    assert sorted(tested) == sorted({r.patient_id for r in ds.records})  # each exactly once
    assert all(sum(split.ratios) == pytest.approx(1.0) for split in splits)
    assert [s.assignment for s in patient_folds(ds, 3, seed=0)] == [s.assignment for s in splits]  # seeded


def test_bad_fold_counts_and_missing_patients_are_refused():
    with pytest.raises(ConfigError, match="at least 7 patients of each class"):
        patient_folds(_dataset(6), 7, seed=0)
    with pytest.raises(ConfigError, match="3 or more folds"):
        patient_folds(_dataset(6), 2, seed=0)
    with pytest.raises(DataError, match="patient id for every image"):
        patient_folds(_dataset(6, missing_id=True), 3, seed=0)


def test_spread_is_the_mean_and_sample_sd_of_the_defined_folds():
    s = spread([0.8, None, 0.9, 0.7])
    assert s["values"] == [0.8, None, 0.9, 0.7]
    assert s["mean"] == pytest.approx(0.8) and s["sd"] == pytest.approx(np.std([0.8, 0.9, 0.7], ddof=1))
    assert spread([0.5])["sd"] is None and spread([None])["mean"] is None
    assert mean_sd(s) == "0.800 ± 0.100" and mean_sd(spread([None])) == "—"


def _report(acc: float) -> dict:
    e = {"model": "A", "condition": "clean", "attack_source": None, "eps": 0.0, "level": "image", "accuracy": acc,
         "n": 10}  # fmt: skip
    rows = [{"model": "A", "attack": "none", "kind": "clean", "eps": 0.0, "accuracy": acc, "missed_cancer_rate": 0.1},
            {"model": "A", "attack": "pgd", "kind": "white-box", "eps": 8 / 255, "accuracy": acc / 2,
             "missed_cancer_rate": 0.5}]  # fmt: skip
    return {
        "split": {"test": {"n_images": 10, "n_patients": 2}},
        "evaluations": [e],
        "robustness": {"rows": rows},
        "calibration": {"A": {"temperature": 1.5, "test": {"raw": {"ece": 0.2}, "calibrated": {"ece": 0.1}}}},
    }


def test_the_summary_collects_each_folds_figure():
    summary = cv_summary([_report(0.8), _report(0.6), _report(0.7)], k=3, seed=0, runs=["fold_1", "fold_2", "fold_3"])
    (e,) = summary["evaluations"]
    assert e["accuracy"]["values"] == [0.8, 0.6, 0.7] and e["accuracy"]["mean"] == pytest.approx(0.7)
    pgd = next(r for r in summary["robustness"] if r["attack"] == "pgd")
    assert pgd["accuracy"]["values"] == [0.4, 0.3, 0.35]
    assert summary["calibration"]["A"]["ece_test_calibrated"]["mean"] == pytest.approx(0.1)
    assert [f["run"] for f in summary["folds"]] == ["fold_1", "fold_2", "fold_3"]
