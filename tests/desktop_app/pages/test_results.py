"""Results page: heatmaps and metrics equal report.json, image/patient level, eps sweep, export, empty states."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

import desktop_app.pages.results.page as results_module
from tests.desktop_app.conftest import wait_for_tasks

METRIC_KEYS = ("accuracy", "majority_baseline", "balanced_accuracy", "sensitivity", "specificity", "precision",
               "f1", "roc_auc", "missed_cancer_rate")  # fmt: skip
ORDER = [("A", None), ("A", "A"), ("B", None), ("B", "A"), ("B", "B")]


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.3f}"


def _with_ci(e: dict, key: str) -> str:
    """How the report shows a metric: '0.84 (0.79–0.88)' where it has an interval, '1.00 (—)' where it rests on
    too few patients for one, 3 decimals where the report has no intervals (the majority baseline)."""
    if e[key] is None or key not in (e.get("ci") or {}):
        return _fmt(e[key])
    ci = e["ci"][key]
    return f"{e[key]:.2f} (—)" if ci is None else f"{e[key]:.2f} ({ci[0]:.2f}–{ci[1]:.2f})"


def _evals(report: dict, level: str) -> list[dict]:
    by_key = {(e["model"], e["attack_source"]): e for e in report["evaluations"] if e["level"] == level}
    return [by_key[k] for k in ORDER]


@pytest.fixture
def opened(qtbot, window, tiny_run):
    """The window showing the Results page of ``tiny_run``; returns (page, report)."""
    assert window.controller.open_run(tiny_run) is not None
    wait_for_tasks(qtbot, window)  # opening a run also opens its dataset on a worker
    window.show_page("Results")
    page = window.page("ResultsPage")
    return page, json.loads((tiny_run / "report.json").read_text(encoding="utf-8"))


def test_no_run_shows_an_informative_empty_state(window):
    window.show_page("Results")
    page = window.page("ResultsPage")
    assert page.empty_label.isVisible() and not page.metrics.isVisible()
    assert "Open a run folder" in page.empty_label.text() and "Train page" in page.empty_label.text()


def test_unfinished_run_says_so(qtbot, window, tiny_run, tmp_path):
    run = tmp_path / "unfinished"
    run.mkdir()
    shutil.copy(tiny_run / "config.json", run / "config.json")
    window.controller.open_run(run)
    wait_for_tasks(qtbot, window)
    window.show_page("Results")
    page = window.page("ResultsPage")
    assert page.empty_label.isVisible()
    assert "has not finished" in page.empty_label.text() and str(run) in page.empty_label.text()


def test_heatmaps_show_the_confusion_matrices_with_row_percentages(opened):
    page, report = opened
    assert page.banner.isVisible() and "say nothing about diagnostic performance" in page.banner.text()
    shown = [h for h in page.heatmaps if h.isVisible()]
    assert len(shown) == 5
    for heatmap, e in zip(shown, _evals(report, "image"), strict=True):
        assert heatmap.matrix == e["confusion_matrix"]
        assert heatmap.classes == report["dataset"]["classes"]
        for i, row in enumerate(e["confusion_matrix"]):
            for j, count in enumerate(row):
                assert heatmap.cell_text(i, j) == f"{count}\n{100 * count / sum(row):.1f}%"
        assert f"Model {e['model']}" in heatmap.title
        assert ("clean" in heatmap.subtitle) == (e["attack_source"] is None)
        if e["attack_source"]:
            assert f"{round(e['eps'] * 255)}/255 from {e['attack_source']}" in heatmap.subtitle
    image = shown[0].grab().toImage()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 4  # drawn, not blank


def test_metrics_table_shows_the_reports_values_and_switches_to_patient_level(qtbot, opened):
    page, report = opened
    for level in ("image", "patient"):
        if level == "patient":
            qtbot.mouseClick(page.patient_button, results_module.Qt.MouseButton.LeftButton)
        table, evals = page.metrics, _evals(report, level)
        assert table.rowCount() == 5
        for row, e in enumerate(evals):
            assert table.item(row, 0).text().startswith(f"Model {e['model']}")
            for key in METRIC_KEYS:
                assert table.item(row, table.column_of(key)).text() == _with_ci(e, key), (level, row, key)
            assert table.item(row, table.column_of("n")).text() == str(e["n"])
        assert _fmt(evals[0]["majority_baseline"]) in page.baseline_label.text()
        assert f"{report['intervals']['n_resamples']} resamples" in page.interval_note.text()
        assert [h.matrix for h in page.heatmaps if h.isVisible()] == [e["confusion_matrix"] for e in evals]
    assert "Patient level" in page.level_note.text()
    assert {e["n"] for e in _evals(report, "patient")} != {e["n"] for e in _evals(report, "image")}


def test_sweep_table_and_plot_show_the_sweep(opened):
    page, report = opened
    sweep = report["sweep"]
    eps_values = sorted({r["eps"] for r in sweep})
    plot = page.sweep_plot.curves
    assert len(plot) == 3 and page.sweep_table.rowCount() == 3
    for row, (model, source) in enumerate([("A", "A"), ("B", "A"), ("B", "B")]):
        rows = {r["eps"]: r for r in sweep if (r["model"], r["attack_source"]) == (model, source)}
        acc = {e: r["accuracy"] for e, r in rows.items()}
        assert [page.sweep_table.item(row, c).text() for c in range(len(eps_values))] == [
            _with_ci(rows[e], "accuracy") for e in eps_values
        ]
        (label,) = [k for k in plot if k.startswith(f"Model {model}, FGSM from {source}")]
        assert list(plot[label][1]) == [acc[e] for e in eps_values]
        assert list(plot[label][0]) == pytest.approx([e * 255 for e in eps_values])
        x, low, high = page.sweep_plot.bands[label]  # the 95% interval as a band under the line
        assert list(x) == pytest.approx([e * 255 for e in eps_values])
        assert [list(p) for p in zip(low, high)] == [rows[e]["ci"]["accuracy"] for e in eps_values]


def test_export_writes_html_and_csv_matching_the_report(qtbot, window, opened, tmp_path):
    page, report = opened
    page.export_report(tmp_path / "out")
    wait_for_tasks(qtbot, window)
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    # five confusion matrices, the FGSM sweep, the robustness curves, the min-eps distribution, the reliability
    # diagram and the coverage curve; then the gallery's pictures (image, map, adversarial image and its map)
    gallery = sum(len(it["files"]) for m in report["gallery"]["models"].values() for it in m["items"])
    assert gallery > 0 and html.count("data:image/png;base64,") == 10 + gallery
    assert html.startswith("<!DOCTYPE html>")
    assert "Gradient-masking checks" in html and "Square (ONNX, queries only)" in html
    for e in report["evaluations"]:
        assert e["ci"]["accuracy"] is not None
        assert all(_with_ci(e, k) in html for k in METRIC_KEYS)
    with open(tmp_path / "out" / "metrics.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(report["evaluations"])
    for e in report["evaluations"]:
        (row,) = [
            r
            for r in rows
            if (r["model"], r["attack_source"] or None, r["level"]) == (e["model"], e["attack_source"], e["level"])
        ]
        assert float(row["accuracy"]) == e["accuracy"] and int(row["n"]) == e["n"]
        assert [float(row["accuracy_low"]), float(row["accuracy_high"])] == e["ci"]["accuracy"]
        assert [[int(row["tn"]), int(row["fp"])], [int(row["fn"]), int(row["tp"])]] == e["confusion_matrix"]
    assert "report.html" in page.export_status.text() and "metrics.csv" in page.export_status.text()
    assert page.export_button.isEnabled()


def test_file_menu_export_with_a_pdf_name(qtbot, window, opened, tmp_path, monkeypatch):
    page, _ = opened
    chosen = tmp_path / "study"  # no suffix typed: the PDF filter adds .pdf
    monkeypatch.setattr(
        results_module.QFileDialog,
        "getSaveFileName",
        staticmethod(lambda *a, **k: (str(chosen), results_module.PDF_FILTER)),
    )
    (action,) = [a for a in window.file_menu.actions() if a.text().replace("&", "") == "Export report…"]
    action.trigger()
    wait_for_tasks(qtbot, window)
    pdf = (tmp_path / "study.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/Image" in pdf  # the figures made it into the PDF
    assert (tmp_path / "study.html").is_file() and (tmp_path / "study-metrics.csv").is_file()
    assert set(page.last_export) == {"pdf", "html", "csv"}


def test_export_without_a_finished_run_explains_in_the_error_dialog(window, monkeypatch):
    def no_dialog(*args, **kwargs):
        raise AssertionError("no file dialog without a run")

    monkeypatch.setattr(results_module.QFileDialog, "getSaveFileName", staticmethod(no_dialog))
    window.export_report()
    title, message = window.ctx.errors.history[-1]
    assert title == "Export report" and "no finished run" in message


def test_calibration_tab_shows_the_reports_section(qtbot, opened):
    """The table's cells are the engine's (as report.md prints them), the reliability diagram plots each
    model's test bins raw and calibrated, and the coverage curve its selective-prediction points."""
    from engine.report.calibration import table_rows

    page, report = opened
    page.show_calibration()
    view, section = page.calibration, report["calibration"]
    assert view.body.isVisible() and "Temperature scaling" in view.note.text()
    assert [[view.table.item(r, c).text() for c in range(view.table.columnCount())]
            for r in range(view.table.rowCount())] == table_rows(section)  # fmt: skip
    for model, entry in section.items():
        for kind in ("raw", "calibrated"):
            bins = [b for b in entry["test"][kind]["reliability"] if b["n"]]
            x, y = view.reliability[(model, kind)]
            assert x.tolist() == pytest.approx([b["mean_predicted"] for b in bins])
            assert y.tolist() == pytest.approx([b["observed"] for b in bins])
        x, y = view.coverage[model]
        assert y.tolist() == pytest.approx([c["accuracy"] for c in entry["selective"]["calibrated"]])


def test_a_fold_of_a_cross_validation_shows_its_summary(qtbot, window, cv_run):
    """Opening the cross-validation folder opens its first fold; the Cross-validation tab shows the summary's
    mean ± sd (as cv.md prints them), and a run on its own has no such tab."""
    from engine.report.cv import evaluation_rows

    assert window.controller.open_run(cv_run) is not None
    wait_for_tasks(qtbot, window)
    window.show_page("Results")
    page = window.page("ResultsPage")
    summary = json.loads((cv_run / "cv.json").read_text(encoding="utf-8"))
    assert page.tabs.isTabVisible(3) and page.tabs.tabText(3) == "Cross-validation (3 folds)"
    page.show_cross_validation()
    table = page.cross_validation.image
    shown = [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]
    assert shown == evaluation_rows(summary, "image") and "fold <b>1</b>" in page.cross_validation.note.text()


def test_a_run_on_its_own_has_no_cross_validation_tab(opened):
    page, _ = opened
    assert not page.tabs.isTabVisible(3)
