"""Accuracy, sensitivity and specificity against eps (k/255) for several models on one pyqtgraph plot.

Models differ in colour and marker, metrics in dash pattern, and the legend names every line, so the
plot reads without colour vision. The majority-class baseline is a grey dashed line: a model below it
does worse than always answering the most frequent class. Each model's accuracy has its 95% interval
(patient-level bootstrap) as a translucent band.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from desktop_app.widgets.bands import add_band, interval_points

MODEL_STYLES = (("#1f77b4", "o"), ("#d62728", "s"), ("#2ca02c", "t"), ("#9467bd", "d"), ("#8c564b", "+"))
METRICS = (
    ("accuracy", Qt.PenStyle.SolidLine),
    ("sensitivity", Qt.PenStyle.DashLine),
    ("specificity", Qt.PenStyle.DotLine),
)


class EpsCurves(pg.GraphicsLayoutWidget):
    """``set_curves(result["curves"], baseline, positive_class)``; ``series[(model, metric)]`` holds the
    plotted (x = k, y) arrays, for tests and for anyone reading the numbers back. The legend sits beside
    the plot, never over a curve."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(200)
        self.plot_item = self.addPlot(row=0, col=0)
        self.plot_item.setLabel("bottom", "eps (k/255 of the pixel range)")
        self.plot_item.setLabel("left", "fraction of images")
        self.plot_item.showGrid(x=True, y=True, alpha=0.25)
        self.plot_item.setMouseEnabled(x=False, y=False)
        self.plot_item.hideButtons()
        self.legend = pg.LegendItem(labelTextSize="8pt", verSpacing=-4)
        self.addItem(self.legend, row=0, col=1)
        self.series: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        self.bands: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.baseline: float | None = None
        self.plot_item.setRange(xRange=(0, 8), yRange=(0, 1.02), padding=0)

    def clear_curves(self) -> None:
        self.plot_item.clear()
        self.legend.clear()
        self.series, self.bands, self.baseline = {}, {}, None

    def set_curves(
        self,
        curves: dict[str, list[dict]],
        baseline: float | None = None,
        positive_class: str | None = None,
        l2: bool = False,
    ) -> None:
        """``l2``: the eps values are L2 radii (PGD-L2), plotted as they are instead of as k/255."""
        self.clear_curves()
        self.plot_item.setLabel("bottom", "L2 radius (pixel units)" if l2 else "eps (k/255 of the pixel range)")
        scale = 1 if l2 else 255
        xs = []
        for i, (model, points) in enumerate(curves.items()):
            colour, marker = MODEL_STYLES[i % len(MODEL_STYLES)]
            for metric, dash in METRICS:
                pts = [(p["eps"], p[metric]) for p in points if p.get(metric) is not None]
                x = np.array([round(e * scale, 6) for e, _ in pts], dtype=float)
                y = np.array([v for _, v in pts], dtype=float)
                pen = pg.mkPen(colour, width=2, style=dash)
                item = self.plot_item.plot(x, y, pen=pen, symbol=marker, symbolBrush=colour, symbolPen=colour,
                                           symbolSize=7)  # fmt: skip
                self.legend.addItem(item, f"{model} {self._metric_label(metric, positive_class)}")
                self.series[(model, metric)] = (x, y)
                xs.extend(x.tolist())
            band = interval_points([(round(p["eps"] * scale, 6), (p.get("ci") or {}).get("accuracy")) for p in points])
            if add_band(self.plot_item, *band, colour):
                self.bands[model] = band
        if baseline is not None and xs:
            self._baseline(baseline, min(xs), max(xs))
        if xs:
            self.plot_item.setXRange(min(xs), max(max(xs), 1e-6), padding=0.03)
        self.plot_item.setYRange(0, 1.02, padding=0)

    def _baseline(self, value: float, x0: float, x1: float) -> None:
        self.baseline = value
        pen = pg.mkPen("#777777", width=1.5, style=Qt.PenStyle.DashLine)
        item = self.plot_item.plot([x0, x1], [value, value], pen=pen)
        self.legend.addItem(item, f"majority class ({value:.2f})")

    @staticmethod
    def _metric_label(metric: str, positive: str | None) -> str:
        if metric == "sensitivity" and positive:
            return f"sensitivity ({positive} found)"
        if metric == "specificity" and positive:
            return "specificity (others cleared)"
        return metric
