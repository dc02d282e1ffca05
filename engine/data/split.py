"""Patient-level train/val/test splits (stratified by class, deterministic by seed), saved as CSV.

Written by hand rather than with scikit-learn: ``GroupShuffleSplit`` does not stratify, and
``StratifiedGroupKFold`` makes k folds rather than train/val/test ratios. Patients are grouped by their
majority label and each group is shuffled with the seed and cut by the ratios, with at least one patient
of each class in every split whenever the class has three patients or more.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.core.errors import DataError, option
from engine.core.fileio import write_text
from engine.data.records import Dataset, ImageRecord

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
LEAK_WARNING = (
    "image-level split: images of one patient can land in train and test, which inflates accuracy "
    "(by up to tens of points on BreakHis); use it only to reproduce image-level studies"
)


@dataclass(frozen=True)
class Split:
    """``assignment[i]`` is the split ("train"|"val"|"test") of ``dataset.records[i]``."""

    level: str  # "patient" | "image"
    seed: int
    ratios: tuple[float, float, float]
    assignment: tuple[str, ...]

    def indices(self, name: str) -> list[int]:
        return [i for i, s in enumerate(self.assignment) if s == name]


def make_split(dataset: Dataset, *, ratios=(0.7, 0.15, 0.15), seed: int = 0, level: str = "patient") -> Split:
    ratios = _check_ratios(ratios)
    if level == "image":
        log.warning(LEAK_WARNING)
        units = {i: str(i) for i in range(len(dataset.records))}
    elif level == "patient":
        units = _patient_units(dataset)
    else:
        raise DataError(f"split level {level!r} must be 'patient' or 'image'")
    unit_split = _assign_units(units, dataset, ratios, seed)
    assignment = tuple(unit_split[units[i]] for i in range(len(dataset.records)))
    split = Split(level, seed, ratios, assignment)
    _check_split(split, dataset)
    return split


def _check_ratios(ratios) -> tuple[float, float, float]:
    try:
        r = tuple(float(x) for x in ratios)
    except (TypeError, ValueError):
        r = ()
    if len(r) != 3 or not all(map(math.isfinite, r)) or min(r) < 0 or r[0] <= 0 or r[2] <= 0 or abs(sum(r) - 1) > 1e-6:
        raise DataError(f"split ratios {ratios} must be three numbers train,val,test >= 0 that sum to 1")
    return r


def _patient_units(dataset: Dataset) -> dict[int, str]:
    missing = [r.path for r in dataset.records if r.patient_id is None]
    if missing:
        raise DataError(
            f"{len(missing)} images have no patient id (e.g. {missing[0].name}), so a patient-level split is "
            "impossible; use BreakHis names, <class>/<patient>/<image> folders, a CSV manifest with a "
            f"patient_id column, or {option('patient_regex')}; {option('split_level', 'image')} splits by image "
            "but leaks patients"
        )
    return {i: r.patient_id for i, r in enumerate(dataset.records)}


def _assign_units(units: dict[int, str], dataset: Dataset, ratios, seed: int) -> dict[str, str]:
    labels_of: dict[str, Counter] = defaultdict(Counter)
    for i, unit in units.items():
        labels_of[unit][dataset.records[i].label] += 1
    strata: dict[str, list[str]] = defaultdict(list)
    for unit in sorted(labels_of):
        majority = max(sorted(labels_of[unit]), key=lambda c: labels_of[unit][c])
        strata[majority].append(unit)
    rng = np.random.default_rng(seed)
    result: dict[str, str] = {}
    for label in sorted(strata):
        members = strata[label]
        order = rng.permutation(len(members))
        n_train, n_val, _ = _counts(len(members), ratios)
        for rank, idx in enumerate(order):
            result[members[idx]] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return result


def _counts(n: int, ratios) -> tuple[int, int, int]:
    """Units per split for a stratum of ``n``; at least one in train and test (and val if asked) when n >= 3."""
    n_test = round(n * ratios[2])
    n_val = round(n * ratios[1])
    if n >= 3:
        n_test = max(n_test, 1)
        n_val = max(n_val, 1) if ratios[1] > 0 else 0
    n_train = n - n_test - n_val
    if n_train < 1:
        n_train, n_val = 1, max(0, n - 1 - n_test)
    return n_train, n_val, n - n_train - n_val


def _check_split(split: Split, dataset: Dataset) -> None:
    for name in ("train", "test"):
        labels = {dataset.records[i].label for i in split.indices(name)}
        if len(labels) < 2:
            raise DataError(
                f"the {name} split has images of {sorted(labels) or 'no'} class only: too few patients per class "
                f"({dataset.summary()['patients_per_class']}); add patients or change the split ratios"
            )


def split_rows(dataset: Dataset, split: Split) -> list[dict]:
    return [
        {
            "path": str(r.path),
            "label": r.label,
            "patient_id": r.patient_id or "",
            "split": s,
            "magnification": r.magnification or "",
            "tumor_type": r.tumor_type or "",
        }
        for r, s in zip(dataset.records, split.assignment)
    ]


def split_csv_text(dataset: Dataset, split: Split) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(split_rows(dataset, split)[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(split_rows(dataset, split))
    return out.getvalue()


def split_hash(dataset: Dataset, split: Split) -> str:
    """sha256 over the sorted (file name, label, patient, split) rows: equal for equal splits on any machine."""
    rows = sorted(f"{r.path.name},{r.label},{r.patient_id},{s}" for r, s in zip(dataset.records, split.assignment))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def save_split(path: str | Path, dataset: Dataset, split: Split) -> None:
    write_text(path, split_csv_text(dataset, split))


def load_split(path: str | Path, dataset: Dataset, *, level: str = "patient", seed: int = 0) -> Split:
    """Re-apply a saved ``split.csv`` to ``dataset``; every record must be listed, with the same label.

    Checked like a new split: at ``level="patient"`` no patient may lie in two splits (a file that does is an
    image-level split and is refused, not reported as patient-level), and train and test must each hold
    every class. ``level="image"`` accepts any assignment and records it as image-level."""
    if level not in ("patient", "image"):
        raise DataError(f"split level {level!r} must be 'patient' or 'image'")
    rows = _read_split_rows(path)
    assignment, patients = [], []
    for r in dataset.records:
        row = rows.get(str(r.path))
        if row is None or row["split"] not in SPLITS or row["label"] != r.label:
            raise DataError(f"split file {path} does not match the dataset at {r.path}; make a new split instead")
        assignment.append(row["split"])
        patients.append(r.patient_id or row.get("patient_id") or None)
    split = Split(level, seed, (0.0, 0.0, 0.0), tuple(assignment))
    if level == "patient":
        _check_patient_level(path, dataset, patients, split.assignment)
    else:
        log.warning(LEAK_WARNING)
    _check_saved_classes(path, dataset, split)
    return split


def _read_split_rows(path: str | Path) -> dict[str, dict]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"path", "label", "split"} - set(reader.fieldnames or ())
            if missing:
                raise KeyError(f"missing columns {sorted(missing)}")
            return {row["path"]: row for row in reader}
    except (OSError, UnicodeDecodeError, KeyError, csv.Error) as exc:
        raise DataError(f"cannot read split file {path}: {exc}") from exc


def _check_patient_level(path, dataset: Dataset, patients: list[str | None], assignment: tuple[str, ...]) -> None:
    """A saved split used as patient-level must keep every patient in one split."""
    unknown = [r.path.name for r, p in zip(dataset.records, patients) if p is None]
    if unknown:
        raise DataError(
            f"split file {path} cannot be used as a patient-level split: {len(unknown)} images have no patient id "
            f"(e.g. {unknown[0]}); pass {option('split_level', 'image')} to use it as an image-level split, or give "
            f"patient ids ({option('patient_regex')}, a CSV manifest with a patient_id column) and make a new split"
        )
    splits_of: dict[str, set[str]] = defaultdict(set)
    for patient, name in zip(patients, assignment):
        splits_of[patient].add(name)
    # name a patient in train and test first: that leak is the one that inflates test accuracy
    leaked = sorted((p for p, names in splits_of.items() if len(names) > 1),
                    key=lambda p: (not {"train", "test"} <= splits_of[p], p))  # fmt: skip
    if leaked:
        names = [s for s in SPLITS if s in splits_of[leaked[0]]]
        where = f"both {names[0]} and {names[1]}" if len(names) == 2 else "all of train, val and test"
        raise DataError(
            f"split file {path} puts patient {leaked[0]} in {where} ({len(leaked)} patients are in more than "
            f"one split): it is an image-level split, not a patient-level one; pass {option('split_level', 'image')} "
            "to use it as one (its accuracy is inflated by the leaked patients), or make a new patient-level split"
        )


def _check_saved_classes(path, dataset: Dataset, split: Split) -> None:
    for name in ("train", "test"):
        present = {dataset.records[i].label for i in split.indices(name)}
        missing = [c for c in dataset.classes if c not in present]
        if missing:
            raise DataError(
                f"split file {path} leaves the {name} split with no {' and no '.join(missing)} image, so the model "
                f"cannot be {'trained' if name == 'train' else 'tested'} on both classes; make a new split instead"
            )


def split_summary(dataset: Dataset, split: Split) -> dict:
    out: dict = {"level": split.level, "seed": split.seed, "ratios": list(split.ratios)}
    if split.level == "image":
        out["warning"] = LEAK_WARNING
    for name in SPLITS:
        idx = split.indices(name)
        recs: list[ImageRecord] = [dataset.records[i] for i in idx]
        out[name] = {
            "n_images": len(idx),
            "per_class": {c: sum(r.label == c for r in recs) for c in dataset.classes},
            "n_patients": len({r.patient_id for r in recs if r.patient_id}),
        }
    out["hash"] = split_hash(dataset, split)
    return out
