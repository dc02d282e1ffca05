"""Report export: a self-contained, escaped report.html and a metrics.csv equal to report.json, written atomically."""

from __future__ import annotations

import base64
import csv
import re

import pytest

from engine.core.errors import ConfigError
from engine.report import csv_export
from engine.report.csv_export import COLUMNS, write_metrics_csv
from engine.report.export import export_report, output_paths
from engine.report.html import render_html
from engine.report.labels import METRICS, cm_figure_name, condition_label, eps_text, figure_names, fmt

PNG = b"\x89PNG\r\n\x1a\nfake-figure-"
CLASSES = ["<benign>", "malignant & co"]
EPS = 8 / 255
CONDITIONS = (("A", None), ("A", "A"), ("B", None), ("B", "A"), ("B", "B"))


def _evaluation(i: int, model: str, source: str | None, level: str) -> dict:
    cm = [[10 + i, 3 + i], [2 * i, 20 - i]] if level == "image" else [[2, i % 2], [1, 3]]
    metrics = {m: round(0.5 + 0.0371 * (i + k), 6) for k, m in enumerate(METRICS)}
    metrics["roc_auc"] = None if i == 2 else metrics["roc_auc"]  # undefined metrics stay undefined
    return {
        "model": model,
        "condition": "fgsm" if source else "clean",
        "attack_source": source,
        "eps": EPS if source else 0.0,
        "level": level,
        **metrics,
        "recall": metrics["sensitivity"],
        "majority_baseline": 0.5 if level == "image" else 0.25,
        "confusion_matrix": cm,
        "n": sum(map(sum, cm)),
    }


@pytest.fixture
def report() -> dict:
    evaluations = [
        _evaluation(i + (10 if level == "patient" else 0), m, s, level)
        for level in ("image", "patient")
        for i, (m, s) in enumerate(CONDITIONS)
    ]
    sweep = [
        {"model": m, "attack_source": s, "eps": k / 255, "accuracy": 1 - 0.05 * k}
        for k in (0, 2, 8)
        for m, s in (("A", "A"), ("B", "A"), ("B", "B"))
    ]
    return {
        "histoguard_version": "0.0-test",
        "synthetic_data": True,
        "dataset": {
            "root": "/data/<x>",
            "kind": "class folders",
            "classes": CLASSES,
            "positive_class": CLASSES[1],
            "n_images": 48,
        },
        "split": {"level": "patient", "seed": 0, "test": {"n_images": 12, "n_patients": 2}},
        "eps": EPS,
        "evaluations": evaluations,
        "sweep": sweep,
        "onnx": {},
        "training": {},
    }


def _run_dir_with_figures(tmp_path, report) -> tuple:
    run = tmp_path / "run"
    run.mkdir()
    pngs = {}
    for e in report["evaluations"]:
        if e["level"] == "image":
            pngs[cm_figure_name(e)] = PNG + cm_figure_name(e).encode()
    pngs["sweep_accuracy.png"] = PNG + b"sweep"
    for name, data in pngs.items():
        (run / name).write_bytes(data)
    return run, pngs


def test_html_holds_every_condition_its_metrics_and_the_run_folders_figures(tmp_path, report):
    run, pngs = _run_dir_with_figures(tmp_path, report)
    assert sorted(figure_names(report)) == sorted(pngs)  # the names the run folder's figures have
    paths = export_report(report, tmp_path / "out", run_dir=run)
    html = paths["html"].read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert sorted(base64.b64decode(b) for b in embedded) == sorted(pngs.values())
    assert 'src="http' not in html and "src='" not in html  # self-contained
    for e in report["evaluations"]:
        row = re.search(re.escape(f"<tr><td>{condition_label(e)}</td>") + r"(.*?)</tr>", html[_level_start(html, e) :])
        assert row is not None, condition_label(e)
        cells = re.findall(r'<td class="num">([^<]*)</td>', row.group(1))
        expected = [fmt(e["accuracy"]), fmt(e["majority_baseline"]), *(fmt(e[m]) for m in METRICS[1:]), str(e["n"])]
        assert cells == expected
        (tn, fp), (fn, tp) = e["confusion_matrix"]
        assert all(f"{name} <b>{v}</b>" in html for name, v in (("TN", tn), ("FP", fp), ("FN", fn), ("TP", tp)))
    assert "—" in html  # the undefined ROC AUC
    assert "8/255" in html


def _level_start(html: str, e: dict) -> int:
    return html.index("<h2>Patient level") if e["level"] == "patient" else html.index("<h2>Image level")


def test_html_escapes_text_and_marks_synthetic_data(report):
    html = render_html(report)
    assert "&lt;benign&gt;" in html and "<benign>" not in html
    assert "malignant &amp; co" in html and "/data/&lt;x&gt;" in html
    assert 'class="synthetic"' in html and "say nothing about diagnostic performance" in html
    report["synthetic_data"] = False
    assert 'class="synthetic"' not in render_html(report)


def test_missing_figures_are_drawn_where_matplotlib_is_and_left_out_where_it_is_not(tmp_path, report):
    from engine import api

    paths = api.export_report(report, tmp_path / "r.html")  # the full edition: matplotlib draws them
    assert paths == {"html": tmp_path / "r.html", "csv": tmp_path / "r-metrics.csv"}
    html = paths["html"].read_text(encoding="utf-8")
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(embedded) == 6  # five confusion matrices and the sweep
    assert all(base64.b64decode(b).startswith(b"\x89PNG\r\n\x1a\n") for b in embedded)
    # without a way to draw them (the Diagnose edition has no matplotlib) the page has the tables, no figures
    bare = export_report(report, tmp_path / "bare.html")["html"].read_text(encoding="utf-8")
    assert "data:image/png" not in bare and all(condition_label(e) in bare for e in report["evaluations"])


def test_csv_has_one_row_per_evaluation_equal_to_the_report(tmp_path, report):
    write_metrics_csv(tmp_path / "metrics.csv", report)
    with open(tmp_path / "metrics.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == COLUMNS
        rows = list(reader)
    assert len(rows) == len(report["evaluations"]) == 10
    for e in report["evaluations"]:
        (row,) = [
            r
            for r in rows
            if (r["model"], r["condition"], r["attack_source"] or None, r["level"])
            == (e["model"], e["condition"], e["attack_source"], e["level"])
        ]
        for m in (*METRICS, "recall", "majority_baseline"):
            assert (float(row[m]) if row[m] else None) == e[m], m
        assert float(row["eps"]) == e["eps"] and row["eps_k255"] == eps_text(e["eps"])
        assert [[int(row["tn"]), int(row["fp"])], [int(row["fn"]), int(row["tp"])]] == e["confusion_matrix"]
        assert int(row["n"]) == e["n"]
    kinds = [(r["model"], r["attack_source"], r["attack_kind"]) for r in rows[:5]]
    assert kinds == [("A", "", "clean"), ("A", "A", "white-box"), ("B", "", "clean"), ("B", "A", "transfer"),
                     ("B", "B", "white-box")]  # fmt: skip


def test_a_failed_write_leaves_the_earlier_file_and_no_partial_one(tmp_path, report, monkeypatch):
    target = tmp_path / "metrics.csv"
    target.write_text("earlier export\n", encoding="utf-8")
    calls = []

    def failing_writerow(self, row):
        calls.append(row)
        if len(calls) > 2:
            raise RuntimeError("disk gone")
        return original(self, row)

    original = csv_export.csv.DictWriter.writerow
    monkeypatch.setattr(csv_export.csv.DictWriter, "writerow", failing_writerow)
    with pytest.raises(RuntimeError, match="disk gone"):
        write_metrics_csv(target, report)
    assert target.read_text(encoding="utf-8") == "earlier export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]  # no temp file left behind


def test_output_paths_take_a_folder_or_an_html_name(tmp_path):
    assert output_paths(tmp_path) == (tmp_path / "report.html", tmp_path / "metrics.csv")
    assert output_paths(tmp_path / "x.html") == (tmp_path / "x.html", tmp_path / "x-metrics.csv")
    with pytest.raises(ConfigError, match="ending in .html"):
        output_paths(tmp_path / "report.docx")


def test_every_run_folder_gets_a_report_html_with_its_own_figures(tmp_path, report):
    from engine.runs.folder import RunFolder
    from engine.workflows.reports import write_run_report

    report["dataset"].update(per_class={"<benign>": 24, "malignant & co": 24}, n_patients=8, skipped=[])
    report["split"].update(hash="0" * 64)
    report["split"]["test"]["per_class"] = {"<benign>": 6, "malignant & co": 6}
    write_run_report(RunFolder(tmp_path), report)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    embedded = {base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)}
    assert embedded == {p.read_bytes() for p in tmp_path.glob("*.png")} and len(embedded) == 6
    assert "HistoGuard report: " + tmp_path.name in html
