"""The cross-validation folder: K run folders side by side, and the summary over them.

    splits/fold_k.csv  the k-th fold's patient-disjoint train/val/test split (engine.data.split format)
    fold_k/            a complete run folder (engine.runs.folder) trained and tested on that split
    cv.json            the per-fold results and their mean and sd (written last: it marks a finished study)
    cv.md              the same as text

A fold folder is an ordinary run folder: it opens, exports and diagnoses like any other. The app opening the
cross-validation folder itself opens its first fold, with the summary beside it. Torch-free.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

CV_SUMMARY, CV_TEXT, SPLITS_DIR = "cv.json", "cv.md", "splits"
_FOLD = re.compile(r"fold_(\d+)$")


def fold_dir(root: str | Path, k: int) -> Path:
    return Path(root) / f"fold_{k}"


def fold_split(root: str | Path, k: int) -> Path:
    return Path(root) / SPLITS_DIR / f"fold_{k}.csv"


def is_cv_folder(path: str | Path) -> bool:
    """A cross-validation folder: it has the summary, or the splits and a first fold."""
    root = Path(path).expanduser()
    return (root / CV_SUMMARY).is_file() or ((root / SPLITS_DIR).is_dir() and fold_dir(root, 1).is_dir())


def read_summary(root: str | Path) -> dict | None:
    """cv.json of a cross-validation folder (None while the study is unfinished or unreadable)."""
    try:
        return json.loads((Path(root) / CV_SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def summary_of_fold(run: str | Path) -> dict | None:
    """The summary of the cross-validation a run folder is a fold of (None for a run on its own)."""
    run = Path(run)
    return read_summary(run.parent) if _FOLD.match(run.name) else None


def first_fold(root: str | Path) -> Path:
    """The fold a cross-validation folder opens at (its lowest-numbered fold folder)."""
    folds = sorted((int(m.group(1)), p) for p in Path(root).iterdir() if p.is_dir() and (m := _FOLD.match(p.name)))
    return folds[0][1] if folds else fold_dir(root, 1)
