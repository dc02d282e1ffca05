"""A small read-only table of counts (texts in, texts shown) that sizes itself to its rows.

Used for the per-class counts, the split table and the skipped-file list on the Data page: tables that
should be read at a glance, without an inner scroll bar unless they are long.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QSizePolicy, QTableWidget, QTableWidgetItem, QWidget

Cell = str | int | float


def format_cell(value: Cell) -> str:
    """Integers with thousands separators; other values as given (callers format floats themselves)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class CountsTable(QTableWidget):
    """``set_table(headers, rows)``: the first column is left-aligned (names), the others right-aligned
    (numbers). The height fits ``max_visible_rows`` rows; longer tables scroll inside."""

    def __init__(self, max_visible_rows: int = 8, stretch_column: int | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.max_visible_rows = max_visible_rows
        self.stretch_column = stretch_column
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.verticalHeader().setVisible(False)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[Cell]],
        *,
        bold_rows: Sequence[int] = (),
        tooltips: Sequence[str] | None = None,
        text_columns: Sequence[int] = (0,),
    ) -> None:
        """Replace the contents; ``tooltips[i]`` (optional) is shown over row ``i``. ``text_columns`` are
        left-aligned (names, reasons), the others right-aligned (numbers)."""
        self.clear()
        self.setColumnCount(len(headers))
        self.setRowCount(len(rows))
        self.setHorizontalHeaderLabels(list(headers))
        bold = QFont(self.font())
        bold.setBold(True)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                item = QTableWidgetItem(format_cell(value))
                align = Qt.AlignmentFlag.AlignLeft if c in text_columns else Qt.AlignmentFlag.AlignRight
                item.setTextAlignment(align | Qt.AlignmentFlag.AlignVCenter)
                if r in bold_rows:
                    item.setFont(bold)
                if tooltips is not None and r < len(tooltips):
                    item.setToolTip(tooltips[r])
                self.setItem(r, c, item)
        self._fit_columns()
        self._fit_height()

    def cell_text(self, row: int, column: int) -> str:
        item = self.item(row, column)
        return item.text() if item is not None else ""

    def header_texts(self) -> list[str]:
        return [self.horizontalHeaderItem(c).text() for c in range(self.columnCount())]

    def _fit_columns(self) -> None:
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        if self.stretch_column is not None and self.stretch_column < self.columnCount():
            header.setSectionResizeMode(self.stretch_column, QHeaderView.ResizeMode.Stretch)
        else:
            header.setStretchLastSection(True)

    def _fit_height(self) -> None:
        shown = min(self.rowCount(), self.max_visible_rows)
        row_height = self.verticalHeader().defaultSectionSize()
        header = self.horizontalHeader().sizeHint().height() if self.columnCount() else 0
        height = header + shown * row_height + 2 * self.frameWidth() + 2
        if self._too_wide():
            height += self.horizontalScrollBar().sizeHint().height()
        self.setFixedHeight(height)

    def _too_wide(self) -> bool:
        return self.stretch_column is None and self.horizontalHeader().length() > self.viewport().width() > 0
