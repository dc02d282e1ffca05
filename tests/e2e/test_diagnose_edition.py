"""The Diagnose edition, for real: PyTorch, torchvision, scikit-learn, SciPy and matplotlib cannot be imported
(``tests/notorch.py`` blocks them, as the installed edition lacks them), and every task it offers runs end to end,
from the command line and in the app (``tests/e2e/diagnose_edition.py``): datasets, prediction, certification
(randomized smoothing, also from the Diagnose page), occlusion maps (``explain``, also on the Diagnose page), the
black-box attack (also from the Stress page), INT8, slides, run folders, results and their export. What needs PyTorch
says so and stays off."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DRIVER = Path(__file__).with_name("diagnose_edition.py")


def test_every_diagnose_edition_task_runs_with_the_full_edition_blocked(run_dir, demo_root, tmp_path):
    run, data = run_dir, demo_root
    out = tmp_path / "out"
    out.mkdir()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("HISTOGUARD_EDITION", "QT_QPA_PLATFORM")}
    env |= {"HOME": str(home), "XDG_STATE_HOME": str(home / "state"), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, str(DRIVER), str(run), str(data), str(out)], capture_output=True, text=True, env=env,
        timeout=280,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[-1] == "full-only modules imported: []", lines[-1]
    assert "ok cli" in proc.stdout and "ok app" in proc.stdout
    assert "needs PyTorch" in proc.stderr and "full edition" in proc.stderr  # train and --robustness refused

    # what the command line wrote
    assert len(list(csv.DictReader(open(out / "predictions.csv")))) == 4
    certificates = list(csv.DictReader(open(out / "certificates.csv")))
    assert len(certificates) == 2 and {r["sigma"] for r in certificates} == {"0.25"}
    assert len(list(csv.DictReader(open(out / "predictions-int8.csv")))) == 4
    blackbox = json.loads((out / "blackbox.json").read_text())
    assert [r["eps"] for r in blackbox["results"]] == pytest.approx([0, 64 / 255]) and blackbox["n_images"] == 6
    assert json.loads((out / "model_a.int8.json").read_text())["split_source"].endswith("split.csv")
    assert {p.name for p in (out / "slide").iterdir()} >= {"heatmap.png", "tiles.csv", "tiles.geojson", "slide.json"}
    assert not (out / "no-run").exists() and not (out / "x").exists() and not (out / "no-map").exists()
    explained = list(csv.DictReader(open(out / "explain" / "explain_occlusion.csv")))
    assert len(explained) == 2 and all(r["sanity"] in ("passed", "FAILED") and len(r["model_sha256"]) == 64
                                       for r in explained)  # fmt: skip
    assert all(Path(r["overlay"]).is_file() and Path(r["map"]).is_file() for r in explained)

    # what the app did
    summary = json.loads(next(line for line in lines if line.startswith("summary "))[len("summary ") :])
    assert "Diagnose edition" in summary["title"] and summary["dataset_images"] == len(list(data.rglob("*.png")))
    assert summary["report"] == ["report-metrics.csv", "report.html", "report.pdf"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png") >= 6  # the run folder's figures, embedded without matplotlib
    assert len(summary["diagnosed"]) == 3 and all(p in ("benign", "malignant") for p in summary["diagnosed"])
    diagnosed = list(csv.DictReader(open(out / "diagnose.csv")))
    assert len(diagnosed) == 3 and all(r["certified_call"] in ("benign", "malignant", "abstain") for r in diagnosed)
    assert all(c in ("benign", "malignant", "abstain") for c in summary["certified"])
    assert {r["certified_sigma"] for r in diagnosed} == {"0.25"} and {r["certified_n"] for r in diagnosed} == {"100"}
    assert summary["blackbox"] == pytest.approx([0, 8 / 255])
    assert summary["slide_tiles"] > 0 and (out / "slide-app" / "slide.json").is_file()
    assert summary["white_box_enabled"] is False and summary["robustness_enabled"] is False
    assert summary["train_enabled"] is False
    assert summary["map"] == {"method": "occlusion", "shown": True, "methods": ["occlusion"]}
    assert (out / "diagnose-map.png").stat().st_size > 0
