"""The benchmark scripts stay runnable: the cheap one end to end, the others' tables from given numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench import attacks, inference, run, training

REPO = Path(__file__).resolve().parents[1]


def test_bench_run_prints_header_and_the_peak_table():
    out = subprocess.run(
        [sys.executable, "-m", "bench.run", "--only", "peak"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "torch threads" in out.stdout and "### Peak" in out.stdout and "| float32 |" in out.stdout
    assert out.stdout.count("## HistoGuard benchmarks") == 1


def test_unknown_benchmark_is_refused():
    out = subprocess.run(
        [sys.executable, "-m", "bench.run", "--only", "nope"], cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 2 and "unknown benchmark" in out.stderr
    assert run.BENCHES[0] == "peak"


def test_tables_show_ratios_and_say_whether_targets_are_met():
    text = training.render(
        {
            "img_s": {"reference": 10.0, "ours, cold": 18.0, "ours, cached": 25.0},
            "n": 64,
            "source": "x",
            "precision": "fp32",
        }
    )
    assert "| ours, cached | 25 | 2.50x |" in text and "met (target >= 2x)" in text
    rows = [
        {"runtime": "torch eager fp32", "batch": 1, "seconds": 0.1, "img_s": 10.0},
        {"runtime": "onnxruntime fp32", "batch": 1, "seconds": 0.08, "img_s": 12.5},
    ]
    text = inference.render(
        {"rows": rows, "agreement": {"onnxruntime fp32": (1.0, 1e-7)}, "peak": 100.0, "provider": "CPU"}
    )
    assert "1.25x" in text and "MISSED (target >= 1.5x)" in text
    timing = {
        ("ours", "fgsm"): 1.0,
        ("torchattacks, same process", "fgsm"): 1.2,
        ("torchattacks, plain process", "fgsm"): 1.5,
    }
    timing |= {(who, "pgd"): 10 * s for (who, _), s in timing.items()}
    text = attacks.render({"rows": timing, "agreement": {"fgsm": (1.0, 1.0)}, "batch": 8})
    assert "| FGSM | ours | 8 | 1.20x | 1.50x |" in text and "met (target >= 1.3x)" in text


def test_whole_slide_tables():
    from bench import slide, slide_viewer

    text = slide.render(
        {"side": 20000, "arch": "densenet121", "size": 224, "tiles": 3000, "grid": (89, 89), "seconds": 150.0,
         "write_s": 90.0, "peak_mb": 1800.0, "before_mb": 1100.0, "slide_mb": 1144.0, "robust_tiles": 256,
         "robust_s": 128.0, "robust_peak_mb": 2000.0}
    )  # fmt: skip
    assert "20.0 tiles/s" in text and "256 tiles in 128 s, 2.00 tiles/s" in text and "3,000 of 7,921" in text
    text = slide_viewer.render(
        {"slide": "s.tiff", "model": "m.onnx", "tiles": 1500, "seconds": 15.0, "gap_median_ms": 21.0,
         "gap_p99_ms": 60.0, "gap_max_ms": 90.0, "ticks": 700, "view_steps": 250, "levels": [0, 1, 2], "errors": []}
    )  # fmt: skip
    assert "100.0/s" in text and "median 21 ms, p99 60 ms, max 90 ms over 700 ticks" in text
