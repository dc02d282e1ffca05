"""Attribution maps: seconds per image for each method at 64 and 224 px, DenseNet121 (untrained weights: the cost
does not depend on them), one map and the map with its randomisation check (which computes a second map on the
randomised model). Occlusion runs on the exported ONNX file with onnxruntime (the Diagnose edition), the captum
methods on the torch model. ``--threads`` sets torch's and onnxruntime's threads (default: the cores).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import bench_main, table

METHODS = ("occlusion", "gradcam", "ig", "smoothgrad")


def _explainers(size: int, tmp: Path, threads: int) -> dict:
    import torch

    from engine.deploy.explain_run import OnnxOcclusion
    from engine.explain import TorchExplainer
    from engine.export.onnx_export import export_onnx
    from engine.models.checkpoint import make_metadata
    from engine.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("densenet121").eval()
    meta = make_metadata("densenet121", ("benign", "malignant"), size, {"method": "clean"})
    path = tmp / f"densenet121_{size}.onnx"
    export_onnx(model, path, meta, size)
    out = {"occlusion": OnnxOcclusion(path, device="cpu", threads=threads)}
    for method in METHODS[1:]:
        out[method] = TorchExplainer(create_model("densenet121").eval(), meta, method, device="cpu")
    return out


def _seconds(explainer, image: np.ndarray, sanity: bool, reps: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of one map (with ``sanity``: and the randomised model's), after a warm-up."""
    from engine.deploy.explain_run import explain_image

    explain_image(explainer, image, sanity=sanity)
    walls, cpus = [], []
    for _ in range(reps):
        w0, c0 = time.perf_counter(), time.process_time()
        explain_image(explainer, image, sanity=sanity)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return float(np.median(walls)), float(np.median(cpus))


def run(reps: int = 3, threads: int = 0, sizes: str = "64,224") -> dict:
    import torch

    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in sizes.split(",")):
            image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
            for method, explainer in _explainers(size, Path(tmp), threads).items():
                one, one_cpu = _seconds(explainer, image, False, reps)
                both, both_cpu = _seconds(explainer, image, True, reps)
                rows.append({"size": size, "method": method, "map": one, "map_cpu": one_cpu, "checked": both,
                             "checked_cpu": both_cpu, "settings": explainer.settings()})  # fmt: skip
    return {"threads": threads, "load": os.getloadavg(), "rows": rows}


def render(result: dict) -> str:
    rows = [
        [r["size"], r["method"], r["map"], r["map_cpu"], r["checked"], r["checked_cpu"],
         ", ".join(f"{k} {v}" for k, v in r["settings"].items() if k not in ("randomisation", "seed"))]
        for r in result["rows"]
    ]  # fmt: skip
    load = ", ".join(f"{v:.1f}" for v in result["load"])
    return (
        f"### Attribution maps, DenseNet121, {result['threads']} threads (load average {load})\n\n"
        + table(["px", "method", "map s", "map CPU s", "with check s", "with check CPU s", "settings"], rows)
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, run, render, argv, reps=3, threads=0, sizes="64,224")


if __name__ == "__main__":
    raise SystemExit(main())
