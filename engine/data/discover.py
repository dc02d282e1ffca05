"""Find a labelled dataset in a folder or a CSV manifest.

Three layouts are recognised, in this order:
1. a CSV manifest ``path,label[,patient_id]`` (``--data`` names the file; extra columns are ignored);
2. BreakHis file names anywhere below the root (the official ``BreaKHis_v1/...`` tree or class folders);
3. class folders ``<root>/<class>/<image>``, or ``<root>/<class>/<patient>/<image>`` where the first
   sub-folder names the patient.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

from engine.core.errors import DataError, option
from engine.data.breakhis import normalise_magnification, parse_breakhis_name
from engine.data.records import Dataset, ImageRecord, Skipped

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
DEFAULT_POSITIVE = "malignant"
EXPECTED = (
    "expected BreakHis file names (SOB_B_A-14-22549AB-40-001.png) anywhere below it, "
    "class folders <root>/<class>/<image>, or a CSV manifest with columns path,label[,patient_id]"
)


def discover(
    data: str | Path,
    *,
    positive_class: str | None = DEFAULT_POSITIVE,
    magnification: str | None = None,
    patient_regex: str | None = None,
) -> Dataset:
    """Return the dataset at ``data`` (a folder or a CSV file); raise DataError saying what is wrong.

    ``positive_class=None`` (the app, before the user has chosen) takes "malignant" when the dataset has
    it, else the second class in sorted order; the caller shows the choice and lets the user change it.
    """
    data = Path(data).expanduser()
    if not data.exists():
        raise DataError(f"{data} does not exist; give a dataset folder or a CSV manifest")
    if data.is_file():
        if data.suffix.lower() != ".csv":
            raise DataError(f"{data} is a file but not a CSV manifest; {EXPECTED}")
        dataset = _from_csv(data)
    else:
        dataset = _from_folder(data)
    if patient_regex:
        dataset = _apply_patient_regex(dataset, patient_regex)
    if magnification:
        dataset = _filter_magnification(dataset, magnification)
    dataset.classes = _order_classes(dataset, positive_class)
    dataset.synthetic = _is_synthetic(dataset.root)
    log.info("found %d images (%s) in %s; %d skipped", len(dataset.records), dataset.kind, data, len(dataset.skipped))
    return dataset


def _image_files(root: Path) -> list[Path]:
    """Files below ``root``, leaving out hidden files and folders (.ipynb_checkpoints, .Trash-1000, ...)."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _from_folder(root: Path) -> Dataset:
    files = _image_files(root)
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise DataError(f"folder {root} has no images ({len(files)} other files); {EXPECTED}")
    if any(parse_breakhis_name(p.name) for p in images):
        return _from_breakhis(root, images)
    return _from_class_folders(root, images)


def _from_breakhis(root: Path, images: list[Path]) -> Dataset:
    records, skipped = [], []
    for path in images:
        name = parse_breakhis_name(path.name)
        if name is None:
            skipped.append(
                Skipped(path, "file name is not a BreakHis name (SOB_<B|M>_<type>-<yy>-<slide>-<mag>-<seq>.png)")
            )
            continue
        records.append(ImageRecord(path, name.label, name.patient_id, name.magnification, name.tumor_type))
    return Dataset(root, "breakhis", records, ("benign", "malignant"), skipped)


def _from_class_folders(root: Path, images: list[Path]) -> Dataset:
    records, skipped = [], []
    for path in images:
        parts = path.relative_to(root).parts
        if len(parts) < 2:
            skipped.append(Skipped(path, "image directly in the root folder; put it in a <class> folder"))
            continue
        patient = parts[1] if len(parts) >= 3 else None
        records.append(ImageRecord(path, parts[0], patient))
    return Dataset(root, "class-folders", records, ("", ""), skipped)


def _from_csv(manifest: Path) -> Dataset:
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = set(reader.fieldnames or ())
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read CSV manifest {manifest}: {exc}") from exc
    if not {"path", "label"} <= columns:
        raise DataError(f"CSV manifest {manifest} needs the columns path,label[,patient_id]; it has {sorted(columns)}")
    records, skipped = [], []
    for row in rows:
        path = (manifest.parent / row["path"]).resolve() if row["path"] else manifest.parent
        if not row["path"] or not path.is_file():
            skipped.append(Skipped(path, "listed in the manifest but not found"))
            continue
        label = (row["label"] or "").strip()
        if not label:
            skipped.append(Skipped(path, "listed in the manifest without a label"))
            continue
        mag = row.get("magnification") or None
        try:
            mag = normalise_magnification(mag) if mag else None
        except ValueError as exc:
            raise DataError(f"CSV manifest {manifest}, row {row['path']}: {exc} (use 40X, 100X, 200X or 400X)") from exc
        records.append(
            ImageRecord(path, label, (row.get("patient_id") or "").strip() or None, mag, row.get("tumor_type") or None)
        )
    return Dataset(manifest.parent, "csv", records, ("", ""), skipped)


def _apply_patient_regex(dataset: Dataset, pattern: str) -> Dataset:
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise DataError(
            f"the patient id pattern {pattern!r} ({option('patient_regex')}) is not a valid regular expression: {exc}"
        ) from exc
    records, skipped = [], list(dataset.skipped)
    for r in dataset.records:
        m = regex.search(r.path.name)
        if m is None:
            skipped.append(Skipped(r.path, f"file name does not match the patient id pattern {pattern!r}"))
            continue
        pid = m.group(1) if regex.groups else m.group(0)
        records.append(ImageRecord(r.path, r.label, pid, r.magnification, r.tumor_type))
    return Dataset(dataset.root, dataset.kind, records, dataset.classes, skipped)


def _filter_magnification(dataset: Dataset, magnification: str) -> Dataset:
    try:
        mag = normalise_magnification(magnification)
    except ValueError as exc:
        raise DataError(f"magnification {magnification!r} is not one of 40X, 100X, 200X, 400X") from exc
    kept = [r for r in dataset.records if r.magnification == mag]
    if not kept:
        found = sorted({r.magnification or "unknown" for r in dataset.records})
        raise DataError(f"no images at magnification {mag} in {dataset.root}; found {', '.join(found)}")
    return Dataset(dataset.root, dataset.kind, kept, dataset.classes, dataset.skipped)


def _order_classes(dataset: Dataset, positive: str | None) -> tuple[str, str]:
    labels = sorted({r.label for r in dataset.records})
    if not labels:
        raise DataError(f"no usable images in {dataset.root} ({len(dataset.skipped)} skipped); {EXPECTED}")
    if len(labels) == 1:
        raise DataError(
            f"{dataset.root} has only one class ({labels[0]!r}, {len(dataset.records)} images); "
            "HistoGuard trains benign-vs-malignant style classifiers and needs images of two classes"
        )
    if len(labels) > 2:
        raise DataError(f"{dataset.root} has {len(labels)} classes {labels}; HistoGuard needs exactly two")
    if positive is None:
        positive = DEFAULT_POSITIVE if DEFAULT_POSITIVE in labels else labels[1]
    if positive not in labels:
        raise DataError(
            f"the positive (disease) class {positive!r} is not one of the classes {labels}; "
            f"choose {option('positive_class', labels[1])} (or the other one)"
        )
    negative = labels[0] if labels[1] == positive else labels[1]
    return (negative, positive)


def _is_synthetic(root: Path) -> bool:
    from engine.data.demo import is_synthetic_demo

    return is_synthetic_demo(root)
