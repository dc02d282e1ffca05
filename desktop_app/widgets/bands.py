"""The 95% interval of a plotted curve as a translucent band (pyqtgraph), shared by the app's eps plots."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor


def interval_points(points: list[tuple[float, list[float] | None]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, low, high) of the points that have an interval: ``points`` are (x, [low, high] or None)."""
    kept = [(x, ci) for x, ci in points if ci]
    x = np.array([p for p, _ in kept], dtype=float)
    return x, np.array([c[0] for _, c in kept], dtype=float), np.array([c[1] for _, c in kept], dtype=float)


def add_band(plot_item: pg.PlotItem, x: np.ndarray, low: np.ndarray, high: np.ndarray, colour: str) -> bool:
    """Shade between ``low`` and ``high`` over ``x`` (two points at least); True when a band was drawn."""
    if len(x) < 2:
        return False
    fill = QColor(colour)
    fill.setAlpha(40)
    lower, upper = pg.PlotCurveItem(x, low, pen=None), pg.PlotCurveItem(x, high, pen=None)
    band = pg.FillBetweenItem(lower, upper, brush=pg.mkBrush(fill))
    band.setZValue(-10)  # under the lines and markers
    plot_item.addItem(band)
    return True
