"""``histoguard blackbox``: the Square attack on a deployed ONNX file over a labelled folder.

Torch-free on purpose (numpy, Pillow, onnxruntime): a lab stress-tests exactly the file it deploys, on a
machine that may have only the lean 'diagnose' install. A test checks that torch is never imported.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engine.blackbox import blackbox_stress, fixed_subset, onnx_model_info
from engine.core.config import DataConfig
from engine.core.errors import DecodeError, ModelError
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.decode import decode_image
from engine.data.demo import dataset_root
from engine.data.discover import discover

log = logging.getLogger(__name__)


def blackbox_folder(
    model: str | Path,
    data: DataConfig,
    *,
    eps_values=(4 / 255, 8 / 255),
    n_queries: int = 300,
    limit: int = 200,
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Decode up to ``limit`` images of ``data`` (a fixed random subset) at the model's input size and run
    ``blackbox_stress`` on them (eps 0 = clean is added first). Class names must match the model's."""
    classes, size = onnx_model_info(model)
    ds = discover(dataset_root(data), positive_class=classes[1], magnification=data.magnification)
    if list(ds.classes) != classes:
        raise ModelError(f"the folder's classes {list(ds.classes)} are not the model's {classes}")
    records = [ds.records[i] for i in fixed_subset(len(ds.records), limit, seed)]
    images, labels = [], []
    for i, rec in enumerate(records, start=1):
        check_cancel(cancel, "decode")
        try:
            images.append(decode_image(rec.path, size))
            labels.append(classes.index(rec.label))
        except DecodeError as exc:
            log.warning("skipped: %s", exc)
        report(on_progress, "decode", i, len(records), unit="images")
    eps = [0.0, *(e for e in eps_values if e > 0)]
    result = blackbox_stress(
        model,
        np.stack(images),
        np.array(labels),
        eps_values=eps,
        n_queries=n_queries,
        seed=seed,
        on_progress=on_progress,
        cancel=cancel,
    )
    return {**result, "model": str(model), "classes": classes, "n_images": len(labels)}
