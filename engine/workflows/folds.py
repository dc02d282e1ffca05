"""``histoguard experiment --folds K``: the study on K patient-disjoint folds, the literature's protocol for
BreakHis. scikit-learn's ``StratifiedGroupKFold`` cuts the patients into K folds of about equal class balance
(no patient in two folds); in run k, fold k is the test set, fold k+1 (mod K) the validation set and the rest
the training set, so every patient is tested exactly once. Each run is a whole run folder (``fold_k``), kept;
the summary (mean ± sd over folds, with each fold's value) goes to cv.json and cv.md (``engine.runs.cv``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.core.config import ExperimentConfig
from engine.core.errors import ConfigError, DataError, RunFolderError, option
from engine.core.fileio import write_json, write_text
from engine.core.progress import CancelToken, Progress, ProgressCallback, report
from engine.data.prepare import load_dataset
from engine.data.records import Dataset
from engine.data.split import Split, save_split
from engine.report.cv import cv_summary, markdown
from engine.runs.cv import CV_SUMMARY, CV_TEXT, fold_dir, fold_split
from engine.runs.folder import RunFolder
from engine.workflows.experiment import run_experiment

log = logging.getLogger(__name__)


def patient_folds(dataset: Dataset, k: int, seed: int) -> list[Split]:
    """K splits of ``dataset`` by patient: test = fold i, val = fold i+1, train = the rest."""
    from sklearn.model_selection import StratifiedGroupKFold

    patients = [r.patient_id for r in dataset.records]
    if any(p is None for p in patients):
        raise DataError(
            "patient-level cross-validation needs a patient id for every image; use BreakHis names, "
            f"<class>/<patient>/<image> folders, a CSV manifest with a patient_id column, or {option('patient_regex')}"
        )
    labels = np.array([dataset.classes.index(r.label) for r in dataset.records])
    per_class = [len({p for p, y in zip(patients, labels) if y == c}) for c in range(len(dataset.classes))]
    if k < 3 or k > min(per_class):
        raise ConfigError(
            f"{k} folds need 3 or more folds and at least {k} patients of each class (the smallest class has "
            f"{min(per_class)}); choose between 3 and {max(3, min(per_class))} folds"
        )
    folder = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    for i, (_, test) in enumerate(folder.split(np.zeros(len(labels)), labels, groups=patients)):
        fold_of[test] = i
    splits = []
    for i in range(k):
        names = np.where(fold_of == i, "test", np.where(fold_of == (i + 1) % k, "val", "train"))
        shares = tuple(float(np.mean(names == s)) for s in ("train", "val", "test"))
        splits.append(Split("patient", seed, shares, tuple(names.tolist())))
    return splits


def run_folds(
    cfg: ExperimentConfig,
    out: str | Path,
    k: int,
    *,
    force: bool = False,
    resume: bool = False,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Run the study on each fold into ``out/fold_i`` (a finished fold is kept on ``resume``) and return the
    summary (also written as ``out/cv.json`` and ``out/cv.md``)."""
    root = Path(out).expanduser()
    if (root / CV_SUMMARY).is_file() and not (force or resume):
        raise RunFolderError(f"{root} holds a finished cross-validation; use another folder, {option('force')} "
                             f"or {option('resume')}")  # fmt: skip
    if cfg.data.split_level != "patient" or cfg.data.split_file:
        raise ConfigError("cross-validation makes its own patient-level folds: leave out --split-file/--split-level")
    dataset = load_dataset(cfg.data, on_progress, cancel)
    splits = patient_folds(dataset, k, cfg.data.split_seed)
    reports, runs = [], []
    for i, split in enumerate(splits, start=1):
        split_path = fold_split(root, i)
        save_split(split_path, dataset, split)
        fold_cfg = replace(cfg, data=replace(cfg.data, split_file=str(split_path.resolve())))
        run = fold_dir(root, i)
        log.info("cross-validation fold %d/%d into %s", i, k, run)
        if resume and RunFolder.state(run, fold_cfg) == "finished":
            reports.append(RunFolder.open(run).read_report())
        else:
            reports.append(run_experiment(fold_cfg, run, force=force, resume=resume,
                                          on_progress=_in_fold(on_progress, i, k), cancel=cancel))  # fmt: skip
        runs.append(run.name)
    summary = cv_summary(reports, k=k, seed=cfg.data.split_seed, runs=runs)
    write_text(root / CV_TEXT, markdown(summary))
    write_json(root / CV_SUMMARY, summary)  # last: it marks a finished cross-validation
    report(on_progress, "done", 1, 1, message=f"cross-validation summary written to {root / CV_TEXT}")
    return summary


def _in_fold(on_progress: ProgressCallback | None, i: int, k: int) -> ProgressCallback | None:
    """Progress events of fold ``i`` with 'fold i/k: ' in front of their stage."""
    if on_progress is None:
        return None

    def forward(p: Progress) -> None:
        if p.stage != "done":
            on_progress(replace(p, stage=f"fold {i}/{k}: {p.stage}"))

    return forward
