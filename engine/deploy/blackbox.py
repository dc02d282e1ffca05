"""The deployed ONNX model as a black-box target: query it through onnxruntime, attack it (Square), measure the
damage. ``blackbox_images`` is the one entry the CLI (``histoguard blackbox``) and the app's Stress page use.

Nothing here imports torch: this is what an attacker (or an auditor) with only the exported file can do.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.core.errors import ConfigError, DataError
from engine.core.intervals import Bootstrap, metrics_with_intervals
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.deploy.model_info import onnx_meta
from engine.deploy.model_inputs import prepare_pixels
from engine.deploy.session import create_session, run_session, session_provider
from engine.deploy.square import Predict, predicted, square_attack
from engine.runs.images import ImageSource, labelled_images

log = logging.getLogger(__name__)


def onnx_predictor(path_or_session, batch_size: int = 64, device: str = "auto") -> tuple[Predict, str]:
    """``(predict, provider)``: predict maps float32 NCHW images in [0, 1] to the file's logits (its
    'logits' output; log-probabilities for a file that has only 'probabilities')."""
    session = path_or_session
    if isinstance(session, (str, Path)):
        session = create_session(session, device=device)
    outputs = [o.name for o in session.get_outputs()]
    name = session.get_inputs()[0].name

    def predict(images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        if "logits" not in outputs:
            probs = run_session(session, images, batch_size=batch_size)
            return np.log(np.clip(probs, 1e-38, 1.0))
        chunks = [
            session.run(["logits"], {name: images[i : i + batch_size]})[0] for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, 2), np.float32)

    predict.session = session  # type: ignore[attr-defined]
    return predict, session_provider(session)


def as_nchw_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) as decoded/cached by the engine, or float (N, 3, H, W) in [0, 1] -> float32 NCHW."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        if images.ndim != 4 or images.shape[-1] != 3:
            raise DataError(f"uint8 images must be (N, H, W, 3), got shape {images.shape}")
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255)
    if images.ndim != 4 or images.shape[1] != 3:
        raise DataError(f"float images must be (N, 3, H, W) in [0, 1], got shape {images.shape}")
    return np.ascontiguousarray(images, dtype=np.float32)


def _input_size(session) -> tuple:
    return tuple(d if isinstance(d, int) else None for d in session.get_inputs()[0].shape[1:])


def _check_images(x: np.ndarray, labels: np.ndarray, session) -> None:
    expected = _input_size(session)
    if any(e is not None and e != a for e, a in zip(expected, x.shape[1:])):
        raise DataError(f"the ONNX model takes images of shape {expected}, got {x.shape[1:]}; resize them first")
    if labels.shape != (len(x),):
        raise DataError(f"{len(x)} images but labels of shape {labels.shape}")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise DataError("float images must be RGB in [0, 1]")


def blackbox_stress(
    onnx_path,
    images: np.ndarray,
    labels: Sequence[int],
    *,
    eps_values: Sequence[float] = (0.0, 2 / 255, 4 / 255, 8 / 255),
    n_queries: int = 300,
    p_init: float = 0.3,
    seed: int = 0,
    positive: int = 1,
    groups: Sequence | None = None,
    bootstrap: Bootstrap | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Square Attack on the deployed ONNX file at each eps (0 = the clean images), with clinical metrics and
    their patient-level bootstrap intervals (``groups``: each image's patient; each image its own without).

    ``p_init`` defaults to 0.3, not the paper's 0.05: that value is tuned for 224 px images and 10,000
    queries; with a few hundred queries on small images the squares shrink to single pixels too early.

    Returns {"provider", "n_queries", "seed", "positive", "results": [per eps: eps, accuracy, sensitivity,
    specificity, missed_cancer_rate, confusion_matrix, n, ci, attack_success_rate, mean_queries (over the
    successful attacks; None when none succeeded), accuracy_curve (list, q = 0..n_queries)], "intervals"}.
    """
    predict, provider = onnx_predictor(onnx_path)
    x, labels = as_nchw_float(images), np.asarray(labels, dtype=np.int64)
    _check_images(x, labels, predict.session)
    eps_values = [float(e) for e in eps_values]
    if not eps_values or any(not 0 <= e <= 1 for e in eps_values):
        raise ConfigError(f"eps values {eps_values} must be in [0, 1] (pixel units, e.g. 8/255)")
    bootstrap = bootstrap or Bootstrap(seed=seed)
    groups = np.arange(len(x)) if groups is None else np.asarray(groups)
    if len(groups) != len(x):
        raise DataError(f"{len(x)} images but {len(groups)} patient ids")
    truth = labels == positive
    results = []
    for eps in eps_values:
        check_cancel(cancel, "black-box stress test")
        progress = _staged(on_progress, eps)
        row = _one_eps(predict, x, labels, eps, n_queries, p_init, seed, positive, progress, cancel)
        called = row.pop("predictions") == positive
        metrics = metrics_with_intervals(truth, y_pred=called, groups=groups, bootstrap=bootstrap)
        results.append({"eps": eps, **metrics, **row})
        log.info("black-box eps %.4f: accuracy %s", eps, results[-1]["accuracy"])
    report(on_progress, "black-box stress", len(eps_values), len(eps_values), unit="eps")
    return {
        "provider": provider,
        "n_queries": n_queries,
        "p_init": p_init,
        "seed": seed,
        "positive": positive,
        "results": results,
        "intervals": bootstrap.describe(),
    }


def _one_eps(predict, x, labels, eps, n_queries, p_init, seed, positive, on_progress, cancel) -> dict:
    if eps == 0:
        pred = predicted(predict(x)) if len(x) else np.zeros(0, np.int64)
        curve, success, queries = np.full(n_queries + 1, np.mean(pred == labels) if len(x) else 0.0), None, None
    else:
        res = square_attack(
            predict,
            x,
            labels,
            eps=eps,
            n_queries=n_queries,
            p_init=p_init,
            seed=seed,
            on_progress=on_progress,
            cancel=cancel,
        )
        pred, curve, success, queries = predicted(res.probabilities), res.accuracy_curve, res.success, res.queries
    row = {"predictions": pred}
    row["attack_success_rate"] = None if success is None or not len(x) else float(success.mean())
    row["mean_queries"] = float(queries[success].mean()) if success is not None and success.any() else None
    row["accuracy_curve"] = [float(v) for v in curve]
    return row


def _staged(on_progress: ProgressCallback | None, eps: float) -> ProgressCallback | None:
    """Forward square-attack progress with the eps in the stage name."""
    if on_progress is None:
        return None
    return lambda event: on_progress(dataclasses.replace(event, stage=f"square attack eps {eps * 255:.3g}/255"))


def blackbox_images(
    onnx: str | Path,
    source: ImageSource,
    *,
    eps_values: Sequence[float] = (8 / 255,),
    n_queries: int = 300,
    limit: int = 200,
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """The Square attack (queries only) on the ONNX file ``onnx`` over ``source`` (a run's split or a labelled
    dataset), at most ``limit`` images of it (a fixed random subset); eps 0 (clean) is added first. Returns
    ``blackbox_stress``'s result with "model" (the file's name), "classes", "n_images" and "images" (what
    was attacked, in words)."""
    meta = onnx_meta(onnx)
    images = labelled_images(
        source, meta.image_size, list(meta.classes), limit=limit, seed=seed, on_progress=on_progress, cancel=cancel
    )
    eps = [0.0, *(float(e) for e in eps_values if e > 0)]
    pixels = prepare_pixels(meta, images.arrays.images)  # attacked as the model sees them (its stain normalisation)
    result = blackbox_stress(
        onnx, pixels, images.arrays.labels, eps_values=eps, n_queries=n_queries, seed=seed,
        positive=meta.positive_index, groups=images.arrays.patients, on_progress=on_progress, cancel=cancel,
    )  # fmt: skip
    return {
        **result, "model": Path(onnx).name, "classes": list(meta.classes), "n_images": len(images.arrays),
        "images": source.describe(), "synthetic_data": images.synthetic or meta.synthetic_data,
    }  # fmt: skip
