"""Labelled images to evaluate a model on: a run's split (by its own split.csv) or any labelled dataset.

The stress tests (white-box), the black-box attack and the app all take an ``ImageSource``; this module turns it
into decoded arrays at a model's input size, checked against the model's classes. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.core.config import DataConfig
from engine.core.errors import ConfigError, DataError, ModelError, message
from engine.core.progress import CancelToken, ProgressCallback
from engine.data.arrays import ArraySet
from engine.data.cache import decode_dataset
from engine.data.demo import dataset_root
from engine.data.discover import discover
from engine.data.prepare import prepare_data
from engine.data.split import SPLITS
from engine.runs.folder import SPLIT, RunFolder

FOLDER_HINT = "a stress test needs labelled images (class sub-folders <folder>/<class>/<image>)"


@dataclass(frozen=True)
class ImageSource:
    """A run folder's ``split`` (its own split.csv), or every image of ``data`` (a folder, CSV or the demo)."""

    run: Path | None = None
    split: str = "test"
    data: DataConfig | None = None

    def __post_init__(self) -> None:
        if (self.run is None) == (self.data is None):
            raise ConfigError("choose the images: a run folder's split, or a labelled folder")
        if self.split not in SPLITS:
            raise ConfigError(f"split {self.split!r} is not one of {', '.join(SPLITS)}")

    @classmethod
    def of_run(cls, run: str | Path, split: str = "test") -> ImageSource:
        return cls(run=Path(run), split=split)

    @classmethod
    def of_folder(cls, folder: str | Path) -> ImageSource:
        return cls(data=DataConfig(data=str(folder)))

    def describe(self) -> str:
        if self.run is not None:
            return f"the {self.split} split of {self.run.name}"
        return "the demo images" if self.data.demo else f"the images in {Path(self.data.data).name}"


@dataclass
class LabelledImages:
    arrays: ArraySet  # uint8 (N, S, S, 3) at the model's size, labels index ``classes``
    paths: list[Path]
    classes: list[str]
    synthetic: bool = False


def labelled_images(
    source: ImageSource,
    image_size: int,
    classes: list[str],
    *,
    limit: int | None = None,
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> LabelledImages:
    """``source``'s images decoded at ``image_size``; ``limit``: a fixed random subset of at most that many.
    ModelError when the images' classes are not ``classes`` (the model's, negative first)."""
    got = (
        _run_split(source, image_size, on_progress, cancel)
        if source.run
        else _dataset(source, image_size, classes, limit, seed, on_progress, cancel)
    )
    if got.classes != list(classes):
        raise ModelError(
            f"the model was trained on the classes {list(classes)} but the images are labelled {got.classes}; "
            "choose images of the same classes"
        )
    if limit is not None and len(got.arrays) > limit:
        keep = fixed_subset(len(got.arrays), limit, seed)
        a = got.arrays
        got.arrays = ArraySet(a.images[keep], a.labels[keep], None if a.patients is None else a.patients[keep])
        got.paths = [got.paths[i] for i in keep]
    return got


def fixed_subset(n: int, limit: int, seed: int = 0) -> np.ndarray:
    """All of ``range(n)``, or a fixed random ``limit`` of them (sorted): the same images every run."""
    if limit < 1:
        raise ConfigError(f"the image limit must be at least 1 (got {limit})")
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _run_split(source: ImageSource, size: int, on_progress, cancel) -> LabelledImages:
    run = RunFolder.open(source.run)
    if not run.path(SPLIT).is_file():
        raise DataError(f"{run.root} has no {SPLIT}, so its {source.split} split is unknown; run it to the end first")
    cfg = run.read_config()
    data = prepare_data(cfg.data, size, split_file=run.path(SPLIT), on_progress=on_progress, cancel=cancel)
    idx = data.split.indices(source.split)
    if not idx:
        raise DataError(f"the {source.split} split of {run.root} has no images")
    paths = [data.dataset.records[i].path for i in idx]
    return LabelledImages(data.arrays(source.split), paths, list(data.dataset.classes), data.dataset.synthetic)


def _dataset(source: ImageSource, size: int, classes, limit, seed, on_progress, cancel) -> LabelledImages:
    cfg = source.data
    try:
        dataset = discover(
            dataset_root(cfg, on_progress, cancel), positive_class=classes[-1], magnification=cfg.magnification,
            patient_regex=cfg.patient_regex,
        )  # fmt: skip
    except DataError as exc:
        raise DataError(f"{FOLDER_HINT}: {message(exc)}") from exc
    if limit is not None and len(dataset.records) > limit:  # decode only the images that will be used
        dataset = dataset.subset(fixed_subset(len(dataset.records), limit, seed).tolist())
    decoded = decode_dataset(dataset, size, on_progress=on_progress, cancel=cancel)
    if not len(decoded.labels):
        raise DataError(f"no image of {source.describe()} could be decoded")
    paths = [r.path for r in decoded.dataset.records]
    patients = np.array([r.patient_id or f"image-{i}" for i, r in enumerate(decoded.dataset.records)], dtype=object)
    arrays = ArraySet(np.asarray(decoded.images), decoded.labels, patients)
    return LabelledImages(arrays, paths, list(decoded.dataset.classes), decoded.dataset.synthetic)
