"""Is the Slides page responsive while a whole slide is predicted? The window opens offscreen, a slide and a
model are opened, and while the prediction runs the view is zoomed and panned every 60 ms (through the
pyramid levels) while a 20 ms timer records the event loop's gaps: a gap is time the window could not
react. A screenshot is taken mid-run.

    python -m bench.slide_viewer --slide SLIDE --model MODEL.onnx [--shot mid-run.png]

Without --slide, the synthetic 20,000 x 20,000 px demo slide is written into a temporary folder (90 s);
without --model, a tiny torch-free model (engine.deploy.tiny) predicts.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import bench_main, table


def run(slide: str = "", model: str = "", shot: str = "", after_s: float = 5.0) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="histoguard-bench-viewer-"))
    os.environ.setdefault("HISTOGUARD_SETTINGS", str(tmp / "settings.ini"))
    from PySide6.QtCore import QTimer

    from desktop_app.app import build_window, get_app
    from desktop_app.tools.screenshots import settle

    if not slide:
        from engine.data.demo_slide import write_demo_slide

        slide = str(write_demo_slide(tmp / "demo-slide.tiff", 20000))
    if not model:
        from engine.deploy.tiny import write_tiny_model

        model = str(write_tiny_model(tmp / "tiny.onnx"))
    app = get_app()
    window = build_window()
    window.app = app
    window.resize(1280, 800)
    window.show()
    window.controller.detect_device()
    settle(app, window)
    window.ctx.state.set_onnx(Path(model))
    window.show_page("Slides")
    page = window.page("SlidesPage")
    page.open_slide(Path(slide))
    settle(app, window)
    view = page.view
    gaps: list[float] = []
    last: list[float | None] = [None]
    levels: list[int] = []

    def tick() -> None:
        now = time.perf_counter()
        if last[0] is not None:
            gaps.append(now - last[0])
        last[0] = now

    def interact() -> None:
        n = len(levels)
        view.zoom_by(1.3 if n % 16 < 8 else 1 / 1.3)
        bar = view.horizontalScrollBar()
        bar.setValue(bar.value() + (25 if n % 32 < 16 else -25))
        view.verticalScrollBar().setValue(view.verticalScrollBar().value() + 10)
        levels.append(view.level)

    meter, poke = QTimer(), QTimer()
    meter.setInterval(20)
    meter.timeout.connect(tick)
    poke.setInterval(60)
    poke.timeout.connect(interact)
    view.zoom_by(4)
    start = time.perf_counter()
    meter.start()
    poke.start()
    if page.run_prediction() is None:
        raise RuntimeError(f"the Slides page did not start a prediction: {window.ctx.errors.history}")
    shot_at = None
    while window.ctx.tasks.busy:
        app.processEvents()
        time.sleep(0.005)
        if shot and shot_at is None and time.perf_counter() - start > after_s:
            window.grab().save(shot)
            shot_at = time.perf_counter() - start
            last[0] = None  # the grab is the benchmark's own pause, not the app's
    seconds = time.perf_counter() - start
    meter.stop()
    poke.stop()
    tiles = len(page.prediction.tiles) if page.prediction is not None else 0
    errors = list(window.ctx.errors.history)
    window.close()
    g = np.array(gaps) * 1000
    return {
        "slide": Path(slide).name, "model": Path(model).name, "tiles": tiles, "seconds": seconds,
        "gap_median_ms": float(np.median(g)), "gap_p99_ms": float(np.percentile(g, 99)), "gap_max_ms": float(g.max()),
        "ticks": len(g), "view_steps": len(levels), "levels": sorted(set(levels)), "shot_at": shot_at,
        "errors": errors,
    }  # fmt: skip


def render(r: dict) -> str:
    rows = [
        ["slide, model", f"{r['slide']}, {r['model']}"],
        ["prediction", f"{r['tiles']:,} tissue tiles in {r['seconds']:.0f} s ({r['tiles'] / r['seconds']:.1f}/s)"],
        ["view steps (zoom + pan every 60 ms)", f"{r['view_steps']}, through levels {r['levels']}"],
        ["event-loop gap (20 ms timer)", f"median {r['gap_median_ms']:.0f} ms, p99 {r['gap_p99_ms']:.0f} ms, "
                                          f"max {r['gap_max_ms']:.0f} ms over {r['ticks']} ticks"],
        ["errors", str(r["errors"] or "none")],
    ]  # fmt: skip
    return "### Slides page while a slide is predicted (CPU)\n\n" + table(["what", "measured"], rows)


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run, render, slide="", model="", shot="", after_s=5.0))
