"""Whole-slide throughput: the SYNTHETIC demo slide (engine.data.demo_slide; 20,000 x 20,000 px at
0.5 µm/px, tissue on about 40 % of it) predicted tile by tile with DenseNet121 at 224 px through
onnxruntime, as `histoguard slide` does, with the process's peak memory beside the slide's size (tiles are
streamed); then the FGSM robustness map (minimal flipping eps per tile, white-box on the checkpoint) on
the ``--robust_tiles`` most suspicious tiles (0: skip it).

Tile throughput: slide prediction's tiles/s with the next batches read ahead on a background thread (the
default) and read in line (``prefetch=0``, the old loop), each against onnxruntime's batched rate on the same
tiles already in memory (up to 1,024 of them, spread over the slide) with the same session settings: "slide
prediction runs at X% of the model's batched rate". The rate is given end to end (opening the model and finding
tissue included, as a user waits) and over the tile loop alone (from the first batch's result to the last).

Cohort throughput (``--cohort_slides N``, 0: skip): ``histoguard slides`` on N synthetic slides of
``--cohort_side`` px with a tiny model (``bench/cohort.py``), in one process and on a local Ray cluster with 1 and
2 workers.

    python -m bench.slide [--side 20000] [--arch densenet121] [--size 224] [--robust_tiles 256] [--reps 2]
    OMP_NUM_THREADS=1 python -m bench.slide --side 8000 --arch small_cnn --size 64 --robust_tiles 0  # ~1 min

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


def tile_throughput(slide: Path, model: Path, model_mpp: float | None, reps: int = 2, sample: int = 1024) -> dict:
    """Slide prediction's tiles/s, read ahead (``prefetch`` 2) and in line (0), against the model's batched rate
    (``run_session``, batch 32, same session settings) on up to ``sample`` of the slide's tiles in memory (at most
    256 MiB of them); the three are measured in turn ``reps`` times, so a change in the machine's load hits all
    alike, and the best of each is kept. ``peak_mb``: the process's peak RSS after the first prediction, before
    the sample is loaded; ``prediction``: a SlidePrediction of the slide."""
    from engine.deploy.session import create_session, run_session, session_meta
    from engine.slides.predict import predict_slide

    session = create_session(model, device="cpu")
    size = session_meta(session).image_size
    runs, batched, images, peak = {"inline": [], "ahead": []}, [], None, None
    for _ in range(reps):
        for name, depth in (("inline", 0), ("ahead", 2)):
            runs[name].append(_timed_prediction(predict_slide, slide, model, model_mpp, depth))
            if images is None:
                pred, peak = runs[name][-1]["pred"], _peak_mb()
                images = _sample_tiles(slide, pred, size, max(32, min(sample, (256 << 20) // (3 * size * size * 4))))
                run_session(session, images[:64], 32)  # warm-up
        start = time.perf_counter()
        run_session(session, images, 32)
        batched.append(len(images) / (time.perf_counter() - start))
    out = {"tiles": len(pred.tiles), "grid": pred.grid, "batched_tiles_s": max(batched), "sample": len(images)}
    out |= {"peak_mb": peak, "prediction": pred, "reps": reps}
    for name, results in runs.items():
        best = min(results, key=lambda r: r["seconds"])
        out[name] = {
            "seconds": best["seconds"], "tiles_s": len(pred.tiles) / best["seconds"],
            "loop_tiles_s": max(r["loop_tiles_s"] for r in results),
        }  # fmt: skip
    return out


def _sample_tiles(slide: Path, pred, size: int, n: int):
    """Up to ``n`` of the prediction's tiles, spread over the slide, read as the prediction reads them."""
    from engine.slides.predict import read_tiles
    from engine.slides.reader import open_slide

    chosen = pred.tiles[:: max(1, len(pred.tiles) // n)][:n]
    with open_slide(slide) as handle:
        return read_tiles(handle, chosen, level=pred.level, size=size)


def _timed_prediction(predict_slide, slide: Path, model: Path, model_mpp: float | None, prefetch: int) -> dict:
    marks = []
    start = time.perf_counter()
    pred = predict_slide(
        slide, model, model_mpp=model_mpp, device="cpu", prefetch=prefetch,
        on_progress=lambda p: marks.append((time.perf_counter(), p.done)),
    )  # fmt: skip
    seconds = time.perf_counter() - start
    (t0, d0), (t1, d1) = marks[0], marks[-1]
    return {"pred": pred, "seconds": seconds, "loop_tiles_s": (d1 - d0) / (t1 - t0) if t1 > t0 else float("nan")}


def run(
    side: int = 20000, arch: str = "densenet121", size: int = 224, robust_tiles: int = 256, reps: int = 2,
    cohort_slides: int = 4, cohort_side: int = 2048,
) -> dict:  # fmt: skip
    from engine.data.demo_slide import MPP, write_demo_slide

    with tempfile.TemporaryDirectory() as tmp:
        slide = Path(tmp) / "slide.tiff"
        start = time.perf_counter()
        write_demo_slide(slide, side)
        written = time.perf_counter() - start
        model = _model_pair(Path(tmp), arch, size)
        before = _peak_mb()
        throughput = tile_throughput(slide, model, MPP, reps=reps)
        peak = throughput["peak_mb"]
        out = {
            "side": side, "arch": arch, "size": size, "tiles": throughput["tiles"], "grid": throughput["grid"],
            "seconds": throughput["ahead"]["seconds"], "write_s": written, "peak_mb": peak, "before_mb": before,
            "slide_mb": side * side * 3 / 2**20, "throughput": throughput,
        }  # fmt: skip
        if robust_tiles > 0:
            out |= _robustness_map(slide, model, throughput["prediction"], robust_tiles)
    if cohort_slides > 0:
        from bench.cohort import cohort_throughput

        out["cohort"] = {"slides": cohort_slides, "side": cohort_side,
                         "modes": cohort_throughput(cohort_slides, cohort_side)}  # fmt: skip
    return out


def _robustness_map(slide: Path, model: Path, pred, robust_tiles: int) -> dict:
    from engine.core.config import AttackConfig
    from engine.workflows.slide_robustness import slide_robustness

    start = time.perf_counter()
    flips = slide_robustness(slide, model, pred, AttackConfig("fgsm", 16 / 255), limit=robust_tiles, device="cpu")
    robust_s = time.perf_counter() - start
    attacked = int((flips == flips).sum())  # not NaN
    return {"robust_tiles": attacked, "robust_s": robust_s, "robust_peak_mb": _peak_mb()}


def render(r: dict) -> str:
    rows = [
        ["slide", f"{r['side']:,} x {r['side']:,} px, RGB {r['slide_mb']:,.0f} MiB uncompressed"],
        ["writing the slide", f"{r['write_s']:.0f} s"],
        ["tissue tiles", f"{r['tiles']:,} of {r['grid'][0] * r['grid'][1]:,} ({r['size']} px, {r['arch']})"],
        ["prediction (onnxruntime)", f"{r['seconds']:.0f} s, {r['tiles'] / r['seconds']:.1f} tiles/s"],
        ["peak memory (RSS)", f"{r['peak_mb']:,.0f} MiB ({r['before_mb']:,.0f} MiB before predicting)"],
    ]
    if "robust_s" in r:
        rows.append(
            [
                "FGSM robustness map (torch)",
                f"{r['robust_tiles']:,} tiles in {r['robust_s']:.0f} s, "
                f"{r['robust_tiles'] / r['robust_s']:.2f} tiles/s; peak RSS {r['robust_peak_mb']:,.0f} MiB",
            ]
        )
    text = "### Whole slide (CPU)\n\n" + table(["what", "measured"], rows)
    text += render_throughput(r["throughput"]) if "throughput" in r else ""
    return text + (render_cohort(r["cohort"]) if "cohort" in r else "")


def render_cohort(c: dict) -> str:
    """``histoguard slides`` on a few synthetic slides: one process, then Ray with 1 and 2 workers."""
    names = {"single": "one process", "ray-1": "Ray, 1 worker", "ray-2": "Ray, 2 workers"}
    rows = [[names.get(m, m), f"{v['seconds']:.1f} s", f"{v['slides_per_min']:.1f}", f"{v['tiles_per_s']:.1f}"]
            for m, v in c["modes"].items()]  # fmt: skip
    return (
        f"\n\n#### Cohort throughput ({c['slides']} synthetic slides of {c['side']:,} px, a tiny model; a Ray run's "
        "time includes starting and stopping its local cluster)\n\n"
        + table(["histoguard slides", "time", "slides/min", "tiles/s"], rows)
        + "\n"
    )


def render_throughput(t: dict) -> str:
    """The tile-throughput table: each way of reading against the model's batched rate on tiles in memory."""
    batched = t["batched_tiles_s"]
    rows = [["the model alone, batch 32, tiles in memory", f"{batched:,.0f}", "", "100%", ""]]
    for name, what in (("inline", "slide prediction, tiles read in line"), ("ahead", "slide prediction, read ahead")):
        w = t[name]
        end, loop = w["tiles_s"], w["loop_tiles_s"]
        rows.append([what, f"{end:,.0f}", f"{loop:,.0f}", f"{end / batched:.0%}", f"{loop / batched:.0%}"])
    head = ["", "tiles/s end to end", "tiles/s tile loop", "of batched (end to end)", "of batched (loop)"]
    ahead = t["ahead"]
    return (
        f"\n\n#### Tile throughput ({t['tiles']:,} tiles; batched rate on {t['sample']:,} of them; best of "
        f"{t.get('reps', 1)} runs each, interleaved)\n\n"
        + table(head, rows)
        + f"\n\nSlide prediction runs at {ahead['tiles_s'] / batched:.0%} of the model's batched rate end to end "
        f"({ahead['loop_tiles_s'] / batched:.0%} over the tile loop); reading in line: "
        f"{t['inline']['tiles_s'] / batched:.0%}.\n"
    )


if __name__ == "__main__":
    raise SystemExit(
        bench_main(
            __doc__,
            run,
            render,
            side=20000,
            arch="densenet121",
            size=224,
            robust_tiles=256,
            reps=2,
            cohort_slides=4,
            cohort_side=2048,
        )  # fmt: skip
    )
