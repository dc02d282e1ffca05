"""Cohort page: a cohort folder opened (tests/engine/slides/test_cohort's five slides), sorted by score, a failed
slide marked; a cohort run from the page on the worker pool gives the CLI's cohort.csv; a double-click shows the
slide with its saved heatmap on the Slides page (no prediction run there)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from engine.workflows.cohort import run_cohort
from tests.desktop_app.conftest import wait_for_tasks
from tests.engine.slides import test_cohort
from tests.engine.slides.test_cohort import SETTINGS

cohort, reference = test_cohort.cohort, test_cohort.reference  # fixtures (module scope)


def open_page(qtbot, window, folder):
    window.show_page("Cohort")
    page = window.page("CohortPage")
    page.open_cohort(folder)
    wait_for_tasks(qtbot, window)
    return page


def cells(page, column: str) -> list[str]:
    col = page.table.columns.index(column)
    return [page.table.proxy.index(r, col).data() for r in range(page.table.row_count())]


def test_a_cohort_folder_is_shown_sortable_with_failed_slides_marked(qtbot, window, cohort, tmp_path):
    bad = tmp_path / "damaged.svs"
    bad.write_bytes(b"truncated")
    run_cohort([cohort["slides"], bad], cohort["model"], tmp_path / "out", SETTINGS)
    page = open_page(qtbot, window, tmp_path / "out")
    assert cells(page, "slide") == [*(f"case_{i}.tiff" for i in range(5)), "damaged.svs"]  # input order
    assert cells(page, "positive_fraction")[:5] == ["0.0%", "25.0%", "50.0%", "75.0%", "100.0%"]
    header = page.table.source.horizontalHeaderItem(page.table.columns.index("top_k_score")).text()
    assert header == "Score (top 10)"
    page.table.sortByColumn(page.table.columns.index("top_k_score"), Qt.SortOrder.DescendingOrder)
    assert cells(page, "slide")[0] == "case_4.tiff" and cells(page, "slide")[-1] == "damaged.svs"  # empty last
    failed = page.table.source.item(5, 0)
    assert failed.background().color().name() == "#fde8e8" and "damaged.svs" in failed.toolTip()
    assert "5 done, 1 failed" in page.summary.text() and "not calibrated" in page.summary.text()


def test_a_cohort_runs_from_the_page_and_gives_the_cli_table(qtbot, window, cohort, reference, tmp_path):
    window.ctx.state.set_onnx(cohort["model"])
    window.show_page("Cohort")
    page = window.page("CohortPage")
    page.set_slides_folder(cohort["slides"])
    assert page.run_button.isEnabled()
    task = page.run(tmp_path / "out", SETTINGS)
    assert task is not None and not page.run_button.isEnabled()  # one run at a time
    wait_for_tasks(qtbot, window)
    assert (tmp_path / "out" / "cohort.csv").read_bytes() == (reference / "cohort.csv").read_bytes()
    assert cells(page, "status") == ["done"] * 5 and page.run_button.isEnabled()


def test_a_double_click_shows_the_slide_with_its_saved_heatmap(qtbot, window, cohort, reference):
    page = open_page(qtbot, window, reference)
    page.open_in_slides(3)
    wait_for_tasks(qtbot, window)
    wait_for_tasks(qtbot, window)
    slides = window.page("SlidesPage")
    assert window.stack.currentWidget() is slides and slides.slide_path.name == "case_3.tiff"
    assert slides.prediction is not None and len(slides.prediction.tiles) == 16
    assert int(slides.prediction.heatmap().__ge__(0.5).sum()) == 12  # 75% of 16 tiles called malignant
    assert slides.view.overlay_item is not None and slides.export_button.isEnabled()
