"""The ``histoguard`` command line end to end on a tiny synthetic demo dataset."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.evaluate.masking import masking_flags
from tests.e2e.conftest import FAST, ROBUST

NOTORCH = Path(__file__).resolve().parents[1] / "notorch.py"


def test_experiment_writes_the_run_folder(run_dir):
    for name in (
        "config.json",
        "split.csv",
        "log.txt",
        "report.md",
        "report.json",
        "model_a.onnx",
        "model_b.onnx",
        "model_a/best.pt",
        "model_b/best.pt",
        "model_c/best.pt",
        "model_c.onnx",
        "robustness_accuracy.png",
        "min_eps.png",
        "report.html",
        "cm_A_clean.png",
        "cm_B_fgsm_from_A.png",
        "sweep_accuracy.png",
    ):
        assert (run_dir / name).is_file(), name
    assert not list(run_dir.glob("*.onnx.data")), "ONNX files must be self-contained"
    assert "SYNTHETIC" in (run_dir / "report.md").read_text()


def test_report_json_has_the_promised_schema(run_dir):
    report = json.loads((run_dir / "report.json").read_text())
    assert report["split"]["level"] == "patient"
    assert report["dataset"]["synthetic"] is True and report["eps"] == pytest.approx(4 / 255)
    keys = {
        "model",
        "condition",
        "attack_source",
        "eps",
        "level",
        "accuracy",
        "balanced_accuracy",
        "sensitivity",
        "specificity",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "confusion_matrix",
        "n",
    }
    combos = set()
    for e in report["evaluations"]:
        assert keys <= set(e)
        (tn, fp), (fn, tp) = e["confusion_matrix"]
        assert tn + fp + fn + tp == e["n"]
        combos.add((e["model"], e["condition"], e["attack_source"], e["level"]))
    for level in ("image", "patient"):
        assert {
            ("A", "clean", None, level),
            ("A", "fgsm", "A", level),
            ("B", "clean", None, level),
            ("B", "fgsm", "A", level),
            ("B", "fgsm", "B", level),
        } <= combos
    assert {r["eps"] for r in report["sweep"]} >= {0.0, 8 / 255}
    for name in ("A", "B"):
        assert report["onnx"][name]["max_abs_diff"] <= 1e-4
        assert report["onnx"][name]["path"] == f"model_{name.lower()}.onnx"  # relative to the run folder
        assert report["training"][name]["checkpoint"] == f"model_{name.lower()}/best.pt"


def test_report_has_the_robustness_section(run_dir):
    report = json.loads((run_dir / "report.json").read_text())
    robust = report["robustness"]
    assert report["training"]["C"]["how_trained"]["defence"] == "fgsm-rs"
    assert report["training"]["C"]["selected_by"] == "val_pgd_balanced_accuracy"
    rows = robust["rows"]
    eps_values = [e for e in report["config"]["sweep_eps"] if e > 0]
    for model in ("A", "B", "C"):
        for attack in ("fgsm", "pgd"):
            got = sorted(r["eps"] for r in rows if (r["model"], r["attack"], r["kind"]) == (model, attack, "white-box"))
            assert got == pytest.approx(eps_values)
        assert any(r["model"] == model and r["kind"] == "transfer" for r in rows)
        assert any(r["model"] == model and r["kind"] == "baseline" for r in rows)
        natural = {r["attack"] for r in rows if r["model"] == model and r["kind"] == "natural"}
        assert natural == {"stain", "blur", "jpeg"}
        (bb,) = [r for r in rows if r["model"] == model and r["kind"] == "black-box"]
        assert bb["attack"] == "square" and bb["provider"].endswith("ExecutionProvider")
        assert len(robust["min_eps"][model]["values_255"]) == report["split"]["test"]["n_images"]
    for r in rows:
        (tn, fp), (fn, tp) = r["confusion_matrix"]
        assert tn + fp + fn + tp == r["n"]
    assert robust["flags"] == masking_flags(rows)  # the flags the rows imply, drawn once the black-box rows are in
    md = (run_dir / "report.md").read_text()
    assert "## Robustness" in md and "Gradient-masking checks" in md
    masking = md.split("Gradient-masking checks", 1)[1]
    if robust["flags"]:
        assert all(f["message"] in masking for f in robust["flags"])
    else:
        assert "No warning sign" in masking
    assert "<h2>Robustness</h2>" in (run_dir / "report.html").read_text()


def test_blackbox_command_finds_flips_without_torch(run_dir, demo_root, tmp_path):
    """Run as the Diagnose edition (PyTorch and the full edition's other packages cannot be imported). The
    demo's small model has a wide margin: white-box PGD needs 8/255, the query-only attack about 64/255."""
    out = tmp_path / "bb.json"
    args = ["blackbox", "--model", str(run_dir / "model_a.onnx"), "--data", str(demo_root), "--eps", "64/255"]
    args += ["--queries", "30", "--limit", "12", "--out", str(out)]
    proc = subprocess.run([sys.executable, str(NOTORCH), *args], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "full-only modules imported: []" in proc.stdout and "Square attack" in proc.stdout
    result = json.loads(out.read_text())
    assert result["n_images"] == 12 and [r["eps"] for r in result["results"]] == pytest.approx([0, 64 / 255])
    clean, attacked = result["results"]
    assert attacked["attack_success_rate"] > 0 and attacked["accuracy"] < clean["accuracy"]
    assert attacked["mean_queries"] is not None and 1 <= attacked["mean_queries"] <= 30


def test_split_csv_keeps_patients_apart(run_dir):
    rows = list(csv.DictReader(open(run_dir / "split.csv")))
    assert {"path", "label", "patient_id", "split"} <= set(rows[0])
    splits_of: dict[str, set] = {}
    for r in rows:
        splits_of.setdefault(r["patient_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in splits_of.values())
    assert {r["split"] for r in rows} == {"train", "val", "test"}


def test_existing_run_is_not_overwritten_without_force(run_dir, demo_root, capsys):
    before = (run_dir / "report.json").stat().st_mtime_ns
    code = main(["experiment", "--data", str(demo_root), "--out", str(run_dir), *FAST, *ROBUST])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--force" in err and len(err.splitlines()) == 1
    assert (run_dir / "report.json").stat().st_mtime_ns == before


def test_resume_of_a_finished_run_reuses_checkpoints(run_dir, demo_root):
    best = (run_dir / "model_a" / "best.pt").stat().st_mtime_ns
    assert main(["experiment", "--data", str(demo_root), "--out", str(run_dir), *FAST, *ROBUST, "--resume"]) == 0
    assert (run_dir / "model_a" / "best.pt").stat().st_mtime_ns == best


def test_predict_attack_export_evaluate(run_dir, demo_root, tmp_path, capsys):
    images = sorted((demo_root / "malignant").glob("*.png"))[:3]
    preds = tmp_path / "preds.csv"
    assert main(["predict", "--model", str(run_dir / "model_a.onnx"), *map(str, images), "--out", str(preds)]) == 0
    rows = list(csv.DictReader(open(preds)))
    assert len(rows) == 3 and all(r["model_sha256"] and r["predicted"] in ("benign", "malignant") for r in rows)
    assert all(abs(float(r["p_benign"]) + float(r["p_malignant"]) - 1) < 1e-5 for r in rows)

    adv = tmp_path / "adv"
    assert (
        main(
            [
                "attack",
                "--model",
                str(run_dir / "model_a" / "best.pt"),
                str(images[0]),
                "--out",
                str(adv),
                "--eps",
                "8/255",
                "--method",
                "pgd",
                "--steps",
                "3",
            ]
        )
        == 0
    )
    assert len(list(adv.glob("*_pgd.png"))) == 1

    onnx_file = tmp_path / "a.onnx"
    assert main(["export", "--model", str(run_dir / "model_a" / "best.pt"), "--out", str(onnx_file)]) == 0
    assert onnx_file.is_file()

    assert (
        main(
            [
                "evaluate",
                "--model",
                str(run_dir / "model_b" / "best.pt"),
                "--data",
                str(demo_root),
                "--split",
                "all",
                "--sweep-eps",
                "0,8/255",
                "--pgd-steps",
                "3",
                "--strong",
                "--strong-images",
                "6",
                "--strong-steps",
                "3",
                "--strong-queries",
                "20",
                "--out",
                str(tmp_path / "eval.json"),
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["evaluations"][0]["n"] > 0
    # regression: evaluate ran FGSM only, which an adversarially trained model can fool; now the robustness
    # evaluation (PGD on the margin loss, the worst case over the attacks) runs too
    rows = result["robustness"]["rows"]
    kinds = {(r["attack"], r["kind"]) for r in rows}
    assert {("pgd", "white-box"), ("fgsm", "white-box"), ("worst-case", "worst-case")} <= kinds
    assert result["robustness"]["plan"]["loss"] == "margin" and result["robustness"]["plan"]["steps"] == 3
    worst = next(r for r in rows if r["kind"] == "worst-case")
    assert worst["accuracy"] <= min(r["accuracy"] for r in rows if r["kind"] == "white-box")
    strong = {r["attack"] for r in rows if r["kind"] == "strong"}
    assert strong == {"APGD-CE", "APGD-margin", "Square", "worst case"}
    assert result["robustness"]["strong"]["queries"] == 20
    out = capsys.readouterr().out
    assert "every attack" in out and "Strong evaluation" in out


@pytest.mark.parametrize("make", ["empty", "text_only", "one_class"])
def test_bad_datasets_end_with_one_line(tmp_path, capsys, make):
    root = tmp_path / "data"
    root.mkdir()
    if make == "text_only":
        (root / "notes.txt").write_text("hello")
    if make == "one_class":
        from PIL import Image

        (root / "benign").mkdir()
        for i in range(3):
            Image.new("RGB", (8, 8), (200, 100, 150)).save(root / "benign" / f"{i}.png")
    code = main(["experiment", "--data", str(root), "--out", str(tmp_path / "run"), *FAST])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(root) in err


def test_bad_files_are_skipped_and_reported(demo_root, tmp_path, capsys):
    import shutil

    import numpy as np
    from PIL import Image

    data = tmp_path / "data"
    shutil.copytree(demo_root, data)
    bad = data / "benign"
    (bad / "SOB_B_A-99-9001-40-900.png").write_text("not an image")
    good = sorted(bad.glob("*.png"))[0].read_bytes()
    (bad / "SOB_B_A-99-9001-40-901.png").write_bytes(good[: len(good) // 2])
    Image.fromarray(np.full((40, 60), 40000, dtype=np.uint16)).save(bad / "SOB_B_A-99-9001-40-902.png")
    Image.new("RGBA", (60, 40), (200, 100, 150, 128)).save(bad / "SOB_B_A-99-9001-40-903.png")
    out = tmp_path / "run"
    assert main(["experiment", "--data", str(data), "--out", str(out), *FAST, "--no-onnx"]) == 0
    skipped = {
        Path(s["path"]).name: s["reason"] for s in json.loads((out / "report.json").read_text())["dataset"]["skipped"]
    }
    assert set(skipped) == {"SOB_B_A-99-9001-40-900.png", "SOB_B_A-99-9001-40-901.png"}
    assert "SOB_B_A-99-9001-40-900.png" in skipped["SOB_B_A-99-9001-40-900.png"]
    split = (out / "split.csv").read_text()
    assert "40-902.png" in split and "40-903.png" in split


def test_console_script_runs_in_a_subprocess(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "experiment",
            "--data",
            str(tmp_path / "missing"),
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("histoguard: error:") and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_arguments_opens_the_app_and_arguments_run_the_cli(capsys, monkeypatch):
    import desktop_app.launcher
    from desktop_app.launcher import main as launcher

    opened = []
    monkeypatch.setattr(desktop_app.launcher, "run_app", lambda **kw: opened.append(kw) or 0)
    assert launcher([]) == 0 and launcher(["gui", "--run", "R"]) == 0 and launcher(["--self-test"]) == 0
    assert opened == [
        {"screenshots": None, "run": None, "dataset": None, "self_test": False},
        {"screenshots": None, "run": "R", "dataset": None, "self_test": False},
        {"screenshots": None, "run": None, "dataset": None, "self_test": True},
    ]
    assert launcher(["models"]) == 0
    assert "densenet121" in capsys.readouterr().out


def test_data_command_reports_counts_and_skips(demo_root, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(demo_root, data)
    (data / "benign" / "stray.png").write_text("x")
    assert main(["data", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "benign 32, malignant 32" in out and "patients: 8" in out
    assert "magnification: 40X 16, 100X 16, 200X 16, 400X 16" in out
    assert "stray.png: file name is not a BreakHis name" in out


def test_train_command_clean_then_study_model_b(demo_root, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", "--data", str(demo_root), "--out", str(a), *FAST]) == 0
    assert (
        main(
            [
                "train",
                "--data",
                str(demo_root),
                "--out",
                str(b),
                *FAST,
                "--adversarial-from",
                str(a / "best.pt"),
                "--eps",
                "2/255",
            ]
        )
        == 0
    )
    summary = json.loads((b / "train.json").read_text())
    assert summary["how_trained"]["method"] == "merged-fgsm"
    assert summary["how_trained"]["eps"] == pytest.approx(2 / 255)
    assert (a / "split.csv").read_text() == (b / "split.csv").read_text(), "same data and seed, same split"


def test_train_command_with_adversarial_training(demo_root, tmp_path):
    out = tmp_path / "c"
    args = ["train", "--data", str(demo_root), "--out", str(out), *FAST, "--adversarial", "pgd", "--adv-steps", "2"]
    levers = ["--ema-decay", "0.99", "--hed-scale", "0.05", "--awp-gamma", "0.005"]
    assert main([*args, "--adv-eps", "4/255", "--adv-ratio", "0.5", *levers]) == 0
    summary = json.loads((out / "train.json").read_text())
    assert summary["how_trained"]["method"] == "adversarial-training"
    assert summary["how_trained"]["ema"]["decay"] == 0.99 and summary["how_trained"]["awp"]["gamma"] == 0.005
    assert summary["how_trained"]["hed_jitter"] == {"scale": 0.05, "shift": 0.0, "units": "optical density"}
    assert summary["how_trained"]["defence"] == "pgd" and summary["how_trained"]["adv_ratio"] == 0.5
    assert summary["selected_by"] == "val_pgd_balanced_accuracy"
    assert all("val_pgd_acc" in row for row in summary["history"])
    both = ["train", "--data", str(demo_root), "--out", str(tmp_path / "x"), *FAST, "--adversarial", "pgd"]
    assert main([*both, "--adversarial-from", str(out / "best.pt")]) == 2


def test_experiment_on_the_real_breakhis_subset(shared_data, tmp_path):
    """The real path on real BreakHis files (30 images, 14 patients): parser, decoding, patient split."""
    out = tmp_path / "run"
    assert (
        main(["experiment", "--data", str(shared_data / "breakhis_subset"), "--out", str(out), *FAST, "--no-onnx"]) == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["n_images"] == 30 and report["dataset"]["n_patients"] == 14
    assert report["synthetic_data"] is False and "SYNTHETIC" not in (out / "report.md").read_text()
    rows = list(csv.DictReader(open(out / "split.csv")))
    groups = {r["patient_id"]: {x["split"] for x in rows if x["patient_id"] == r["patient_id"]} for r in rows}
    assert all(len(s) == 1 for s in groups.values()) and "14-22549" in groups
