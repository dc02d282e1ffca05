"""Whole-slide throughput: a synthetic 20,000 x 20,000 pixel pyramidal TIFF (0.5 µm/px, tissue on about
half of it) predicted tile by tile with DenseNet121 at 224 px through onnxruntime, as `histoguard slide`
does, with the process's peak memory beside the slide's size (tiles are streamed).

    python -m bench.slide [--side 20000] [--arch densenet121] [--size 224]

The slide is written tile by tile (never whole in memory) into a temporary folder; the weights are
untrained (speed does not depend on them).
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import bench_main, table

TILE, MPP = 512, 0.5


def write_slide(path: Path, side: int) -> None:
    """A tiled, zlib-compressed pyramid of a slide with an elliptical tissue region, built tile by tile."""
    import tifffile

    def tiles(level: int):
        f = 2**level
        n = -(-side // f // TILE)
        rng = np.random.default_rng(level)
        for r in range(n):
            for c in range(n):
                y, x = (np.mgrid[0:TILE, 0:TILE] + np.array([r, c])[:, None, None] * TILE) * f
                inside = ((x - side / 2) / (side * 0.42)) ** 2 + ((y - side / 2) / (side * 0.3)) ** 2 < 1
                tile = np.where(inside[..., None], (200, 120, 185), (236, 236, 236)).astype(np.int16)
                tile += rng.integers(-8, 9, tile.shape, dtype=np.int16)
                yield np.clip(tile, 0, 255).astype(np.uint8)

    opts = {"tile": (TILE, TILE), "photometric": "rgb", "compression": "zlib", "resolutionunit": "CENTIMETER"}
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        for level in range(4):
            f = 2**level
            s = -(-side // f)
            extra = {"subfiletype": 1} if level else {}
            tw.write(tiles(level), shape=(s, s, 3), dtype=np.uint8, resolution=(1e4 / (MPP * f),) * 2, **opts, **extra)


def run(side: int = 20000, arch: str = "densenet121", size: int = 224) -> dict:
    from engine.export.onnx_export import export_onnx
    from engine.models.checkpoint import make_metadata
    from engine.models.registry import create_model
    from engine.slides.predict import predict_slide

    with tempfile.TemporaryDirectory() as tmp:
        slide, model = Path(tmp) / "slide.tiff", Path(tmp) / "model.onnx"
        start = time.perf_counter()
        write_slide(slide, side)
        written = time.perf_counter() - start
        export_onnx(create_model(arch).eval(), model, make_metadata(arch, ("benign", "malignant"), size, {}), size)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        pred = predict_slide(slide, model, model_mpp=MPP, device="cpu")
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "side": side, "arch": arch, "size": size, "tiles": len(pred.tiles), "grid": pred.grid, "seconds": seconds,
        "write_s": written, "peak_mb": peak, "before_mb": before, "slide_mb": side * side * 3 / 2**20,
    }  # fmt: skip


def render(r: dict) -> str:
    rows = [
        ["slide", f"{r['side']:,} x {r['side']:,} px, RGB {r['slide_mb']:,.0f} MiB uncompressed"],
        ["writing the slide", f"{r['write_s']:.0f} s"],
        ["tissue tiles", f"{r['tiles']:,} of {r['grid'][0] * r['grid'][1]:,} ({r['size']} px, {r['arch']})"],
        ["prediction", f"{r['seconds']:.0f} s, {r['tiles'] / r['seconds']:.1f} tiles/s"],
        ["peak memory (RSS)", f"{r['peak_mb']:,.0f} MiB ({r['before_mb']:,.0f} MiB before predicting)"],
    ]  # fmt: skip
    return "### Whole slide (onnxruntime, CPU)\n\n" + table(["what", "measured"], rows)


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run, render, side=20000, arch="densenet121", size=224))
