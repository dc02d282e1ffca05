"""A 2x2 confusion matrix drawn as a heatmap: count, row percentage and TN/FP/FN/TP in every cell.

Drawn with QPainter in a plain QWidget rather than pyqtgraph: four cells and a few labels need no zoom or
axes, and QPainter gives crisp text at any size. Shading is the cell's share of its row (the true class),
so a row reads as "of the true malignant cases, 70% were called malignant"; the numbers are always printed,
and the text is black or white by the cell's luminance, so nothing depends on seeing the colour.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from engine.report.labels import CELL_NAMES  # rows: true class, columns: predicted; the positive class second

LOW, HIGH = QColor("#f4f8fc"), QColor("#0b3d7a")  # row share 0 -> 1


def row_fractions(matrix: list[list[int]]) -> list[list[float]]:
    return [[c / sum(row) if sum(row) else 0.0 for c in row] for row in matrix]


def shade(fraction: float) -> QColor:
    """Linear blend from LOW to HIGH."""
    f = min(max(fraction, 0.0), 1.0)
    return QColor(*(round(a + (b - a) * f) for a, b in zip(LOW.getRgb()[:3], HIGH.getRgb()[:3], strict=True)))


def text_colour(background: QColor) -> QColor:
    """Black on light cells, white on dark ones (relative luminance threshold)."""
    r, g, b = background.redF(), background.greenF(), background.blueF()
    return QColor("black") if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else QColor("white")


class ConfusionHeatmap(QWidget):
    """``set_data(matrix, classes, title, subtitle)``; ``matrix[true][predicted]`` counts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.matrix: list[list[int]] = [[0, 0], [0, 0]]
        self.classes: list[str] = ["negative", "positive"]
        self.title, self.subtitle = "", ""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMinimumSize(190, 230)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(220, 250)

    def set_data(self, matrix: list[list[int]], classes: list[str], title: str, subtitle: str = "") -> None:
        self.matrix, self.classes = [list(map(int, row)) for row in matrix], list(classes)
        self.title, self.subtitle = title, subtitle
        self.setToolTip(self._tooltip())
        self.update()

    # --- what the cells say (also used by tests and the tooltip) ------------------------------------
    def cell_text(self, i: int, j: int) -> str:
        return f"{self.matrix[i][j]}\n{100 * row_fractions(self.matrix)[i][j]:.1f}%"

    def _tooltip(self) -> str:
        lines = [f"{self.title} — {self.subtitle}" if self.subtitle else self.title]
        for i, true in enumerate(self.classes):
            for j, pred in enumerate(self.classes):
                count, pct = self.cell_text(i, j).split("\n")
                lines.append(f"{CELL_NAMES[i][j]}: true {true}, predicted {pred}: {count} ({pct} of true {true})")
        return "\n".join(lines)

    # --- drawing ----------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        base = QFont(self.font())
        w, h = self.width(), self.height()
        top = self._draw_titles(p, base, w)
        left, label_h = 46, 34  # room for "true" + class names (rotated); "predicted" + class names
        side = max(40.0, min(w - left - 6, h - top - label_h - 4))
        grid = QRectF(left + (w - left - 6 - side) / 2, top + label_h, side, side)
        self._draw_axes(p, base, grid)
        self._draw_cells(p, base, grid)
        p.end()

    def _draw_titles(self, p: QPainter, base: QFont, w: int) -> float:
        bold = QFont(base)
        bold.setBold(True)
        p.setPen(self.palette().windowText().color())
        p.setFont(bold)
        line = p.fontMetrics().height()
        p.drawText(QRectF(0, 0, w, line), Qt.AlignmentFlag.AlignHCenter, self._elide(p, self.title, w))
        p.setFont(base)
        p.drawText(QRectF(0, line, w, line), Qt.AlignmentFlag.AlignHCenter, self._elide(p, self.subtitle, w))
        return 2 * line + 4

    def _draw_axes(self, p: QPainter, base: QFont, grid: QRectF) -> None:
        small = QFont(base)
        small.setPointSizeF(max(7.0, base.pointSizeF() - 1))
        p.setFont(small)
        line = p.fontMetrics().height()
        half = grid.width() / 2
        centre = Qt.AlignmentFlag.AlignCenter
        p.drawText(QRectF(grid.left(), grid.top() - 2 * line - 2, grid.width(), line), centre, "predicted")
        for j, name in enumerate(self.classes):
            cell = QRectF(grid.left() + j * half, grid.top() - line - 2, half, line)
            p.drawText(cell, centre, self._elide(p, name, half - 2))
        p.save()  # rotated labels on the left: "true", then each row's class name
        p.translate(grid.left(), grid.bottom())
        p.rotate(-90)
        p.drawText(QRectF(0, -2 * line - 4, grid.height(), line), centre, "true")
        for i, name in enumerate(self.classes):
            cell = QRectF((1 - i) * half, -line - 2, half, line)
            p.drawText(cell, centre, self._elide(p, name, half - 2))
        p.restore()

    def _draw_cells(self, p: QPainter, base: QFont, grid: QRectF) -> None:
        half = grid.width() / 2
        fractions = row_fractions(self.matrix)
        big, small = QFont(base), QFont(base)
        big.setBold(True)
        big.setPointSizeF(base.pointSizeF() + 3)
        small.setPointSizeF(max(7.0, base.pointSizeF() - 1))
        for i in range(2):
            for j in range(2):
                cell = QRectF(grid.left() + j * half, grid.top() + i * half, half, half)
                bg = shade(fractions[i][j])
                p.fillRect(cell, bg)
                p.setPen(QColor("#7a7a7a"))
                p.drawRect(cell)
                p.setPen(text_colour(bg))
                count, pct = self.cell_text(i, j).split("\n")
                p.setFont(small)
                p.drawText(cell.adjusted(4, 2, -4, -2), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                           CELL_NAMES[i][j])  # fmt: skip
                p.setFont(big)
                mid = cell.center().y()
                p.drawText(QRectF(cell.left(), mid - 18, half, 20), Qt.AlignmentFlag.AlignCenter, count)
                p.setFont(base)
                p.drawText(QRectF(cell.left(), mid + 2, half, 18), Qt.AlignmentFlag.AlignCenter, pct)

    @staticmethod
    def _elide(p: QPainter, text: str, width: float) -> str:
        return p.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, int(width))
