"""A read-only table of the engine's text cells (the report's strings), sized to its rows: the calibration and
cross-validation tabs show their sections with it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableWidget, QTableWidgetItem


def text_table(header) -> QTableWidget:
    table = QTableWidget(0, len(header))
    table.setHorizontalHeaderLabels(list(header))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def fill(table: QTableWidget, rows: list[list[str]]) -> None:
    """Replace the rows (numbers right-aligned: every column but the first) and fit the height to them."""
    table.setRowCount(len(rows))
    for r, cells in enumerate(rows):
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if c:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(r, c, item)
    height = sum(table.rowHeight(r) for r in range(len(rows))) + table.horizontalHeader().height()
    table.setFixedHeight(height + 2 * table.frameWidth() + 2)


def rich_label(text: str = "") -> QLabel:
    """A word-wrapped rich-text label (the tabs' notes)."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    return label


def cells(table: QTableWidget) -> list[list[str]]:
    """What the table shows, row by row (for tests and for reading the numbers back)."""
    return [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]
