"""Temperature scaling after training: fit T on the validation split's clean images, record it in the kept
checkpoint's metadata (best.pt, rewritten atomically), so the ONNX export bakes it into its 'probabilities'
output and every probability HistoGuard shows is the calibrated one. The weights and logits are unchanged:
calls, metrics and attacks are the same with and without it (``engine.core.calibration``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.core.calibration import (
    DEFAULT_REVIEW_BAND,
    T_RANGE,
    check_band,
    ece,
    fit_temperature,
    nll,
    with_temperature,
)
from engine.core.metadata import ModelMeta
from engine.data.arrays import ArraySet
from engine.models.checkpoint import read_checkpoint, save_checkpoint
from engine.models.inference import logits_of

log = logging.getLogger(__name__)
FITTED_ON = "validation split, clean images"


def calibration_record(logits, labels, band=DEFAULT_REVIEW_BAND) -> dict:
    """The fitted temperature with what it did on the images it was fitted on (NLL and ECE before, after).

    When the model calls every validation image right, the likelihood keeps rising as T falls to 0 (any
    sharper model is "better"): no temperature can be estimated, and T stays 1 with a note saying so. A fit
    that ends on the edge of ``T_RANGE`` is noted too."""
    labels = np.asarray(labels, dtype=np.int64)
    separable = bool(np.all(np.argmax(logits, axis=1) == labels))
    t = 1.0 if separable else fit_temperature(logits, labels, logits=True)
    raw, cal = with_temperature(logits, 1.0, logits=True), with_temperature(logits, t, logits=True)
    note = None
    if separable:
        note = (
            "not fitted: every validation image is called right, so the likelihood has no maximum (T -> 0); "
            "the model's own probabilities are kept (T = 1). A larger or harder validation split would let it fit"
        )
    elif min(abs(t - b) / b for b in T_RANGE) < 1e-3:
        note = f"the fit ended at the edge of the allowed range {T_RANGE[0]:g}–{T_RANGE[1]:g}"
    return {
        "method": "temperature scaling",
        "temperature": t,
        "fitted": not separable,
        "note": note,
        "fitted_on": FITTED_ON,
        "n_images": int(len(labels)),
        "nll": [nll(logits, labels, logits=True), nll(logits, labels, t, logits=True)],
        "ece": [ece(raw[:, 1], labels), ece(cal[:, 1], labels)],
        "review_band": list(check_band(band)),
    }


def calibrate_checkpoint(
    model: nn.Module,
    meta: ModelMeta,
    checkpoint: Path,
    val: ArraySet | None,
    device: torch.device,
    batch_size: int = 64,
    band=DEFAULT_REVIEW_BAND,
    name: str = "the model",
) -> ModelMeta:
    """``meta`` with the temperature fitted on ``val`` (also written into ``checkpoint``, unless it holds that
    record already); ``meta`` unchanged when there are fewer than two validation images or only one class."""
    if val is None or len(val) < 2 or len(set(val.labels.tolist())) < 2:
        log.warning("%s: no validation images of both classes, so its probabilities are not calibrated", name)
        return meta
    record = calibration_record(logits_of(model, val, device, batch_size), val.labels, band)
    meta = meta.replace(calibration=record)
    payload = read_checkpoint(checkpoint)
    if payload["metadata"].get("calibration") == record:  # a resumed, finished run: nothing to rewrite
        return meta
    extras = {k: v for k, v in payload.items() if k not in ("metadata", "state_dict")}
    save_checkpoint(checkpoint, model, meta, **extras)
    if record["fitted"]:
        log.info(
            "%s: temperature %.3f fitted on %d validation images (NLL %.4f -> %.4f, ECE %.4f -> %.4f)",
            name, record["temperature"], record["n_images"], *record["nll"], *record["ece"],
        )  # fmt: skip
    if record["note"]:
        log.warning("%s: temperature scaling %s", name, record["note"])
    return meta
