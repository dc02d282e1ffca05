"""A cohort of slides, torch-free: which slides a list of files and folders holds, the sub-folder each slide's
outputs go to, the settings that decide whether a finished slide can be reused, and the cohort table.

A slide's sub-folder name is its file stem (made safe for every file system) and a short hash of its path
relative to the folder it was found in (its file name when given directly): stable from run to run and from
one mount of a shared folder to another, and unique even when two sub-folders hold slides of the same name.
Each finished sub-folder holds ``cohort_slide.json`` (``engine.slides.cohort_table``), written last into a temp
folder that is then renamed into place: a slide's folder exists only when it is complete.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.core.errors import ConfigError, DataError

# what OpenSlide opens (the vendor formats and tiled TIFFs) and the plain pictures it falls back to
SLIDE_SUFFIXES = (
    ".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide", ".tif", ".tiff", ".png", ".jpg", ".jpeg",
)  # fmt: skip
ROBUSTNESS_METHODS = ("fgsm", "pgd")
DEFAULT_TOP_K = 10
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class CohortSlide:
    path: Path  # the file, as given or found
    name: str  # its path relative to the folder it was found in (posix), or its file name
    folder: str = ""  # its outputs' sub-folder name (``slide_folder_names``)


@dataclass(frozen=True)
class CohortSettings:
    """How every slide of a cohort is run. ``top_k``: the slide score is the mean of the ``top_k`` highest tile
    probabilities (fewer when the slide has fewer tissue tiles). ``robustness``: None, "fgsm" or "pgd" (a map of
    each tile's minimal flipping eps up to ``max_eps``/255, full edition). ``batch_size`` and ``device`` change
    the speed, not the results, so a finished slide is reused across them."""

    model_mpp: float | None = None
    slide_mpp: float | None = None  # over what every slide's file records (a cohort from one scanner)
    min_tissue: float = 0.5
    overlap: float = 0.0
    tta: str = "none"
    top_k: int = DEFAULT_TOP_K
    robustness: str | None = None
    max_eps: int = 16
    steps: int = 10
    robust_limit: int | None = None
    batch_size: int = 32
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ConfigError(f"top-k ({self.top_k}) must be at least 1, e.g. --top-k 10")
        if not 0.0 <= self.min_tissue <= 1.0:
            raise ConfigError(f"min tissue ({self.min_tissue}) must be a fraction between 0 and 1")
        if self.model_mpp is not None and self.model_mpp <= 0:
            raise ConfigError(f"the model's microns per pixel ({self.model_mpp}) must be positive")
        if self.slide_mpp is not None and self.slide_mpp <= 0:
            raise ConfigError(f"the slides' microns per pixel ({self.slide_mpp}) must be positive, e.g. 0.5")
        if self.robustness not in (None, *ROBUSTNESS_METHODS):
            raise ConfigError(f"robustness {self.robustness!r} is not one of {', '.join(ROBUSTNESS_METHODS)}")
        if not 1 <= self.max_eps <= 255 or self.steps < 1 or self.batch_size < 1:
            raise ConfigError("max eps must be 1..255 (/255), and steps and batch size at least 1")
        if self.robust_limit is not None and self.robust_limit < 0:
            raise ConfigError(f"robust limit ({self.robust_limit}) must be 0 or more")

    def key(self) -> dict:
        """The settings a finished slide's results depend on (compared before one is reused)."""
        record = asdict(self)
        for speed_only in ("batch_size", "device"):
            record.pop(speed_only)
        if self.robustness is None:
            for name in ("max_eps", "steps", "robust_limit"):
                record.pop(name)
        return record


def list_slides(inputs: list[str | Path], exclude: str | Path | None = None) -> list[CohortSlide]:
    """The slides of ``inputs`` in a fixed order: a file as given; a folder's slides (``SLIDE_SUFFIXES``, in every
    sub-folder, hidden names and ``exclude`` skipped) sorted by relative path. A slide given twice counts once.
    Each comes with its sub-folder name. DataError for a missing input or none found."""
    found: list[CohortSlide] = []
    skip = Path(exclude).resolve() if exclude is not None else None
    for item in map(Path, inputs):
        if item.is_file():
            found.append(CohortSlide(item, item.name))
        elif item.is_dir():
            found += _folder_slides(item, skip)
        else:
            raise DataError(f"{item}: no such slide file or folder; give slide files or folders of slides")
    seen, unique = set(), []
    for slide in found:
        real = os.path.realpath(slide.path)
        if real not in seen:
            seen.add(real)
            unique.append(slide)
    if not unique:
        raise DataError(
            f"no slides in {', '.join(map(str, inputs))}: expected files ending in {', '.join(SLIDE_SUFFIXES)}"
        )
    return [CohortSlide(s.path, s.name, f) for s, f in zip(unique, slide_folder_names(unique))]


def _folder_slides(folder: Path, skip: Path | None) -> list[CohortSlide]:
    out = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and Path(parent, d).resolve() != skip)
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in SLIDE_SUFFIXES:
                path = Path(parent, name)
                out.append(CohortSlide(path, path.relative_to(folder).as_posix()))
    return sorted(out, key=lambda s: s.name)


def slide_folder_names(slides: list[CohortSlide]) -> list[str]:
    """``<stem>-<8 hex of the relative name>`` per slide, unique: a name two slides would share (the same relative
    name under two input folders) takes the hash of the resolved path instead."""
    names = [_folder_name(s.path, s.name) for s in slides]
    counts = {n: names.count(n) for n in names}
    return [n if counts[n] == 1 else _folder_name(s.path, os.path.realpath(s.path)) for n, s in zip(names, slides)]


def _folder_name(path: Path, ident: str) -> str:
    stem = _UNSAFE.sub("_", Path(path).stem).strip("._")[:60] or "slide"
    return f"{stem}-{hashlib.sha1(ident.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"
