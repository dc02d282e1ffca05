"""Certify image files, or a labelled dataset, with an exported ONNX model (``histoguard certify``, the app).

Every row is an audit record like the prediction CSV's (``engine.deploy.predict``: the model file's sha256, the app
version, the provider, the time and the input file's sha256) and carries the settings it was made with (sigma,
n0, n, alpha, seed), so a certificate can be checked and reproduced. The noise sigma defaults to the model's own:
the one its training record names (``{"method": "gaussian", "sigma": ...}``, written by ``histoguard train
--adversarial gaussian``); a model trained without noise has none, and a sigma must be given. Torch-free.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.core.config import CertifyConfig
from engine.core.errors import ConfigError, DecodeError, option
from engine.core.fileio import write_text
from engine.core.intervals import Bootstrap
from engine.core.metadata import ModelMeta
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.decode import decode_image
from engine.data.inputs import collect_images
from engine.deploy.blackbox import as_nchw_float, onnx_predictor
from engine.deploy.certify import (
    DEFAULT_RADII,
    STAGE,
    Certificate,
    certified_accuracy_curve,
    certify_arrays,
    certify_image,
)
from engine.deploy.model_inputs import prepare_inputs
from engine.deploy.predict import AUDIT_COLUMNS, audit_fields, input_audit
from engine.deploy.session import create_session, session_meta
from engine.deploy.smoothed import model_sigma
from engine.runs.images import ImageSource, labelled_images

log = logging.getLogger(__name__)
ABSTAIN = "abstain"
SETTINGS = ("sigma", "n0", "n", "alpha", "seed")


def resolve_config(cfg: CertifyConfig, meta: ModelMeta, model: str) -> CertifyConfig:
    """``cfg`` with its sigma set: the one given, else the model's own; ConfigError when there is neither."""
    own = model_sigma(meta)
    if cfg.sigma is None and own is None:
        method = meta.training_method or "unknown"
        raise ConfigError(
            f"{model} was not trained with Gaussian noise (its training record says {method!r}), so it has no noise "
            f"sigma of its own; give one with {option('sigma')} (e.g. 0.25), or certify a model trained with "
            "`histoguard train --adversarial gaussian`"
        )
    if cfg.sigma is not None and own is not None and cfg.sigma != own:
        log.warning("%s was trained with sigma %g; certifying with sigma %g", model, own, cfg.sigma)
    return cfg if cfg.sigma is not None else replace(cfg, sigma=own)


def _open(model_path, cfg: CertifyConfig | None, device: str):
    cfg = cfg or CertifyConfig()
    session = create_session(model_path, device=device)
    meta = session_meta(session, source=Path(model_path).name)
    cfg = resolve_config(cfg, meta, Path(model_path).name)
    predict, _ = onnx_predictor(session, batch_size=cfg.batch_size)
    common = {**audit_fields(session, model_path), **{k: getattr(cfg, k) for k in SETTINGS}}
    return predict, meta, cfg, common


def certificate_fields(cert: Certificate, classes: Sequence[str]) -> dict:
    """A certificate as CSV columns: predicted (a class or 'abstain'), p_A_lower, radius_l2, its L-inf equivalent
    (pixel units and k/255) and the estimation counts per class."""
    return {
        "predicted": ABSTAIN if cert.abstained else classes[cert.predicted],
        "p_A_lower": cert.p_a_lower,
        "radius_l2": cert.radius,
        "linf_equivalent": cert.linf_eps,
        "linf_equivalent_255": cert.linf_255,
        **{f"count_{c}": n for c, n in zip(classes, cert.counts)},
    }


def certify_files(
    model_path: str | Path,
    inputs: list,
    out_csv: str | Path | None = None,
    *,
    config: CertifyConfig | None = None,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[dict]:
    """One row per image file (folders expanded): its certificate, or the reason it could not be read. Image i
    (in the order of the files) draws its noise from ``default_rng([seed, i])``."""
    paths = collect_images(inputs)
    predict, meta, cfg, common = _open(model_path, config, device)
    classes, rows = list(meta.classes), []
    for i, path in enumerate(paths):
        check_cancel(cancel, STAGE)
        row = {"path": str(path), **common, **input_audit(path), "error": ""}
        try:
            x = prepare_inputs(meta, decode_image(path, meta.image_size)[None])[0]  # stain-normalised before noise
        except DecodeError as exc:
            row["error"] = str(exc)
            log.warning("%s", exc)
        else:
            row.update(certificate_fields(certify_image(predict, x, cfg, np.random.default_rng([cfg.seed, i]), cancel),
                                          classes))  # fmt: skip
        rows.append(row)
        report(on_progress, STAGE, i + 1, len(paths), unit="images")
    if out_csv is not None:
        write_text(out_csv, certificates_csv(rows, classes))
    return rows


def certify_dataset(
    model_path: str | Path,
    source: ImageSource,
    out_csv: str | Path | None = None,
    *,
    config: CertifyConfig | None = None,
    limit: int | None = 100,
    radii: Sequence[float] = DEFAULT_RADII,
    bootstrap: Bootstrap | None = None,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Certify the labelled images of ``source`` (a run's split or a labelled dataset; at most ``limit``, a fixed
    random subset) and their certified accuracy at each of ``radii`` with patient-level intervals. Returns
    {"rows", "curve", "classes", "n_images", "images" (in words), "synthetic_data", "intervals", "model",
    "model_sha256", "provider", and the settings sigma, n0, n, alpha, seed}."""
    predict, meta, cfg, common = _open(model_path, config, device)
    classes = list(meta.classes)
    data = labelled_images(source, meta.image_size, classes, limit=limit, seed=cfg.seed, on_progress=on_progress,
                           cancel=cancel)  # fmt: skip
    arrays = data.arrays
    certs = certify_arrays(predict, prepare_inputs(meta, arrays.images), cfg, on_progress=on_progress, cancel=cancel)
    rows = [
        {"path": str(path), "true_label": classes[int(y)], **common, **input_audit(Path(path)), "error": "",
         **certificate_fields(cert, classes)}
        for path, y, cert in zip(data.paths, arrays.labels, certs)
    ]  # fmt: skip
    bootstrap = bootstrap or Bootstrap(seed=cfg.seed)
    curve = certified_accuracy_curve(certs, arrays.labels, radii, groups=arrays.patients, bootstrap=bootstrap)
    if out_csv is not None:
        write_text(out_csv, certificates_csv(rows, classes, labelled=True))
    return {
        "rows": rows, "curve": curve, "classes": classes, "n_images": len(rows), "images": source.describe(),
        "synthetic_data": data.synthetic or meta.synthetic_data, "intervals": bootstrap.describe(),
        **{k: common[k] for k in ("model", "model_sha256", "provider", *SETTINGS)},
    }  # fmt: skip


def certify_set(
    model_path: str | Path,
    images: np.ndarray,
    labels: Sequence[int],
    *,
    groups: Sequence | None = None,
    config: CertifyConfig | None = None,
    radii: Sequence[float] = DEFAULT_RADII,
    bootstrap: Bootstrap | None = None,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Certify labelled images already in memory, as the model's input (uint8 NHWC or float NCHW in [0, 1]; an
    experiment's test subset, already stain-normalised by its data pipeline: not normalised again) and their
    certified accuracy curve with patient-level intervals (``groups``). Returns the report's "certified" section:
    {"model", "model_sha256", "provider", the settings, "n_images", "n_inputs", "abstained", "median_radius" (of the
    certified calls), "curve" (radius, linf_255, accuracy, ci, n)}."""
    predict, _, cfg, common = _open(model_path, config, device)
    certs = certify_arrays(predict, as_nchw_float(images), cfg, on_progress=on_progress, cancel=cancel)
    curve = certified_accuracy_curve(certs, labels, radii, groups=groups, bootstrap=bootstrap)
    radius = [c.radius for c in certs if not c.abstained]
    return {
        **{k: common[k] for k in ("model", "model_sha256", "provider", *SETTINGS)},
        "n_images": len(certs), "n_inputs": certs[0].n_inputs if certs else None,
        "abstained": sum(c.abstained for c in certs), "median_radius": float(np.median(radius)) if radius else None,
        "curve": curve,
    }  # fmt: skip


def attach_certificates(rows: list[dict], certificates: list[dict]) -> list[dict]:
    """Put each certificate (a ``certify_files`` row) into the prediction row of the same file, in place, as the
    ``certified_*`` columns of the prediction CSV (``engine.deploy.predict.CERTIFICATE_COLUMNS``); rows of other
    files, and certificates of files that could not be read, are left out. Returns ``rows``."""
    by_path = {c["path"]: c for c in certificates if not c.get("error")}
    for row in rows:
        cert = by_path.get(row["path"])
        if cert is None or row.get("error"):
            continue
        row.update({"certified_call": cert["predicted"], "certified_radius_l2": cert["radius_l2"],
                    "certified_linf_255": cert["linf_equivalent_255"], "certified_p_A_lower": cert["p_A_lower"],
                    **{f"certified_{k}": cert[k] for k in SETTINGS}})  # fmt: skip
    return rows


def certificates_csv(rows: list[dict], classes: Sequence[str], labelled: bool = False) -> str:
    """The rows as CSV text: path, (true_label,) predicted, p_A_lower, radius_l2, linf_equivalent(_255), counts,
    the settings, error and the audit columns."""
    fields = [
        "path",
        *(["true_label"] if labelled else []),
        "predicted",
        "p_A_lower",
        "radius_l2",
        "linf_equivalent",
        "linf_equivalent_255",
        *(f"count_{c}" for c in classes),
        *SETTINGS,
        "error",
        *AUDIT_COLUMNS,
    ]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n", restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
