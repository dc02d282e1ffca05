"""Accuracy against eps (k/255) for each (model, attack source), drawn with pyqtgraph.

Lines differ in colour, dash pattern and marker, and a legend names them, so they can be told apart
without colour vision. Each line's 95% interval (patient-level bootstrap) is a translucent band in its colour.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from desktop_app.widgets.bands import add_band, interval_points
from engine.report.labels import series_label, sweep_series

STYLES = (  # colour, dash, marker
    ("#1f77b4", Qt.PenStyle.SolidLine, "o"),
    ("#d62728", Qt.PenStyle.DashLine, "t"),
    ("#2ca02c", Qt.PenStyle.DotLine, "s"),
)


class SweepPlot(pg.PlotWidget):
    """``set_sweep(report['sweep'], metric)``; ``curves`` maps each legend label to its (x = k, y) arrays and
    ``bands`` to its (x, low, high) interval band."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedHeight(280)
        self.setLabel("bottom", "eps (k/255 of the pixel range)")
        self.setYRange(0, 1.05, padding=0)
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.legend = self.addLegend(offset=(-10, -10))
        self.curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.bands: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def set_sweep(self, sweep: list[dict], metric: str = "accuracy") -> None:
        self.clear()
        self.legend.clear()
        self.curves, self.bands = {}, {}
        self.setLabel("left", metric.replace("_", " "))
        for (model, source), points in sweep_series(sweep, metric).items():
            pts = [(e, v) for e, v in points if v is not None]
            x = np.array([round(e * 255, 3) for e, _ in pts], dtype=float)
            y = np.array([v for _, v in pts], dtype=float)
            colour, dash, marker = STYLES[len(self.curves) % len(STYLES)]
            label = series_label(model, source)
            self.plot(x, y, pen=pg.mkPen(colour, width=2, style=dash), symbol=marker, symbolBrush=colour,
                      symbolSize=8, name=label)  # fmt: skip
            self.curves[label] = (x, y)
            cis = [(round(r["eps"] * 255, 3), (r.get("ci") or {}).get(metric)) for r in sweep
                   if (r["model"], r["attack_source"]) == (model, source)]  # fmt: skip
            band = interval_points(sorted(cis, key=lambda c: c[0]))
            if add_band(self.getPlotItem(), *band, colour):
                self.bands[label] = band
        ticks = sorted({float(k) for x, _ in self.curves.values() for k in x})
        self.getAxis("bottom").setTicks([[(k, f"{k:g}") for k in ticks]])
        self.setYRange(0, 1.05, padding=0)
