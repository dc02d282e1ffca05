"""From a DataConfig to decoded, split arrays: discovery (or the demo set), decoding, patient split."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.core.config import DataConfig
from engine.core.progress import CancelToken, ProgressCallback
from engine.data.arrays import ArraySet
from engine.data.cache import DecodedImages, decode_dataset
from engine.data.demo import dataset_root
from engine.data.discover import discover
from engine.data.records import Dataset
from engine.data.split import Split, load_split, make_split

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    dataset: Dataset  # records that decoded, in the order of ``decoded.images``
    decoded: DecodedImages
    split: Split

    def arrays(self, name: str) -> ArraySet:
        idx = self.split.indices(name)
        patients = np.array([self.dataset.records[i].patient_id or f"image-{i}" for i in idx], dtype=object)
        return ArraySet(np.asarray(self.decoded.images[idx]), self.decoded.labels[idx], patients)


def load_dataset(
    cfg: DataConfig, on_progress: ProgressCallback | None = None, cancel: CancelToken | None = None
) -> Dataset:
    return discover(
        dataset_root(cfg, on_progress, cancel),
        positive_class=cfg.positive_class,
        magnification=cfg.magnification,
        patient_regex=cfg.patient_regex,
    )


def prepare_data(
    cfg: DataConfig,
    image_size: int,
    *,
    split_file: Path | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> PreparedData:
    """Discover, decode (cached) and split; ``split_file`` (or ``cfg.split_file``) re-applies a saved split."""
    dataset = load_dataset(cfg, on_progress, cancel)
    decoded = decode_dataset(dataset, image_size, on_progress=on_progress, cancel=cancel)
    dataset = decoded.dataset
    saved = split_file if split_file is not None else (Path(cfg.split_file) if cfg.split_file else None)
    if saved is not None:
        split = load_split(saved, dataset, level=cfg.split_level, seed=cfg.split_seed)
    else:
        split = make_split(dataset, ratios=cfg.ratios, seed=cfg.split_seed, level=cfg.split_level)
    return PreparedData(dataset, decoded, split)
