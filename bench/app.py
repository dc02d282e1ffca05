"""How fast the desktop app answers: process start -> main window shown (painted), and -> first prediction shown.

    python -m bench.app [--runs 5]

Each run is a fresh process, offscreen, with throw-away settings and log folder. It starts like
``histoguard gui`` (window shown, then the device probe on a worker), then does what a user does: opens an
ONNX model (File > Open ONNX model), adds one slide image on the Diagnose page, presses Run prediction as
soon as it is enabled and waits until the verdict is on screen. The parent times both moments from the
child's start, so interpreter start-up and imports count. The first run is reported apart ("cold": files
may not be in the OS cache yet); the others give the warm median. The model (DenseNet-121 at 224 px,
untrained: weights do not change the time) and a 700 x 460 synthetic tissue image are made once, beforehand.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

WINDOW_TARGET_S = 2.0
RUN_TIMEOUT_S = 120.0  # one child run, window and prediction together
ARCH, IMAGE_SIZE = "densenet121", 224
IMAGE_WH = (700, 460)  # a BreakHis slide image's size

CHILD = r"""
import os, sys, time
from desktop_app.app import build_window, get_app

app = get_app()
w = build_window()
w.show()
app.processEvents()
w.grab()
sys.stdout.write("shown\n"); sys.stdout.flush()
w.controller.detect_device()  # what `histoguard gui` does right after showing the window


def wait_until(cond, what):
    deadline = time.monotonic() + float(sys.argv[3])
    while not cond():
        if w.ctx.errors.history:
            sys.stdout.write(f"error while {what}: {w.ctx.errors.history[-1][1]}\n"); sys.stdout.flush()
            os._exit(1)
        if time.monotonic() > deadline:
            sys.stdout.write(f"timeout while {what}\n"); sys.stdout.flush()
            os._exit(1)
        app.processEvents()
        time.sleep(0.002)


w.controller.open_onnx(sys.argv[1])  # File > Open ONNX model, after the dialog
w.show_page("DiagnosePage")
page = w.page("DiagnosePage")
page.add_inputs([sys.argv[2]])
wait_until(page.run_button.isEnabled, "reading the model")
page.run_button.click()
wait_until(lambda: bool(page.rows) and bool(page.verdict.text()), "predicting")
app.processEvents()
w.grab()
sys.stdout.write("predicted\n"); sys.stdout.flush()
w.ctx.tasks.cancel_all()
os._exit(0)  # leave without waiting for the device probe: the measure is over
"""


def make_inputs(folder: Path) -> tuple[Path, Path, str]:
    """An exported HistoGuard ONNX model and one slide-sized PNG in ``folder``; also says which model."""
    import torch

    from engine.data.demo import generate_demo_dataset
    from engine.export.onnx_export import export_onnx
    from engine.models.checkpoint import make_metadata
    from engine.models.registry import create_model

    torch.manual_seed(0)
    model = create_model(ARCH).eval()
    meta = make_metadata(ARCH, ["benign", "malignant"], IMAGE_SIZE, {"method": "clean", "eps": None}, split_hash="0")
    onnx_path = folder / f"{ARCH}.onnx"
    t0 = time.perf_counter()
    export_onnx(model, onnx_path, meta, IMAGE_SIZE)
    export_s = time.perf_counter() - t0
    demo = generate_demo_dataset(folder / "demo", patients_per_class=1, images_per_patient=1, image_size=IMAGE_WH)
    image = sorted(demo.rglob("*.png"))[0]
    return onnx_path, image, f"{ARCH} at {IMAGE_SIZE} px, untrained weights (export took {export_s:.0f} s)"


def once(env: dict, model: Path, image: Path) -> tuple[float, float]:
    """(seconds to window shown, seconds to first prediction shown), both from the child's start."""
    with tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(model), str(image), str(RUN_TIMEOUT_S)],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            text=True,
        )
        watchdog = threading.Timer(RUN_TIMEOUT_S + 30, proc.kill)
        watchdog.start()
        try:
            shown = proc.stdout.readline().strip()
            t_shown = time.perf_counter() - t0
            predicted = proc.stdout.readline().strip()
            t_predicted = time.perf_counter() - t0
            proc.wait()
        finally:
            watchdog.cancel()
        if (shown, predicted) != ("shown", "predicted"):
            err.seek(0)
            tail = err.read()[-2000:]
            raise RuntimeError(f"the app run failed ({shown!r}, {predicted!r}; exit {proc.returncode}):\n{tail}")
    return t_shown, t_predicted


def run(runs: int = 5) -> list[dict]:
    """One cold run then ``runs`` warm ones; a row per measure (seconds), with its target and the model used."""
    with tempfile.TemporaryDirectory(prefix="histoguard-bench-app-") as tmp:
        folder = Path(tmp)
        model, image, model_note = make_inputs(folder)
        env = {
            **os.environ,
            "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
            "HISTOGUARD_SETTINGS": str(folder / "settings.ini"),
            "HISTOGUARD_LOG_DIR": str(folder / "logs"),
        }
        cold = once(env, model, image)
        warm = [once(env, model, image) for _ in range(max(1, runs))]
    rows = []
    for i, (name, target) in enumerate((("window shown", WINDOW_TARGET_S), ("first prediction shown", None))):
        times = [w[i] for w in warm]
        median = statistics.median(times)
        rows.append(
            {
                "measure": name,
                "cold_s": cold[i],
                "warm_median_s": median,
                "min_s": min(times),
                "max_s": max(times),
                "runs": len(times),
                "target_s": target,
                "met": None if target is None else median < target,
                "model": model_note,
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "### Desktop app: time from process start\n",
        "| from process start to | cold (s) | warm median (s) | min (s) | max (s) | target | met |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        target = "—" if r["target_s"] is None else f"< {r['target_s']:g} s"
        met = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(
            f"| {r['measure']} | {r['cold_s']:.2f} | {r['warm_median_s']:.2f} | {r['min_s']:.2f} | "
            f"{r['max_s']:.2f} | {target} | {met} |"
        )
    note = (
        f"\nWarm: median of {rows[0]['runs']} runs after the cold one; offscreen Qt, throw-away settings. "
        f"Prediction: one {IMAGE_WH[0]} x {IMAGE_WH[1]} PNG with {rows[0]['model']}, opened and run as soon "
        "as the app allows, while the device probe runs on its worker as in `histoguard gui`.\n"
    )
    return "\n".join(lines) + "\n" + note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm runs after the cold one (default 5)")
    args = parser.parse_args(argv)
    from bench.common import header

    rows = run(args.runs)
    sys.stdout.write(header("HistoGuard desktop app speed") + "\n" + table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
