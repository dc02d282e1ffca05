"""From a DataConfig to decoded, split arrays: discovery (or the demo set), decoding, patient split."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
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
from engine.data.stain_norm import check_method, describe, fit_reference, normalise, reference_from_image

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    dataset: Dataset  # records that decoded, in the order of ``decoded.images``
    decoded: DecodedImages
    split: Split
    stain: dict | None = None  # the stain reference every split is normalised to (engine.data.stain_norm), or None
    _normalised: dict = field(default_factory=dict, repr=False)

    def arrays(self, name: str) -> ArraySet:
        """The split ``name``'s images (stain-normalised to ``stain`` when set: once, then kept), labels, patients."""
        idx = self.split.indices(name)
        patients = np.array([self.dataset.records[i].patient_id or f"image-{i}" for i in idx], dtype=object)
        if self.stain is not None and name not in self._normalised:
            self._normalised[name] = normalise(np.asarray(self.decoded.images[idx]), self.stain)
        images = self._normalised[name] if self.stain is not None else np.asarray(self.decoded.images[idx])
        return ArraySet(images, self.decoded.labels[idx], patients)


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
    stain_norm: str = "none",
    stain_reference: str | Path | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> PreparedData:
    """Discover, decode (cached) and split; ``split_file`` (or ``cfg.split_file``) re-applies a saved split.

    With ``stain_norm`` 'macenko' or 'reinhard' every split is stain-normalised (``PreparedData.arrays``) to the
    reference of the image ``stain_reference``, or else to the one fitted on the training split (``fit_reference``:
    the median of the per-image estimates of at most 200 training images, seeded)."""
    check_method(stain_norm)
    dataset = load_dataset(cfg, on_progress, cancel)
    decoded = decode_dataset(dataset, image_size, on_progress=on_progress, cancel=cancel)
    dataset = decoded.dataset
    saved = split_file if split_file is not None else (Path(cfg.split_file) if cfg.split_file else None)
    if saved is not None:
        split = load_split(saved, dataset, level=cfg.split_level, seed=cfg.split_seed)
    else:
        split = make_split(dataset, ratios=cfg.ratios, seed=cfg.split_seed, level=cfg.split_level)
    stain = _stain_reference(stain_norm, stain_reference, decoded, split, image_size)
    return PreparedData(dataset, decoded, split, stain)


def _stain_reference(method: str, reference, decoded: DecodedImages, split: Split, image_size: int) -> dict | None:
    if method == "none":
        return None
    if reference:
        record = reference_from_image(method, Path(reference), image_size)
    else:
        idx = split.indices("train")
        record = fit_reference(method, np.asarray(decoded.images[idx]), fitted_on=f"{len(idx)} training images")
    log.info("stain normalisation: %s", describe(record))
    return record
