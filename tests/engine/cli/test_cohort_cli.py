"""``histoguard slides``: the table printed, exit 1 when a slide failed; a run killed with SIGKILL part-way goes on
and ends with the uninterrupted run's cohort.csv; the Diagnose edition (no PyTorch) runs a cohort."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.cli import main as cli_main
from tests.engine.slides import test_cohort
from tests.engine.slides.test_cohort import slide_folders

ROOT = Path(__file__).resolve().parents[3]
cohort, reference = test_cohort.cohort, test_cohort.reference  # fixtures (module scope)
MPP = ["--model-mpp", "2.0"]  # test_cohort.SETTINGS


def args(cohort, out) -> list[str]:
    return ["slides", str(cohort["slides"]), "--model", str(cohort["model"]), "--out", str(out), *MPP]


def test_the_command_prints_the_table_and_fails_when_a_slide_fails(cohort, reference, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli_main(args(cohort, out)) == 0
    text = capsys.readouterr().out
    assert "case_4.tiff" in text and "5 done (0 kept" in text and "top 10 tile probabilities of malignant" in text
    assert "not calibrated" in text
    assert (out / "cohort.csv").read_bytes() == (reference / "cohort.csv").read_bytes()
    bad = tmp_path / "bad.ndpi"
    bad.write_bytes(b"x")
    assert cli_main(["slides", str(bad), *args(cohort, out)[1:]]) == 1
    text = capsys.readouterr().out
    assert "5 done (5 kept" in text and "failed: bad.ndpi" in text


def test_a_killed_run_goes_on_and_ends_with_the_same_table(cohort, reference, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "engine", *args(cohort, out)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and not (out.is_dir() and slide_folders(out)):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL  # killed part-way, not finished
    assert 1 <= len(slide_folders(out)) < 5
    assert cli_main(args(cohort, out)) == 0
    assert (out / "cohort.csv").read_bytes() == (reference / "cohort.csv").read_bytes()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # the killed run's temp folder is gone


def test_the_diagnose_edition_runs_a_cohort(cohort, reference, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "tests/notorch.py", *args(cohort, out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "full-only modules imported: []" in proc.stdout
    assert (out / "cohort.csv").read_bytes() == (reference / "cohort.csv").read_bytes()
    refused = subprocess.run([sys.executable, "tests/notorch.py", *args(cohort, tmp_path / "o2"), "--robustness",
                              "fgsm"], cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert refused.returncode == 2 and "needs PyTorch" in refused.stderr
