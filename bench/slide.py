"""Whole-slide throughput: the SYNTHETIC demo slide (engine.data.demo_slide; 20,000 x 20,000 px at
0.5 µm/px, tissue on about 40 % of it) predicted tile by tile with DenseNet121 at 224 px through
onnxruntime, as `histoguard slide` does, with the process's peak memory beside the slide's size (tiles are
streamed); then the FGSM robustness map (minimal flipping eps per tile, white-box on the checkpoint) on
the ``--robust_tiles`` most suspicious tiles.

    python -m bench.slide [--side 20000] [--arch densenet121] [--size 224] [--robust_tiles 256]

The slide is written tile by tile (never whole in memory) into a temporary folder; the weights are
untrained (speed does not depend on them, except that untrained calls flip at other eps).
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from bench.common import bench_main, table


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model_pair(folder: Path, arch: str, size: int) -> Path:
    """An ONNX file with its checkpoint where the run-folder layout puts it (model.onnx, model/best.pt)."""
    from engine.export.onnx_export import export_onnx
    from engine.models.checkpoint import make_metadata, save_checkpoint
    from engine.models.registry import create_model

    model = create_model(arch).eval()
    meta = make_metadata(arch, ("benign", "malignant"), size, {"method": "clean"}, split_hash="bench")
    save_checkpoint(folder / "model" / "best.pt", model, meta)
    export_onnx(model, folder / "model.onnx", meta, size)
    return folder / "model.onnx"


def run(side: int = 20000, arch: str = "densenet121", size: int = 224, robust_tiles: int = 256) -> dict:
    from engine.core.config import AttackConfig
    from engine.data.demo_slide import MPP, write_demo_slide
    from engine.slides.predict import predict_slide
    from engine.workflows.slide_robustness import slide_robustness

    with tempfile.TemporaryDirectory() as tmp:
        slide = Path(tmp) / "slide.tiff"
        start = time.perf_counter()
        write_demo_slide(slide, side)
        written = time.perf_counter() - start
        model = _model_pair(Path(tmp), arch, size)
        before = _peak_mb()
        start = time.perf_counter()
        pred = predict_slide(slide, model, model_mpp=MPP, device="cpu")
        seconds = time.perf_counter() - start
        peak = _peak_mb()
        start = time.perf_counter()
        flips = slide_robustness(slide, model, pred, AttackConfig("fgsm", 16 / 255), limit=robust_tiles, device="cpu")
        robust_s = time.perf_counter() - start
        attacked = int((flips == flips).sum())  # not NaN
    return {
        "side": side, "arch": arch, "size": size, "tiles": len(pred.tiles), "grid": pred.grid, "seconds": seconds,
        "write_s": written, "peak_mb": peak, "before_mb": before, "slide_mb": side * side * 3 / 2**20,
        "robust_tiles": attacked, "robust_s": robust_s, "robust_peak_mb": _peak_mb(),
    }  # fmt: skip


def render(r: dict) -> str:
    rows = [
        ["slide", f"{r['side']:,} x {r['side']:,} px, RGB {r['slide_mb']:,.0f} MiB uncompressed"],
        ["writing the slide", f"{r['write_s']:.0f} s"],
        ["tissue tiles", f"{r['tiles']:,} of {r['grid'][0] * r['grid'][1]:,} ({r['size']} px, {r['arch']})"],
        ["prediction (onnxruntime)", f"{r['seconds']:.0f} s, {r['tiles'] / r['seconds']:.1f} tiles/s"],
        ["peak memory (RSS)", f"{r['peak_mb']:,.0f} MiB ({r['before_mb']:,.0f} MiB before predicting)"],
        [
            "FGSM robustness map (torch)",
            f"{r['robust_tiles']:,} tiles in {r['robust_s']:.0f} s, {r['robust_tiles'] / r['robust_s']:.2f} tiles/s; "
            f"peak RSS {r['robust_peak_mb']:,.0f} MiB",
        ],
    ]
    return "### Whole slide (CPU)\n\n" + table(["what", "measured"], rows)


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run, render, side=20000, arch="densenet121", size=224, robust_tiles=256))
