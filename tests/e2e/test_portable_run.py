"""A run folder is portable: copied to another place (the original gone) and opened from another working
directory, every file its report names is there, and the CLI and the app use it as they used the original."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from engine.cli import main
from engine.runs.folder import RunFolder
from tests.e2e.conftest import FAST, ROBUST


@pytest.fixture(scope="module")
def moved(run_dir, demo_root, tmp_path_factory) -> tuple[Path, Path]:
    """The finished run, copied twice and the first copy deleted: no path into an earlier place can still work."""
    base = tmp_path_factory.mktemp("portable")
    shutil.copytree(run_dir, base / "first")
    shutil.copytree(base / "first", base / "elsewhere" / "run")
    shutil.rmtree(base / "first")
    return base / "elsewhere" / "run", demo_root


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path


def test_every_file_the_report_names_is_in_the_moved_folder(moved, elsewhere):
    run_dir, _ = moved
    report = json.loads((run_dir / "report.json").read_text())
    stored = [v["path"] for v in report["onnx"].values()] + [t["checkpoint"] for t in report["training"].values()]
    assert len(stored) == 6  # A, B and C: ONNX file and checkpoint each
    assert all((run_dir / s).is_file() for s in stored), stored  # relative to the folder itself, nowhere else
    run = RunFolder.open(run_dir)
    assert run.report_files(report) and all(p.is_file() and run_dir in p.parents for p in run.report_files(report))
    for markdown_link in re.findall(r"\]\(([^)]+)\)", (run_dir / "report.md").read_text()):
        assert (run_dir / markdown_link).is_file(), markdown_link
    for line in (run_dir / "SHA256SUMS").read_text().splitlines():
        assert (run_dir / line.split("  ", 1)[1]).is_file()


def test_the_cli_uses_the_moved_run(moved, elsewhere, capsys):
    run_dir, data = moved
    images = sorted(data.rglob("*.png"))[:2]
    assert main(["predict", "--model", str(run_dir / "model_b.onnx"), *map(str, images), "--out", "p.csv"]) == 0
    assert [r["error"] for r in csv.DictReader(open("p.csv"))] == ["", ""]  # the sealed model opens
    # an ONNX file is attacked through the checkpoint beside it in its (moved) run folder
    assert main(["attack", "--model", str(run_dir / "model_a.onnx"), str(images[0]), "--out", "adv"]) == 0
    assert len(list(Path("adv").glob("*.png"))) == 1
    args = ["quantize", "--model", str(run_dir / "model_a.onnx"), "--data", str(data), "--out", "a.int8.onnx"]
    assert main([*args, "--calibration-images", "8"]) == 0
    assert json.loads(Path("a.int8.json").read_text())["split_source"] == str(run_dir / "split.csv")
    cfg = json.loads((run_dir / "config.json").read_text())
    resume = ["experiment", "--data", cfg["data"]["data"], "--out", str(run_dir), *FAST, *ROBUST, "--resume"]
    assert main(resume) == 0
    assert "Report:" in capsys.readouterr().out


def test_the_app_opens_the_moved_run_and_attacks_its_models(moved, elsewhere, qtbot):
    from desktop_app.app import build_window, get_app
    from engine import api

    run_dir, _ = moved
    get_app()
    window = build_window(QSettings(str(elsewhere / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    run = window.controller.open_run(run_dir)
    assert run is not None and not window.ctx.errors.history
    assert set(run.checkpoints) == set(run.onnx) == {"A", "B", "C"}
    assert all(run_dir in p.parents for p in [*run.checkpoints.values(), *run.onnx.values()])
    assert api.checkpoint_for_onnx(run.onnx["B"]) == run.checkpoints["B"]  # the pair is found and matches
    result = api.stress_test_set({"A": run.checkpoints["A"]}, api.ImageSource.of_run(run_dir), eps_values=[8 / 255])
    assert result["n"] == run.report["split"]["test"]["n_images"]
    window.ctx.tasks.cancel_all()
    assert window.ctx.tasks.wait(20_000)
