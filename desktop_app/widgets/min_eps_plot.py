"""The smallest eps that flips each image's prediction (PGD), per model: grouped bars by k/255, a last bar for
the images no eps up to the maximum flipped, and each model's median as a labelled dashed line.

A model whose bars sit further right needs a larger change to be fooled. Each model's median is written in
the legend, so nothing rests on colour alone; the legend sits top left, above the (usually low) bars of
small eps, with head room kept for it.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QWidget

from desktop_app.widgets.robust_curves import COLOURS, OTHER_COLOURS


def median_text(summary: dict) -> str:
    m, max_k = summary.get("median_255"), summary["max_k"]
    return f">{max_k}/255" if m is None or m > max_k else f"{m:g}/255"


def bar_counts(summary: dict) -> list[int]:
    """Images first flipped at k = 1 .. max_k, then those never flipped up to max_k."""
    hist = summary.get("histogram") or {}
    return [int(hist.get(str(k), 0)) for k in range(1, summary["max_k"] + 1)] + [int(summary["not_flipped"])]


class MinEpsPlot(pg.PlotWidget):
    """``set_min_eps(report["robustness"]["min_eps"])``; ``counts[model]`` and ``medians[model]`` hold what is drawn."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.setMinimumHeight(240)
        self.setTitle("Smallest eps that flips each image (PGD)", size="10pt")
        self.setLabel("bottom", "eps (k/255) at which the prediction first changes")
        self.setLabel("left", "images")
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.showGrid(y=True, alpha=0.25)
        self.getAxis("left").enableAutoSIPrefix(False)
        self.legend = self.addLegend(offset=(8, 4), labelTextSize="8pt", verSpacing=-6)
        self.counts: dict[str, list[int]] = {}
        self.medians: dict[str, float | None] = {}

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override): modest, so the robustness tab fits 1280x800
        return QSize(420, 220)

    def set_min_eps(self, min_eps: dict) -> None:
        self.clear()
        self.legend.clear()
        self.counts, self.medians = {}, {}
        models = sorted(min_eps)
        width = 0.8 / max(len(models), 1)
        max_k = max((min_eps[m]["max_k"] for m in models), default=16)
        for i, model in enumerate(models):
            s = min_eps[model]
            colour = COLOURS.get(model) or OTHER_COLOURS[i % len(OTHER_COLOURS)]
            counts = bar_counts(s)
            xs = [k + (i - (len(models) - 1) / 2) * width for k in range(1, len(counts) + 1)]
            bars = pg.BarGraphItem(x=xs, height=counts, width=width, brush=colour, pen=pg.mkPen("#333", width=0.5))
            self.addItem(bars)
            self.legend.addItem(bars, f"{model}: median {median_text(s)}")
            self._median(s, colour)
            self.counts[model], self.medians[model] = counts, s.get("median_255")
        step = max(1, max_k // 8)
        ticks = [(k, str(k)) for k in range(1, max_k + 1, step)] + [(max_k + 1, f">{max_k}")]
        self.getAxis("bottom").setTicks([ticks])
        self.setXRange(0.4, max_k + 1.6, padding=0)
        top = max((max(c) for c in self.counts.values() if c), default=1)
        self.setYRange(0, max(top, 1) * 1.6, padding=0)

    def _median(self, s: dict, colour: str) -> None:
        m, max_k = s.get("median_255"), s["max_k"]
        x = max_k + 1 if m is None or m > max_k else m
        line = pg.InfiniteLine(pos=x, angle=90, pen=pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine))
        self.addItem(line)
