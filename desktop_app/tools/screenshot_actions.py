"""What ``histoguard gui --screenshots`` does on a page before taking its picture, so that each page
shows real content (a stress test that ran, predictions on demo images). Keyed by page class name;
``EXTRA_SHOTS`` are further pictures after one per page: (file name, page class name, action); an action that
returns False has nothing to show for this run, and no picture is taken."""

from __future__ import annotations

from collections.abc import Callable

from desktop_app.tools.waiting import settle


def _stress(page, window) -> None:
    page.form.set_source("split", window.ctx.state.run.path)
    page.form.set_eps_k(8)
    page.run()
    settle(window.app, window)
    if page.set_result and page.set_result["flips"]:
        page.flips.selectRow(0)  # selecting a row attacks and shows that image


def _diagnose(page, window) -> None:
    data = window.ctx.state.dataset
    if data is None:
        return
    by_class = {}
    for r in data.records:
        by_class.setdefault(r.label, []).append(r.path)
    page.add_inputs([p for paths in by_class.values() for p in paths[:6]])
    settle(window.app, window)
    page.run_prediction()
    settle(window.app, window)
    page.table.selectRow(0)


def _diagnose_explain(page, window) -> bool:
    """The Diagnose page with the occlusion map of the first image the model calls positive (else the first image);
    False when nothing was predicted."""
    rows = [i for i, r in enumerate(page.rows) if r.get("predicted")]
    if not rows:
        return False
    page.table.selectRow(next((i for i in rows if page.rows[i]["predicted"] == page.positive), rows[0]))
    page.explain.bar.show_button.setChecked(True)
    settle(window.app, window)
    return True


def _results(page, window) -> None:
    page.tabs.setCurrentIndex(0)  # the study's five conditions (the robustness tab gets its own picture)


def _robustness(page, window) -> None:
    """The robustness tab with its most damaging white-box line selected (its confusion matrix shown)."""
    page.show_robustness()
    table = page.robustness.table
    rows = [i for i, r in enumerate(table.rows) if r["kind"] == "white-box" and r["accuracy"] is not None]
    if rows:
        table.selectRow(min(rows, key=lambda i: table.rows[i]["accuracy"]))


def _slides(page, window) -> None:
    """The synthetic demo slide predicted with the run's model (demo models record its scale), the heatmap
    over it and the most suspicious tile selected (and attacked)."""
    import tempfile
    from pathlib import Path

    from engine.data.demo_slide import MPP, write_demo_slide
    from engine.slides.grid import tile_side

    if page.model_info is None:
        return
    meta = page.model_info.meta
    # about 18 x 18 of the model's tiles: quick, and the tiles stay visible
    side = min(6144, max(1024, 18 * tile_side(meta.image_size, meta.mpp, MPP)))
    page.open_slide(write_demo_slide(Path(tempfile.mkdtemp(prefix="histoguard-slide-")) / "demo-slide.tiff", side))
    settle(window.app, window)
    page.run_prediction()
    settle(window.app, window)
    if page.prediction is not None and len(page.prediction.tiles):
        page.tiles.select(int(page.prediction.probabilities.argmax()))


def _stress_maps(page, window) -> bool:
    """The Maps tab with the Grad-CAM maps of the flipped image the set view shows, original beside adversarial;
    False when no image flipped."""
    if page.flip_view.result is None:
        return False
    page.explain.attack_done(page.flip_view.result)
    page.results.setCurrentWidget(page.explain.view)
    page.explain.run()
    settle(window.app, window)
    return page.explain.view.has_maps()


def _slides_tile_map(page, window) -> bool:
    """The selected tile's attribution map over it; False when no tile is selected."""
    if page.tiles.selected is None:
        return False
    from PySide6.QtWidgets import QScrollArea

    tile_map = page.tile_panel.map
    tile_map.show_button.setChecked(True)
    settle(window.app, window)
    area = tile_map.parent()
    while area is not None and not isinstance(area, QScrollArea):
        area = area.parent()
    if area is not None:  # the side column scrolls: bring the map into view
        area.ensureWidgetVisible(tile_map, 0, 0)
        settle(window.app, window)
    return tile_map.has_map()


def _gallery(page, window) -> bool:
    """The report's gallery tab; False for a run without one."""
    run = window.ctx.state.run
    if run is None or not (run.report or {}).get("gallery"):
        return False
    page.tabs.setCurrentWidget(page.tabs.widget(page.tabs.count() - 1))
    settle(window.app, window)
    return True


def _calibration(page, window) -> None:
    page.show_calibration()
    settle(window.app, window)


def _cross_validation(page, window) -> bool:
    """The cross-validation tab where the run is a fold of one; False (no picture) for a plain run."""
    if not page.tabs.isTabVisible(3):
        return False
    page.show_cross_validation()
    settle(window.app, window)
    return True


ACTIONS: dict[str, Callable] = {
    "StressPage": _stress,
    "ResultsPage": _results,
    "DiagnosePage": _diagnose,
    "SlidesPage": _slides,
}
EXTRA_SHOTS: list[tuple[str, str, Callable]] = [
    ("results-robustness", "ResultsPage", _robustness),
    ("results-calibration", "ResultsPage", _calibration),
    ("results-cross-validation", "ResultsPage", _cross_validation),
    ("diagnose-explain", "DiagnosePage", _diagnose_explain),
    ("stress-maps", "StressPage", _stress_maps),
    ("slides-tile-map", "SlidesPage", _slides_tile_map),
    ("results-gallery", "ResultsPage", _gallery),
]
