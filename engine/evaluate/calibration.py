"""The report's calibration section: per model and split (validation, test), ECE and Brier score with their
patient-level intervals and the reliability diagram, before and after temperature scaling; the
coverage-versus-accuracy curve and what the review band flags on the test split. Probabilities come from the
shared evaluation cache (clean images); the temperature is the one each model's metadata carries.
"""

from __future__ import annotations

import numpy as np

from engine.core.calibration import band_summary, calibration_metrics, selective_curve, with_temperature
from engine.core.metadata import ModelMeta
from engine.evaluate.core import Evaluation


def calibration_section(val: Evaluation | None, test: Evaluation, metas: dict[str, ModelMeta]) -> dict:
    """{model: {"temperature", "fit", "val" and "test": {"raw", "calibrated"}, "selective", "review_band"}}; the
    selective curve and the band are of the test split, with calibrated probabilities."""
    splits = {"val": val, "test": test} if val is not None and len(val.data) else {"test": test}
    out = {}
    for name, meta in metas.items():
        entry: dict = {"temperature": meta.temperature, "fit": meta.calibration}
        for split, ev in splits.items():
            entry[split] = {
                "raw": calibration_metrics(ev.positive(name), ev.data.labels, ev.groups, ev.bootstrap),
                "calibrated": calibration_metrics(_calibrated(ev, name, meta), ev.data.labels, ev.groups, ev.bootstrap),
            }
        p, y = _calibrated(test, name, meta), test.data.labels
        entry["selective"] = {"raw": selective_curve(test.positive(name), y), "calibrated": selective_curve(p, y)}
        entry["review_band"] = band_summary(p, y, meta.review_band)
        out[name] = entry
    return out


def _calibrated(ev: Evaluation, name: str, meta: ModelMeta) -> np.ndarray:
    """p(positive) of ``name`` on the clean images, after its temperature."""
    probs = ev.probs(name)
    return with_temperature(probs, meta.temperature)[:, 1] if len(probs) else np.zeros(0)
