"""Cohort throughput: slides/min and tiles/s of ``histoguard slides`` in one process, on Ray with 1 worker and on
Ray with 2 workers, over a few synthetic slides (tests' pyramids, the self-test's tiny ONNX model, so the numbers
measure the cohort machinery and slide reading more than a network). ``bench/slide.py`` can call
``cohort_throughput``; ``python bench/cohort.py --slides 4 --side 2048`` runs it alone."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cohort_throughput(n_slides: int = 4, side: int = 2048, modes=("single", "ray-1", "ray-2"), model_mpp=1.0) -> dict:
    """{mode: {"seconds", "slides_per_min", "tiles_per_s", "tiles"}} for each mode, on fresh output folders (a
    Ray mode's time includes starting and stopping its local cluster, as a user's run would)."""
    from engine.deploy.tiny import write_tiny_model
    from engine.slides.cohort import CohortSettings
    from engine.workflows.cohort import run_cohort
    from tests.engine.slides.test_cohort import write_cohort

    root = Path(tempfile.mkdtemp(prefix="hg-cohort-bench-"))
    try:
        slides = write_cohort(root / "slides", n_slides, side)
        model = write_tiny_model(root / "tiny.onnx", image_size=32)
        settings, out = CohortSettings(model_mpp=model_mpp), {}
        for mode in modes:
            ray, workers = (None, None) if mode == "single" else ("local", int(mode.split("-")[1]))
            start = time.perf_counter()
            result = run_cohort([slides], model, root / mode, settings, ray=ray, workers=workers)
            seconds = time.perf_counter() - start
            tiles = sum(int(r.get("tissue_tiles") or 0) for r in result["rows"])
            out[mode] = {
                "seconds": round(seconds, 2),
                "slides_per_min": round(60 * n_slides / seconds, 1),
                "tiles_per_s": round(tiles / seconds, 1),
                "tiles": tiles,
            }
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slides", type=int, default=4)
    parser.add_argument("--side", type=int, default=2048)
    a = parser.parse_args()
    sys.stdout.write(json.dumps(cohort_throughput(a.slides, a.side), indent=2) + "\n")
