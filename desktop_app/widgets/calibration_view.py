"""The Results page's calibration tab: per model the temperature, ECE and Brier score before and after
temperature scaling (with intervals) and what the review band flags, beside the reliability diagram and the
coverage-versus-accuracy curve of the test split.

Everything comes from report.json's "calibration" section (``engine.report.calibration`` makes the table's
cells, as report.md and report.html print them); older runs have none and get a short note.
"""

from __future__ import annotations

from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from desktop_app.widgets.robust_curves import COLOURS, OTHER_COLOURS
from desktop_app.widgets.text_table import fill, rich_label, text_table
from engine.report.calibration import HEADER, NOTE, notes, table_rows

NO_SECTION = (
    "<b>No calibration in this run.</b> It was made by an older HistoGuard, before temperature scaling and the "
    "review band were added; run the experiment again to get them. Its probabilities are the models' own softmax."
)


def _colour(model: str, models: list[str]) -> str:
    return COLOURS.get(model) or OTHER_COLOURS[models.index(model) % len(OTHER_COLOURS)]


def _plot(title: str, bottom: str, left: str) -> pg.PlotWidget:
    plot = pg.PlotWidget()
    plot.setTitle(title, size="10pt")
    plot.setLabel("bottom", bottom)
    plot.setLabel("left", left)
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.setMinimumHeight(260)
    return plot


class CalibrationView(QWidget):
    """``set_report(report)``; ``reliability[(model, kind)]`` and ``coverage[model]`` hold the plotted (x, y)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = rich_label()
        self.table = text_table(HEADER)
        self.fit_notes = rich_label()
        self.fit_notes.setStyleSheet("color: #8a5a00;")
        self.reliability_plot = _plot(
            "Reliability (test split)", "mean predicted p(positive)", "observed share positive"
        )
        self.coverage_plot = _plot("Coverage against accuracy (test)", "coverage: share of calls kept", "accuracy kept")
        self.reliability_legend = self.reliability_plot.addLegend(offset=(8, 4), labelTextSize="8pt", verSpacing=-6)
        self.coverage_legend = self.coverage_plot.addLegend(offset=(-8, -8), labelTextSize="8pt", verSpacing=-6)
        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.table)
        body.addWidget(self.fit_notes)
        plots = QHBoxLayout()
        plots.addWidget(self.reliability_plot, 1)
        plots.addWidget(self.coverage_plot, 1)
        body.addLayout(plots, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 8, 4)
        layout.addWidget(self.note)
        layout.addWidget(self.body, 1)
        layout.addStretch(0)
        self.reliability: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        self.coverage: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(900, 520)

    def set_report(self, report: dict) -> None:
        section = report.get("calibration") or {}
        self.body.setVisible(bool(section))
        self.note.setText(escape(NOTE, quote=False) if section else NO_SECTION)
        if not section:
            return
        fill(self.table, table_rows(section))
        self.fit_notes.setText("<br>".join(escape(n, quote=False) for n in notes(section)))
        self.fit_notes.setVisible(bool(notes(section)))
        self._draw_reliability(section)
        self._draw_coverage(section)

    def _draw_reliability(self, section: dict) -> None:
        plot, models = self.reliability_plot, list(section)
        plot.clear()
        self.reliability_legend.clear()
        self.reliability = {}
        diagonal = plot.plot([0, 1], [0, 1], pen=pg.mkPen("#777777", width=1, style=Qt.PenStyle.DotLine))
        self.reliability_legend.addItem(diagonal, "perfectly calibrated")
        for model, entry in section.items():
            colour = _colour(model, models)
            for kind, style in (("raw", Qt.PenStyle.DashLine), ("calibrated", Qt.PenStyle.SolidLine)):
                bins = [b for b in ((entry.get("test") or {}).get(kind) or {}).get("reliability", []) if b["n"]]
                x = np.array([b["mean_predicted"] for b in bins], dtype=float)
                y = np.array([b["observed"] for b in bins], dtype=float)
                item = plot.plot(x, y, pen=pg.mkPen(colour, width=2, style=style), symbol="o" if kind == "calibrated"
                                 else "x", symbolBrush=colour, symbolPen=colour, symbolSize=6)  # fmt: skip
                self.reliability_legend.addItem(item, f"{model} {kind}")
                self.reliability[(model, kind)] = (x, y)
        plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)

    def _draw_coverage(self, section: dict) -> None:
        plot, models = self.coverage_plot, list(section)
        plot.clear()
        self.coverage_legend.clear()
        self.coverage = {}
        for model, entry in section.items():
            curve = (entry.get("selective") or {}).get("calibrated") or []
            x = np.array([c["coverage"] for c in curve], dtype=float)
            y = np.array([c["accuracy"] for c in curve], dtype=float)
            colour = _colour(model, models)
            item = plot.plot(x, y, pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=4, symbolBrush=colour)
            self.coverage_legend.addItem(item, f"Model {model}")
            self.coverage[model] = (x, y)
            band = entry.get("review_band") or {}
            if band.get("coverage") is not None and band.get("accuracy_kept") is not None:
                star = pg.ScatterPlotItem([band["coverage"]], [band["accuracy_kept"]], symbol="star", size=14,
                                          brush=colour, pen=pg.mkPen("#333333"))  # fmt: skip
                plot.addItem(star)
        plot.getPlotItem().invertX(True)  # all calls kept on the left, the most confident few on the right
        plot.setRange(xRange=(0, 1), yRange=(0, 1.02), padding=0.02)
