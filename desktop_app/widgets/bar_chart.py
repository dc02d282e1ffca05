"""A labelled pyqtgraph bar chart of counts: one bar per category, its value written above it.

Values are printed on the bars so that nothing depends on reading a colour or an axis; the plot is
static (no mouse zoom), since a handful of counts gains nothing from panning.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

DEFAULT_COLOUR = "#4a78b5"


class BarChart(pg.PlotWidget):
    """``set_bars(labels, values)`` draws the bars; ``bar_values()`` / ``bar_labels()`` read back what is drawn."""

    def __init__(self, title: str, x_label: str, y_label: str = "images", parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.setTitle(title, size="10pt")
        self.setLabel("bottom", x_label)
        self.setLabel("left", y_label)
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.showGrid(y=True, alpha=0.25)
        for axis in ("bottom", "left"):
            self.getAxis(axis).enableAutoSIPrefix(False)  # counts, not "x0.001" scaled units
        self.setFixedHeight(165)
        self.bars: pg.BarGraphItem | None = None
        self._labels: list[str] = []
        self._texts: list[pg.TextItem] = []

    def set_bars(self, labels: Sequence[str], values: Sequence[float], colours: Sequence[str] | None = None) -> None:
        self.clear_bars()
        self._labels = [str(label) for label in labels]
        if not self._labels:
            return
        xs = list(range(len(values)))
        brushes = [pg.mkBrush(c) for c in (colours or [DEFAULT_COLOUR] * len(values))]
        self.bars = pg.BarGraphItem(x=xs, height=list(values), width=0.6, brushes=brushes, pen=pg.mkPen("#333"))
        self.addItem(self.bars)
        for x, v in zip(xs, values):
            text = pg.TextItem(f"{v:,}" if isinstance(v, int) else f"{v:g}", color="#000", anchor=(0.5, 1.0))
            text.setPos(x, v)
            self.addItem(text)
            self._texts.append(text)
        self.getAxis("bottom").setTicks([list(zip(xs, self._labels))])
        top = max(values) if len(values) else 1
        self.setXRange(-0.6, len(values) - 0.4, padding=0)
        self.setYRange(0, max(top, 1) * 1.22, padding=0)

    def clear_bars(self) -> None:
        if self.bars is not None:
            self.removeItem(self.bars)
        for text in self._texts:
            self.removeItem(text)
        self.bars, self._texts, self._labels = None, [], []
        self.getAxis("bottom").setTicks([[]])

    def bar_values(self) -> list[float]:
        return [] if self.bars is None else [float(v) for v in self.bars.opts["height"]]

    def bar_labels(self) -> list[str]:
        return list(self._labels)
