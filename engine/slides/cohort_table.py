"""The cohort table, torch-free: one row per slide, in input order, from the record each finished slide keeps in
its sub-folder (``cohort_slide.json``); the CSV holds no wall-clock time, so a run that was interrupted and resumed
ends with the same bytes as one that was not (times go to ``cohort.json``).

Per slide: tissue tiles; the fraction of them called the positive class (p >= 0.5); the slide score, the mean of
the ``top_k`` highest tile probabilities (fewer when there are fewer tiles); the uncertain fraction (p inside the
model's review band), only when the model's probabilities are calibrated (temperature-scaled), since an
uncalibrated model's band means little; and with a robustness map the median and the 10th percentile (the
fragile end, a real tile's value) of the tiles' minimal flipping eps in /255, "inf" where not flipped.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from engine import __version__
from engine.slides.cohort import CohortSlide
from engine.slides.grid import Tile
from engine.slides.predict import SlidePrediction

RECORD = "cohort_slide.json"  # written last into a slide's folder: it marks the folder as complete
ARRAYS = "prediction.npz"  # the prediction itself, so the app can show it again without rerunning
COLUMNS = (
    "slide", "folder", "status", "error", "tissue_tiles", "positive_class", "positive_fraction", "top_k_score",
    "uncertain_fraction", "median_flip_eps_255", "p10_flip_eps_255", "model_sha256",
)  # fmt: skip
UNCALIBRATED = "empty: the model's probabilities are not calibrated, so its review band is not a measured uncertainty"


def slide_summary(pred: SlidePrediction, top_k: int) -> dict:
    """The cohort's numbers of one prediction (rounded to 6 decimals, as they are stored)."""
    p = np.asarray(pred.probabilities, dtype=np.float64)
    n = len(p)
    top = np.sort(p)[::-1][:top_k]
    out = {
        "tissue_tiles": n,
        "positive_class": pred.positive,
        "positive_fraction": _round(np.mean(p >= 0.5)) if n else None,
        "top_k_score": _round(top.mean()) if n else None,
        "top_k": int(min(top_k, n)),
        "calibrated": bool(pred.calibrated),
        "uncertain_fraction": _round(np.mean(pred.uncertain())) if n and pred.calibrated else None,
    }
    if pred.flip_eps is not None:
        k = np.round(np.asarray(pred.flip_eps, dtype=np.float64) * 255)
        k = k[~np.isnan(k)]  # inf (not flipped) stays
        out["median_flip_eps_255"] = _number(np.median(k)) if len(k) else None
        out["p10_flip_eps_255"] = _number(np.percentile(k, 10, method="lower")) if len(k) else None
        out["robust_tiles"] = len(k)
    return out


def _round(value) -> float:
    return round(float(value), 6)


def _number(value) -> float | str:
    """A flip eps for JSON: "inf" when not flipped (strict JSON has no infinity)."""
    return "inf" if np.isinf(value) else _round(value)


def slide_record(slide: CohortSlide, pred: SlidePrediction, expected: dict, model: dict, seconds: float) -> dict:
    """``cohort_slide.json``: what was run (``expected``: settings, model sha256, slide size; ``model``: its path and
    input size) and what came out (``summary``, from ``slide_summary``)."""
    return {
        "slide": slide.name,
        "path": str(Path(slide.path).resolve()),
        "folder": slide.folder,
        **expected,
        **model,
        "classes": list(pred.classes),
        "positive": pred.positive,
        "level": pred.level,
        "tile_size": pred.tile_size,
        "grid": list(pred.grid),
        "review_band": list(pred.review_band),
        "summary": slide_summary(pred, expected["settings"]["top_k"]),
        "seconds": round(seconds, 3),
        "histoguard_version": __version__,
    }


def expected_record(slide: CohortSlide, settings_key: dict, model_sha256: str) -> dict:
    """What a finished slide's record must match to be reused."""
    return {"settings": settings_key, "model_sha256": model_sha256, "slide_bytes": Path(slide.path).stat().st_size}


def finished_record(folder: Path, expected: dict) -> dict | None:
    """The record of a complete slide folder made with ``expected``; None when absent, unreadable or stale."""
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if all(record.get(k) == v for k, v in expected.items()) else None


def done_row(record: dict) -> dict:
    s = record["summary"]
    keys = ("tissue_tiles", "positive_class", "positive_fraction", "top_k_score", "uncertain_fraction")
    row = {"slide": record["slide"], "folder": record["folder"], "status": "done", "error": ""}
    row |= {k: s.get(k) for k in keys} | {k: s.get(k) for k in ("median_flip_eps_255", "p10_flip_eps_255")}
    return row | {"model_sha256": record["model_sha256"]}


def failed_row(slide: CohortSlide, error: str, model_sha256: str) -> dict:
    return {"slide": slide.name, "folder": "", "status": "failed", "error": error, "model_sha256": model_sha256}


def pending_row(slide: CohortSlide, model_sha256: str) -> dict:
    return {"slide": slide.name, "folder": "", "status": "pending", "error": "", "model_sha256": model_sha256}


def cohort_csv(rows: list[dict]) -> str:
    """``COLUMNS``, one row per slide in the order given; fractions and the score to 4 decimals, flip eps in /255."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([cell(row.get(c), c) for c in COLUMNS])
    return buffer.getvalue()


def cell(value, column: str = "") -> str:
    """A table cell as text: empty for None, 4 decimals for fractions and scores, "inf" for not flipped."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}" if column.endswith("_255") else f"{value:.4f}"
    return str(value)


def prediction_arrays(pred: SlidePrediction) -> bytes:
    """The prediction's tiles and values as a compressed .npz (``load_prediction`` reads it back)."""
    buffer = io.BytesIO()
    arrays = {
        "xy_size": np.array([[t.x, t.y, t.size] for t in pred.tiles], dtype=np.int64).reshape(-1, 3),
        "grid_cell": np.array([[t.col, t.row] for t in pred.tiles], dtype=np.int64).reshape(-1, 2),
        "tissue": np.array([t.tissue for t in pred.tiles], dtype=np.float64),
        "probabilities": np.asarray(pred.probabilities, dtype=np.float32),
    }
    if pred.flip_eps is not None:
        arrays["flip_eps"] = np.asarray(pred.flip_eps, dtype=np.float32)
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def load_prediction(folder: str | Path, info) -> tuple[SlidePrediction, dict]:
    """(the SlidePrediction saved in a cohort slide folder, its record); ``info``: the open slide's SlideInfo."""
    folder = Path(folder)
    record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    with np.load(folder / ARRAYS) as z:
        tiles = [
            Tile(int(c), int(r), int(x), int(y), int(s), float(t))
            for (x, y, s), (c, r), t in zip(z["xy_size"], z["grid_cell"], z["tissue"])
        ]
        probs, flip = z["probabilities"], (z["flip_eps"] if "flip_eps" in z.files else None)
    pred = SlidePrediction(
        info, tiles, probs, tuple(record["grid"]), record["tile_size"], record["level"], record["classes"],
        record["positive"], record["model_sha256"], flip_eps=flip, review_band=tuple(record["review_band"]),
        calibrated=record["summary"]["calibrated"],
    )  # fmt: skip
    return pred, record


def read_cohort(folder: str | Path) -> dict:
    """A cohort folder as the app shows it: {"rows": cohort.csv's rows (dicts of text), "meta": cohort.json}."""
    from engine.core.errors import DataError

    folder = Path(folder)
    try:
        with open(folder / "cohort.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        meta = json.loads((folder / "cohort.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{folder}: not a cohort folder ({exc}); choose the --out folder of `histoguard slides`"
        ) from exc
    return {"rows": rows, "meta": meta, "folder": folder}
