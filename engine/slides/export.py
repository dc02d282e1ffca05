"""A slide prediction's files: heatmap.png, tiles.csv, tiles.geojson (QuPath imports it) and slide.json.

Coordinates are level-0 pixels, as QuPath and OpenSlide count them. The heatmap has one pixel per cell
(scaled up with nearest-neighbour so cells stay square): blue (0) through yellow to red (1), transparent
where there is no tissue. A cell is one tile, or with overlapping tiles one stride (slide.json's ``stride``,
from the slide's top-left corner) holding the mean probability of the tiles over its centre; tiles.csv and the
GeoJSON still list every tile with its own box. The colour ramp is three anchors interpolated in numpy, so the
Diagnose edition (no matplotlib) writes the same picture. With a robustness map (``SlidePrediction.flip_eps``)
the tiles also carry their minimal flipping eps (``flip_eps_255``, in /255 units) and ``robustness.png`` is
written beside it (with overlap, a cell shows the most fragile tile over it).
A tile the attack did not flip has eps "inf" in the CSV and "Infinity" in JSON, the string QuPath writes
for non-finite measurements and reads back (qupath/qupath#1296): strict JSON has no infinity.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from engine import __version__
from engine.core.config import AttackConfig
from engine.core.fileio import write_all
from engine.slides.predict import SlidePrediction
from engine.slides.tta import tta_record

ANCHORS = np.array([[49, 54, 149], [254, 224, 144], [215, 48, 39]], dtype=np.float32)  # 0, 0.5, 1


def colourise(heat: np.ndarray) -> np.ndarray:
    """(rows, cols) probabilities with NaN -> (rows, cols, 4) uint8 RGBA."""
    p = np.clip(np.nan_to_num(heat, nan=0.0), 0.0, 1.0)[..., None]
    low = ANCHORS[0] + (ANCHORS[1] - ANCHORS[0]) * np.clip(p * 2, 0, 1)
    high = ANCHORS[1] + (ANCHORS[2] - ANCHORS[1]) * np.clip(p * 2 - 1, 0, 1)
    rgb = np.where(p < 0.5, low, high)
    alpha = np.where(np.isnan(heat), 0, 255)[..., None]
    return np.concatenate([rgb, alpha], axis=-1).round().astype(np.uint8)


def fragility(flip_eps: np.ndarray) -> np.ndarray:
    """Flip eps (pixel units) -> [0, 1] on a fixed log scale, 1 the most fragile: 1/255 -> 1, 4/255 -> 0.5,
    16/255 and above (and not flipped) -> 0; NaN stays NaN. Fixed, so slides can be compared by colour."""
    k = np.maximum(np.asarray(flip_eps, dtype=np.float64) * 255, 1.0)
    with np.errstate(invalid="ignore"):
        return np.clip(1 - np.log2(k) / 4, 0.0, 1.0)


def robustness_png(pred: SlidePrediction, max_side: int = 2048) -> bytes:
    """The robustness map on the heatmap's ramp: red where a tile flips at 1/255 (fragile: the alarming colour),
    yellow at 4/255, blue at 16/255 or not flipped; transparent where there is no tissue or no value."""
    return _png(colourise(fragility(pred.robustness_heatmap())), max_side)


def heatmap_png(pred: SlidePrediction, max_side: int = 2048) -> bytes:
    return _png(colourise(pred.heatmap()), max_side)


def _png(heat: np.ndarray, max_side: int) -> bytes:
    rows, cols = heat.shape[:2]
    scale = max(1, max_side // max(rows, cols))
    image = Image.fromarray(heat, "RGBA").resize((cols * scale, rows * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def flip_k(eps: float) -> int | float | None:
    """A flip eps in pixel units -> k (its /255 value), inf when not flipped, None when not computed."""
    if np.isnan(eps):
        return None
    return float("inf") if np.isinf(eps) else int(round(float(eps) * 255))


def _flip_ks(pred: SlidePrediction) -> list:
    return [None] * len(pred.tiles) if pred.flip_eps is None else [flip_k(e) for e in pred.flip_eps]


def tiles_csv(pred: SlidePrediction) -> str:
    """One row per tissue tile; ``review`` is "uncertain" inside the model's review band; ``flip_eps_255`` is k,
    ``inf`` (not flipped) or empty (not computed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["x", "y", "width", "height", "level", "tissue", "probability", "predicted", "review", "flip_eps_255"]
    writer.writerow(header)
    for tile, p, k, u in zip(pred.tiles, pred.probabilities, _flip_ks(pred), pred.uncertain()):
        row = [tile.x, tile.y, tile.size, tile.size, pred.level, f"{tile.tissue:.3f}", f"{p:.6f}", pred.predicted(p)]
        writer.writerow([*row, "uncertain" if u else "", "" if k is None else k])
    return buffer.getvalue()


def tiles_geojson(pred: SlidePrediction) -> dict:
    """A FeatureCollection of one square Polygon per tissue tile, QuPath-style properties."""
    features = []
    for tile, p, k, u in zip(pred.tiles, pred.probabilities, _flip_ks(pred), pred.uncertain()):
        x0, y0, x1, y1 = tile.x, tile.y, tile.x + tile.size, tile.y + tile.size
        name = pred.predicted(p)
        measurements = {"probability": round(float(p), 6), "uncertain": int(bool(u))}
        if k is not None:
            measurements["flip_eps_255"] = _json_number(k)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]},
                "properties": {
                    "objectType": "tile",
                    "classification": {"name": name},
                    "measurements": measurements,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _json_number(value):
    """inf -> "Infinity" (QuPath's spelling of a non-finite measurement); other values unchanged."""
    return "Infinity" if isinstance(value, float) and np.isinf(value) else value


def robustness_record(attack: AttackConfig) -> dict:
    """How a robustness map was made, as slide.json keeps it: method, the largest k/255 searched, PGD's steps, the
    loss climbed, and that every adversarial tile is judged at 8 bits."""
    return {
        "method": attack.method,
        "max_k": round(attack.eps * 255),
        "steps": attack.n_steps if attack.info.iterative else None,
        "loss": attack.loss,
        "judged_at": "8-bit",
    }


def write_slide_outputs(
    pred: SlidePrediction, out_dir: str | Path, model_path: str | Path, robustness: dict | None = None
) -> dict[str, Path]:
    """Write the four files (five with a robustness map) into ``out_dir`` together (all or nothing); return
    their paths. ``robustness``: how the map was made ({"method", "max_k", "steps"}), kept in slide.json."""
    out = Path(out_dir)
    record = {
        "slide": Path(pred.info.path).name,
        "dimensions": list(pred.info.dimensions),
        "mpp": list(pred.info.mpp) if pred.info.mpp else None,  # what the file records
        "scale": pred.info.scale.record() if pred.info.scale else None,  # what tiles were cut at, and from where
        "model": Path(model_path).name,
        "model_sha256": pred.model_sha256,
        "histoguard_version": __version__,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tile_size": pred.tile_size,
        "stride": pred.cell,  # level-0 px between tiles = a heatmap cell's side (tile_size: no overlap)
        "level": pred.level,
        "grid": list(pred.grid),  # heatmap cells (rows, cols)
        "tta": tta_record(pred.tta),
        **pred.summary(),
    }
    if pred.flip_eps is not None:
        record["robustness"] = {**(robustness or {}), **{k: _json_number(v) for k, v in record["robustness"].items()}}
    files = {
        out / "heatmap.png": heatmap_png(pred),
        out / "tiles.csv": tiles_csv(pred).encode(),
        out / "tiles.geojson": json.dumps(tiles_geojson(pred)).encode(),
        out / "slide.json": (json.dumps(record, indent=2, allow_nan=False) + "\n").encode(),
    }
    if pred.flip_eps is not None:
        files[out / "robustness.png"] = robustness_png(pred)
    write_all(files)
    return {p.name: p for p in files}
