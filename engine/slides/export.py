"""A slide prediction's files: heatmap.png, tiles.csv, tiles.geojson (QuPath imports it) and slide.json.

Coordinates are level-0 pixels, as QuPath and OpenSlide count them. The heatmap has one pixel per tile
(scaled up with nearest-neighbour so tiles stay square): blue (0) through yellow to red (1), transparent
where there is no tissue. The colour ramp is three anchors interpolated in numpy, so the Diagnose edition
(no matplotlib) writes the same picture.
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
from engine.fileio import write_all
from engine.slides.predict import SlidePrediction

ANCHORS = np.array([[49, 54, 149], [254, 224, 144], [215, 48, 39]], dtype=np.float32)  # 0, 0.5, 1


def colourise(heat: np.ndarray) -> np.ndarray:
    """(rows, cols) probabilities with NaN -> (rows, cols, 4) uint8 RGBA."""
    p = np.clip(np.nan_to_num(heat, nan=0.0), 0.0, 1.0)[..., None]
    low = ANCHORS[0] + (ANCHORS[1] - ANCHORS[0]) * np.clip(p * 2, 0, 1)
    high = ANCHORS[1] + (ANCHORS[2] - ANCHORS[1]) * np.clip(p * 2 - 1, 0, 1)
    rgb = np.where(p < 0.5, low, high)
    alpha = np.where(np.isnan(heat), 0, 255)[..., None]
    return np.concatenate([rgb, alpha], axis=-1).round().astype(np.uint8)


def heatmap_png(pred: SlidePrediction, max_side: int = 2048) -> bytes:
    heat = colourise(pred.heatmap())
    rows, cols = heat.shape[:2]
    scale = max(1, max_side // max(rows, cols))
    image = Image.fromarray(heat, "RGBA").resize((cols * scale, rows * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def tiles_csv(pred: SlidePrediction) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["x", "y", "width", "height", "level", "tissue", "probability", "predicted"])
    for tile, p in zip(pred.tiles, pred.probabilities):
        row = [tile.x, tile.y, tile.size, tile.size, pred.level, f"{tile.tissue:.3f}", f"{p:.6f}", pred.predicted(p)]
        writer.writerow(row)
    return buffer.getvalue()


def tiles_geojson(pred: SlidePrediction) -> dict:
    """A FeatureCollection of one square Polygon per tissue tile, QuPath-style properties."""
    features = []
    for tile, p in zip(pred.tiles, pred.probabilities):
        x0, y0, x1, y1 = tile.x, tile.y, tile.x + tile.size, tile.y + tile.size
        name = pred.predicted(p)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]},
                "properties": {
                    "objectType": "tile",
                    "classification": {"name": name},
                    "measurements": {"probability": round(float(p), 6)},
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def write_slide_outputs(pred: SlidePrediction, out_dir: str | Path, model_path: str | Path) -> dict[str, Path]:
    """Write the four files into ``out_dir`` together (all or nothing); return their paths."""
    out = Path(out_dir)
    record = {
        "slide": Path(pred.info.path).name,
        "dimensions": list(pred.info.dimensions),
        "mpp": list(pred.info.mpp) if pred.info.mpp else None,
        "model": Path(model_path).name,
        "model_sha256": pred.model_sha256,
        "histoguard_version": __version__,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tile_size": pred.tile_size,
        "level": pred.level,
        "grid": list(pred.grid),
        **pred.summary(),
    }
    files = {
        out / "heatmap.png": heatmap_png(pred),
        out / "tiles.csv": tiles_csv(pred).encode(),
        out / "tiles.geojson": json.dumps(tiles_geojson(pred)).encode(),
        out / "slide.json": (json.dumps(record, indent=2) + "\n").encode(),
    }
    write_all(files)
    return {p.name: p for p in files}
