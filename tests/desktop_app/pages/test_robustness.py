"""Results page, robustness tab: the reviewer table equals engine.report.robustness's rows in every view, a click
shows that row's confusion matrix, the curves and min-eps bars equal report.json, the gradient-masking flags,
Model C beside A and B, and an older report without a robustness section still opens."""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import replace

import pytest
from PySide6.QtCore import Qt

from desktop_app.widgets.min_eps_plot import bar_counts
from desktop_app.widgets.robustness_view import NO_SECTION
from engine import api
from engine.report.robustness import comparison_rows, flags_text, min_eps_rows, natural_rows, table_rows
from tests.desktop_app.conftest import wait_for_tasks


@pytest.fixture
def report(tiny_run) -> dict:
    return json.loads((tiny_run / "report.json").read_text(encoding="utf-8"))


@pytest.fixture
def page(qtbot, window, tiny_run):
    assert window.controller.open_run(tiny_run) is not None
    wait_for_tasks(qtbot, window)  # opening a run also opens its dataset
    window.show_page("Results")
    page = window.page("ResultsPage")
    page.show_robustness()
    return page


def _shown(table) -> list[list[str]]:
    return [table.cells(r) for r in range(table.rowCount())]


def _show_report(window, tiny_run, report: dict) -> None:
    window.ctx.state.set_run(replace(api.open_run(tiny_run), report=report))


def test_table_shows_the_engines_rows_in_every_view(page, report):
    section, view = report["robustness"], page.robustness
    assert page.robustness.isVisible() and view.body.isVisible()
    expected = {
        "attacks": table_rows(section),
        "transfer": table_rows(section, ("transfer",)),
        "natural": natural_rows(section),
        "min_eps": min_eps_rows(section),
        "compare": comparison_rows(section),
    }
    assert all(expected.values()), "the tiny run should have rows of every kind"
    for key, rows in expected.items():
        view.view_combo.setCurrentIndex(view.view_combo.findData(key))
        assert _shown(view.table) == rows, key
    assert {r[0] for r in expected["attacks"]} == {"A", "B", "C"}  # Model C wherever A and B are
    assert {"white-box", "black-box", "random (not an attack)"} <= {r[2] for r in expected["attacks"]}


def test_clicking_a_row_shows_its_confusion_matrix(qtbot, page, report):
    table, heatmap = page.robustness.table, page.robustness.heatmap
    assert heatmap.matrix == table.rows[0]["confusion_matrix"]  # the first line is selected at first
    first = table.rows[0]["confusion_matrix"]
    others = [i for i in range(1, table.rowCount()) if table.rows[i]["confusion_matrix"] != first]
    target = max(others, key=lambda i: table.rows[i]["confusion_matrix"][1][0])  # a different matrix, most FN
    row = table.rows[target]
    table.scrollToItem(table.item(target, 0))
    rect = table.visualItemRect(table.item(target, 1))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert heatmap.matrix == row["confusion_matrix"] and heatmap.classes == report["dataset"]["classes"]
    assert f"Model {row['model']}" in heatmap.title and table.cells(target)[3] in heatmap.title
    assert table.cells(target)[2] in heatmap.subtitle  # the threat: white-box, black-box, ...
    (tn, fp), (fn, tp) = row["confusion_matrix"]
    assert heatmap.cell_text(1, 0).startswith(f"{fn}\n")


def test_curves_and_min_eps_bars_match_the_report(page, report):
    section, view = report["robustness"], page.robustness
    clean = {r["model"]: r["accuracy"] for r in section["rows"] if r["kind"] == "clean"}
    for model in "ABC":
        for attack in section["plan"]["attacks"]:
            rows = sorted((r for r in section["rows"] if (r["model"], r["attack"], r["kind"]) ==
                           (model, attack, "white-box")), key=lambda r: r["eps"])  # fmt: skip
            x, y = view.curves.series[(model, attack, "white-box")]
            assert x.tolist() == pytest.approx([0] + [r["eps"] * 255 for r in rows])
            assert y.tolist() == pytest.approx([clean[model]] + [r["accuracy"] for r in rows])
        assert (model, "uniform-noise", "baseline") in view.curves.series
        # the strongest attack's 95% interval as a band: from the clean row's interval on, one per eps
        strongest = section["plan"]["attacks"][-1]
        rows = sorted((r for r in section["rows"] if (r["model"], r["attack"], r["kind"]) ==
                       (model, strongest, "white-box")), key=lambda r: r["eps"])  # fmt: skip
        clean_ci = next(r["ci"]["accuracy"] for r in section["rows"] if r["kind"] == "clean" and r["model"] == model)
        bx, low, high = view.curves.bands[model]
        assert bx.tolist() == pytest.approx([0] + [r["eps"] * 255 for r in rows])
        assert low.tolist() == pytest.approx([clean_ci[0]] + [r["ci"]["accuracy"][0] for r in rows])
        assert high.tolist() == pytest.approx([clean_ci[1]] + [r["ci"]["accuracy"][1] for r in rows])
    evaluation = next(e for e in report["evaluations"] if e["level"] == "image" and e["condition"] == "clean")
    assert view.curves.baseline == pytest.approx(evaluation["majority_baseline"])
    for model, summary in section["min_eps"].items():
        assert view.min_eps.counts[model] == bar_counts(summary)
        assert sum(view.min_eps.counts[model]) + summary["misclassified_clean"] == len(summary["values_255"])
        assert view.min_eps.medians[model] == summary["median_255"]


def test_flags_panel_shows_each_flag_or_a_green_line(qtbot, window, page, tiny_run, report):
    flags = page.robustness.flags
    if not report["robustness"]["flags"]:
        (line,) = flags.texts()
        assert "No warning sign" in line and "✓" in line and "#e3f4e1" in flags.lines[0].styleSheet()
    patched = copy.deepcopy(report)
    patched["robustness"]["flags"] = [
        {"model": "C", "flag": "blackbox_beats_white_box", "message": "square at 8/255 leaves 0.100 accuracy"},
        {"model": "B", "flag": "pgd_weaker_than_fgsm", "message": "PGD leaves 0.900 accuracy but FGSM 0.500"},
    ]
    _show_report(window, tiny_run, patched)
    texts = flags.texts()
    assert len(texts) == 2 and all("No warning sign" not in t for t in texts)
    assert "Warning, Model C:" in texts[0] and "square at 8/255 leaves 0.100 accuracy" in texts[0]
    assert "Check, Model B:" in texts[1] and "PGD leaves 0.900" in texts[1]
    assert "#fde2e1" in flags.lines[0].styleSheet() and "#fff0d9" in flags.lines[1].styleSheet()  # red, orange
    patched["robustness"]["flags"] = []
    _show_report(window, tiny_run, patched)
    (line,) = flags.texts()
    assert flags_text(patched["robustness"]) in line


def test_a_report_without_robustness_still_opens(qtbot, window, tiny_run, report, tmp_path):
    old = tmp_path / "old-run"
    old.mkdir()
    shutil.copy(tiny_run / "config.json", old / "config.json")
    legacy = {k: v for k, v in report.items() if k != "robustness"}
    legacy["training"] = {k: v for k, v in report["training"].items() if k != "C"}
    (old / "report.json").write_text(json.dumps(legacy), encoding="utf-8")
    assert window.controller.open_run(old) is not None
    wait_for_tasks(qtbot, window)
    window.show_page("Results")
    page = window.page("ResultsPage")
    assert len([h for h in page.heatmaps if h.isVisible()]) == 5  # the study still shows
    page.show_robustness()
    assert page.robustness.note.text() == NO_SECTION and not page.robustness.body.isVisible()
    assert not window.ctx.errors.history
    window.controller.open_run(tiny_run)  # and a run with a section shows it again
    wait_for_tasks(qtbot, window)
    assert page.robustness.body.isVisible() and page.robustness.table.rowCount() > 0
