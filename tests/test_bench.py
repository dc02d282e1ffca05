"""The benchmark scripts stay runnable: the cheap one end to end, the others' tables from given numbers."""

from __future__ import annotations

import json
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
    cohort = {"slides": 4, "side": 2048, "modes": {
        "single": {"seconds": 2.8, "slides_per_min": 84.0, "tiles_per_s": 90.0, "tiles": 256},
        "ray-2": {"seconds": 13.1, "slides_per_min": 18.3, "tiles_per_s": 19.5, "tiles": 256}}}  # fmt: skip
    text = slide.render_cohort(cohort)
    assert "| one process | 2.8 s | 84.0 | 90.0 |" in text and "| Ray, 2 workers | 13.1 s | 18.3 | 19.5 |" in text
    text = slide_viewer.render(
        {"slide": "s.tiff", "model": "m.onnx", "tiles": 1500, "seconds": 15.0, "gap_median_ms": 21.0,
         "gap_p99_ms": 60.0, "gap_max_ms": 90.0, "ticks": 700, "view_steps": 250, "levels": [0, 1, 2], "errors": []}
    )  # fmt: skip
    assert "100.0/s" in text and "median 21 ms, p99 60 ms, max 90 ms over 700 ticks" in text


def test_ablation_quick_trains_each_lever_evaluates_it_and_writes_the_table(tmp_path, shared_data):
    def ablation(*extra):
        cmd = [sys.executable, "-m", "bench.ablation", "--quick", "--threads", "1"]
        levers = ["--levers", "baseline,ema,awp,combined", "--out", str(tmp_path)]
        return subprocess.run([*cmd, *levers, *extra], cwd=REPO, capture_output=True, text=True, timeout=600)

    out = ablation()
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((tmp_path / "ablation.json").read_text())
    md = (tmp_path / "ablation.md").read_text()
    assert list(report["results"]) == ["baseline", "ema", "awp", "combined"] and md in out.stdout
    assert "| lever | what | clean bal. acc. | PGD-2 2/255 | PGD-2 8/255 | worst case 8/255 |" in md
    ema = report["results"]["ema"]
    assert ema["how_trained"]["ema"]["decay"] == 0.999 and ema["how_trained"]["defence"] == "fgsm-rs"
    assert report["results"]["awp"]["how_trained"]["awp"]["gamma"] == 0.005
    assert {"balanced_accuracy", "ci"} <= set(ema["pgd"]["8/255"]) and ema["train_seconds"] > 0
    assert (tmp_path / "awp" / "best.pt").is_file() and (tmp_path / "awp" / "result.json").is_file()
    again = ablation("--reuse")  # the same settings: every result is read back, nothing is trained
    assert again.returncode == 0 and again.stderr.count("reusing") >= 3, again.stderr[-3000:]
    assert "trained in" not in again.stderr
    assert json.loads((tmp_path / "ablation.json").read_text())["results"] == report["results"]


def test_ablation_combines_the_levers_that_beat_the_baseline():
    from bench.ablation import combination, settings

    s = settings(10, "cpu", quick=False)
    scores = {"baseline": 0.7, "ema": 0.72, "hed": 0.69, "trades-1": 0.71, "trades-3": 0.73, "long": 0.75}
    changes, named = combination({k: {"score": v} for k, v in scores.items()}, None, s)
    assert named == ["ema", "trades-3", "long"]  # of the TRADES betas only the best
    assert changes == {"ema_decay": 0.999, "adversarial": "trades", "trades_beta": 3.0, "epochs": 20}
    assert combination({}, ("hed", "mix"), s) == (
        {"hed_scale": 0.2, "hed_shift": 0.05, "adv_ratio": 0.5},
        ["hed", "mix"],
    )


def test_explanation_timing_table():
    from bench import explain

    row = {"size": 64, "method": "occlusion", "map": 0.4, "map_cpu": 0.2, "checked": 0.8, "checked_cpu": 0.4,
           "settings": {"window": 16, "stride": 8, "seed": 0}}  # fmt: skip
    text = explain.render({"threads": 1, "load": (5.0, 4.0, 3.0), "rows": [row]})
    assert "1 threads (load average 5.0, 4.0, 3.0)" in text and "| 64 | occlusion | 0.4 | 0.2 | 0.8 | 0.4 |" in text
    assert "window 16, stride 8 |" in text and "seed" not in text.split("\n")[-2]


def test_certified_quick_trains_a_noise_model_per_sigma_and_certifies_it(tmp_path, shared_data):
    cmd = [sys.executable, "-m", "bench.certified", "--quick", "--threads", "1", "--sigmas", "0.25,0.5"]
    out = subprocess.run([*cmd, "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((tmp_path / "certified.json").read_text())
    md = (tmp_path / "certified.md").read_text()
    assert list(report["results"]) == ["0.25", "0.5"] and md in out.stdout
    for sigma, r in report["results"].items():
        assert r["sigma"] == float(sigma) and r["n"] == 200 and r["n_images"] == 12
        assert [c["radius"] for c in r["curve"]] == [0.0, 0.125, 0.25, 0.375, 0.5, 0.75, 1.0]
        balanced = [c["balanced_accuracy"] for c in r["curve"]]
        assert balanced == sorted(balanced, reverse=True)  # a certificate at r holds at every smaller radius
        assert (tmp_path / f"sigma-{sigma}" / "model.onnx").is_file()
    # sigma 0.25 cannot certify beyond sigma * Phi^-1(alpha^(1/n)) = 0.46 at n = 200: nothing at r = 0.75
    assert report["results"]["0.25"]["curve"][5]["balanced_accuracy"] == 0.0
    assert "| sigma | r = 0 (L-inf 0.00/255) |" in md and "best at L2 radius 0.25" in md
