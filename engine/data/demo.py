"""A small SYNTHETIC H&E-like dataset in the BreakHis layout, so HistoGuard can be tried without real data.

Images are drawn from random numbers (``engine.data.demo_tissue``: a Beer-Lambert stain model, haematoxylin
for nuclei, eosin for stroma, seen through a simulated scanner). They are not real tissue and must never be
used for diagnosis or to judge real performance. Benign images mostly show small regular nuclei lining gland
lumens, malignant ones large, dark, crowded, irregular nuclei; but, as in real slides, the classes overlap
(hyperplasia, low-grade carcinoma forming tubules, fields with little tumour) and each patient's stain and
scanner differ (colour, strength, focus, noise, JPEG), so a model scores high but not perfectly. File names
follow BreakHis (``SOB_B_A-99-9001-40-001.png``); year ``99`` marks them as synthetic, and the marker file
``DEMO_MARKER`` at the root records the generator parameters.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from engine.core.errors import DataError
from engine.core.fileio import write_text
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.demo_tissue import Patient, make_patient, one_lab, render

log = logging.getLogger(__name__)

DEMO_MARKER = "HISTOGUARD_SYNTHETIC_DEMO.txt"
PNG_COMMENT = "SYNTHETIC HistoGuard demo image - not real tissue"
GENERATOR_VERSION = 2  # 2: harder images (overlapping grades, stain/scanner variation, blur), 40 x 8 images
PATIENTS_PER_CLASS, IMAGES_PER_PATIENT = 40, 8  # the demo's size: 12 of its 80 patients are tested
MAGNIFICATIONS = (40, 100, 200, 400)
_CLASSES = (("benign", "B", ("A", "F", "PT", "TA")), ("malignant", "M", ("DC", "LC", "MC", "PC")))
_DEMO_NAME = re.compile(r"^\.?SOB_[BM]_[A-Z]+-99-\d+[A-Z]*-\d+-\d{3}\.png(\.tmp)?$")


@dataclass(frozen=True)
class _Spec:
    label: int  # 0 benign, 1 malignant
    patient: int
    index: int
    magnification: int
    relpath: str


def generate_demo_dataset(
    out_dir: str | os.PathLike,
    *,
    patients_per_class: int = PATIENTS_PER_CLASS,
    images_per_patient: int = IMAGES_PER_PATIENT,
    image_size: tuple[int, int] = (175, 115),
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Write the synthetic dataset into ``out_dir`` (image_size is width, height) and return its path.

    Same arguments give byte-identical files. A folder that already holds a complete demo with the same
    parameters is returned as it is; a non-empty folder that is not a demo is refused with DataError.
    """
    root = Path(out_dir).expanduser()
    params = _parameters(patients_per_class, images_per_patient, image_size, seed)
    plan = _plan(patients_per_class, images_per_patient)
    if _prepare(root, params, plan):
        log.info("synthetic demo dataset already complete in %s; reusing it", root)
        report(on_progress, "demo data", len(plan), len(plan), unit="images", message="reused existing demo data")
        return root
    _write_marker(root, params, complete=False)
    patients: dict[tuple[int, int], Patient] = {}
    for done, spec in enumerate(plan):
        check_cancel(cancel, "demo data generation")
        key = (spec.label, spec.patient)
        if key not in patients:
            patients[key] = make_patient(seed, spec.label, spec.patient, _CLASSES[spec.label][2])
        rng = np.random.default_rng(np.random.SeedSequence([seed, spec.label, spec.patient, 1, spec.index]))
        _save_png(render(patients[key], spec.label, spec.magnification, tuple(image_size), rng), root / spec.relpath)
        if done % 16 == 15 or done + 1 == len(plan):
            report(on_progress, "demo data", done + 1, len(plan), unit="images")
    _write_marker(root, params, complete=True)
    log.info("wrote %d synthetic demo images to %s", len(plan), root)
    return root


def demo_patch(label: int, index: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """One SYNTHETIC patch (uint8 H x W x 3) of class ``label`` (0 benign, 1 malignant) at 40X scale, with the
    tissue of patient ``index % 4`` of that class stained and scanned by one lab (the demo slide's tissue,
    engine.data.demo_slide)."""
    patient = one_lab(make_patient(seed, label, index % 4, _CLASSES[label][2]))
    rng = np.random.default_rng(np.random.SeedSequence([seed, label, index, 2]))
    return np.asarray(render(patient, label, 40, tuple(size), rng))


def is_synthetic_demo(root: str | os.PathLike) -> bool:
    """True when ``root`` or one of its parents (up to 3 levels up) holds the demo marker file."""
    path = Path(root).expanduser().absolute()
    candidates = [path, *list(path.parents)[:3]]
    return any((folder / DEMO_MARKER).is_file() for folder in candidates)


def _parameters(patients: int, images: int, size: tuple[int, int], seed: int) -> dict[str, Any]:
    if not (isinstance(patients, int) and patients >= 1 and isinstance(images, int) and images >= 1):
        raise DataError("demo data needs patients_per_class >= 1 and images_per_patient >= 1")
    if len(size) != 2 or not all(isinstance(v, int) and 32 <= v <= 4096 for v in size):
        raise DataError(f"demo image_size {size!r} must be (width, height), each 32..4096 pixels")
    if not isinstance(seed, int) or seed < 0:
        raise DataError(f"demo seed {seed!r} must be a non-negative integer")
    return {
        "generator": "HistoGuard engine.data.demo",
        "version": GENERATOR_VERSION,
        "patients_per_class": patients,
        "images_per_patient": images,
        "image_size": [size[0], size[1]],
        "seed": seed,
    }


def _plan(patients: int, images: int) -> list[_Spec]:
    """Every image's name; one benign patient's images are split over slides ``<n>AB`` and ``<n>CD``."""
    plan, split_patient = [], min(2, patients - 1)
    for label, (folder, code, tumours) in enumerate(_CLASSES):
        for p in range(patients):
            slide, seqs = 9001 + label * patients + p, {}
            for i in range(images):
                suffix = ""
                if label == 0 and p == split_patient and images >= 2:
                    suffix = "AB" if i < images // 2 else "CD"
                mag = MAGNIFICATIONS[i % len(MAGNIFICATIONS)]
                seq = seqs[(suffix, mag)] = seqs.get((suffix, mag), 0) + 1
                name = f"SOB_{code}_{tumours[p % len(tumours)]}-99-{slide}{suffix}-{mag}-{seq:03d}.png"
                plan.append(_Spec(label, p, i, mag, f"{folder}/{name}"))
    return plan


def _prepare(root: Path, params: dict[str, Any], plan: list[_Spec]) -> bool:
    """Return True when ``root`` already holds this exact demo; refuse folders that are not demos."""
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} is a file; give a folder (new or empty) for the demo dataset")
    if not root.exists() or not any(root.iterdir()):
        return False
    status, old = _read_marker(root)
    if status is None:
        raise DataError(
            f"{root} is not empty and is not a HistoGuard demo dataset; choose a new or empty "
            "folder for the demo data (nothing was written)"
        )
    if status == "complete" and old == params and all((root / s.relpath).is_file() for s in plan):
        return True
    expected = {s.relpath for s in plan}
    for folder, _, _ in _CLASSES:  # remove our own files left by other parameters or a cancelled run
        for path in (root / folder).glob("*") if (root / folder).is_dir() else []:
            if _DEMO_NAME.match(path.name) and f"{folder}/{path.name}" not in expected:
                path.unlink()
    return False


def _read_marker(root: Path) -> tuple[str | None, Any]:
    try:
        text = (root / DEMO_MARKER).read_text(encoding="utf-8")
    except OSError:
        return None, None
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    try:
        return fields.get("status", "unknown"), json.loads(fields.get("parameters", "null"))
    except ValueError:
        return "unknown", None


def _write_marker(root: Path, params: dict[str, Any], *, complete: bool) -> None:
    text = (
        "SYNTHETIC DEMO DATA - NOT REAL TISSUE\n\n"
        "Every image below this folder was generated from random numbers by HistoGuard\n"
        "(engine.data.demo). They are not microscope images of real tissue, hold no patient data,\n"
        "and must never be used for diagnosis or to judge performance on real histopathology.\n\n"
        f"status: {'complete' if complete else 'incomplete'}\n"
        f"parameters: {json.dumps(params, sort_keys=True)}\n"
    )
    write_text(root / DEMO_MARKER, text)


def _save_png(image: Image.Image, path: Path) -> None:
    info = PngInfo()
    info.add_text("Comment", PNG_COMMENT)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(tmp, format="PNG", pnginfo=info, compress_level=1)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write {path}: {exc.strerror}; free some disk space or choose another folder") from exc


def default_demo_dir() -> Path:
    """Where the demo set is generated: $HISTOGUARD_DATA_DIR, else the user's data folder."""
    env = os.environ.get("HISTOGUARD_DATA_DIR")
    base = (
        Path(env) if env else Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "histoguard"
    )
    return base / "demo-synthetic"


def dataset_root(cfg, on_progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Path:
    """The folder (or CSV) a ``DataConfig`` names; for the demo set, generated first (``cfg.data`` or the
    default demo folder)."""
    if not cfg.demo:
        return Path(cfg.data)
    return generate_demo_dataset(
        Path(cfg.data) if cfg.data else default_demo_dir(), on_progress=on_progress, cancel=cancel
    )
