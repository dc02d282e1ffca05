"""Offline prediction of image files with an exported ONNX model (onnxruntime only, no torch).

Every row is an audit record: the model file's sha256 (of the verified bytes the session runs), the app
version, the provider, the time (ISO 8601, UTC) and the input file's sha256. Probabilities are the file's
'probabilities' output, calibrated by the temperature its metadata records (``temperature``; 1 when it has
none); a call whose p(positive) falls in the review band is marked ``review = "uncertain"``.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from engine import __version__
from engine.core.calibration import check_band, uncertain
from engine.core.errors import DecodeError
from engine.core.fileio import sha256_file, write_text
from engine.core.metadata import ModelMeta
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.decode import load_rgb, resize_center
from engine.data.inputs import collect_images
from engine.deploy import smoothed
from engine.deploy.blackbox import onnx_predictor
from engine.deploy.model_inputs import prepare_inputs
from engine.deploy.session import create_session, run_session, session_integrity, session_meta, session_provider
from engine.deploy.smoothed import model_sigma

log = logging.getLogger(__name__)
AUDIT_COLUMNS = ("model", "model_sha256", "app_version", "provider", "time", "input_sha256")
# a row's randomized-smoothing certificate, when the app certified it (``certify_run.attach_certificates``)
CERTIFICATE_COLUMNS = (
    "certified_call",
    "certified_radius_l2",
    "certified_linf_255",
    "certified_p_A_lower",
    *(f"certified_{k}" for k in ("sigma", "n0", "n", "alpha", "seed")),
)


def predict_files(
    model_path: str | Path,
    inputs: list,
    out_csv: str | Path | None = None,
    *,
    batch_size: int = 16,
    device: str = "auto",
    review_band: tuple[float, float] | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[dict]:
    """One row per image: predicted class, class probabilities and the review flag (``review_band``: the
    model's own when None), or the reason it could not be read."""
    paths = collect_images(inputs)
    band = check_band(review_band) if review_band is not None else None  # a bad band fails before any work
    session = create_session(model_path, device=device)
    meta = session_meta(session, source=str(model_path))
    classes = list(meta.classes)
    band = band or meta.review_band
    common = {**audit_fields(session, model_path), "temperature": meta.temperature if meta.calibration else None}
    sigma = model_sigma(meta)
    if sigma is not None:  # a noise-trained base model: call its smoothed classifier (engine.deploy.smoothed)
        common |= {"temperature": None, "smoothed": smoothed.describe(sigma)}
        log.info("%s was trained with Gaussian noise (sigma %g): %s", Path(model_path).name, sigma, common["smoothed"])
    rows: list[dict] = []
    for start in range(0, len(paths), batch_size):
        check_cancel(cancel, "prediction")
        rows += _predict_batch(session, paths[start : start + batch_size], meta, common, sigma)
        report(on_progress, "predict", min(start + batch_size, len(paths)), len(paths), unit="images")
    flag_rows(rows, meta.positive_class, band)
    if out_csv is not None:
        write_text(out_csv, rows_to_csv(rows, classes))
    return rows


def _predict_batch(session, paths: list[Path], meta: ModelMeta, common: dict, sigma: float | None) -> list[dict]:
    arrays, rows, classes, size = [], [], list(meta.classes), int(meta.image_size)
    for path in paths:
        row = {"path": str(path), **common, **input_audit(path)}
        try:
            arrays.append(np.asarray(resize_center(load_rgb(path), size), dtype=np.uint8))
            row["error"] = ""
        except DecodeError as exc:
            row["error"] = str(exc)
            log.warning("%s", exc)
        rows.append(row)
    if arrays:
        x = prepare_inputs(meta, np.stack(arrays))  # the model's stain normalisation
        if sigma is None:
            probs = run_session(session, x)
        else:  # noise seeded by the image's content: the same file gets the same call, in any batch or order
            keys = [int(r["input_sha256"][:15], 16) for r in rows if not r["error"]]
            probs = smoothed.smoothed_probabilities(onnx_predictor(session)[0], x, sigma, keys=keys)
        ok = [r for r in rows if not r["error"]]
        for row, p in zip(ok, probs):
            row["predicted"] = classes[int(p.argmax())]
            row.update({f"p_{c}": float(p[i]) for i, c in enumerate(classes)})
    return rows


def flag_rows(rows: list[dict], positive: str, band) -> list[dict]:
    """Set each predicted row's ``review`` ("uncertain" when p(positive) is in ``band``, else "") and
    ``review_band`` ("0.20-0.80"), in place (the app calls it again when the user moves the band)."""
    low, high = check_band(band)
    for row in rows:
        p = row.get(f"p_{positive}")
        row["review"] = "uncertain" if p is not None and bool(uncertain([p], (low, high))[0]) else ""
        row["review_band"] = f"{low:.2f}-{high:.2f}" if p is not None else ""
    return rows


def audit_fields(session, model_path: str | Path) -> dict:
    """The audit columns every row of one model shares: its file name, the sha256 of the verified bytes the
    session runs, the app version and the onnxruntime provider."""
    return {
        "model": Path(model_path).name,
        "model_sha256": session_integrity(session)["sha256"],
        "app_version": __version__,
        "provider": session_provider(session),
    }


def input_audit(path: Path) -> dict:
    """The audit columns of one input: the time (ISO 8601, UTC) and the file's sha256."""
    return {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "input_sha256": input_sha256(path)}


def input_sha256(path: Path) -> str:
    """The input file's sha256 ('' when it cannot be read: the row's error then says why)."""
    try:
        return sha256_file(path)
    except OSError as exc:
        log.warning("cannot hash %s: %s", path, exc.strerror)
        return ""


def rows_to_csv(rows: list[dict], classes: list[str]) -> str:
    """The prediction rows as CSV text; with the certificate columns after the review's when any row has one."""
    certified = any("certified_call" in r for r in rows)
    fields = [
        "path",
        "predicted",
        *(f"p_{c}" for c in classes),
        "review",
        "review_band",
        "temperature",
        *(("smoothed",) if any("smoothed" in r for r in rows) else ()),
        *(CERTIFICATE_COLUMNS if certified else ()),
        "error",
        *AUDIT_COLUMNS,
    ]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
