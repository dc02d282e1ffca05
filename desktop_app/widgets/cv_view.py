"""The Results page's cross-validation tab (a run that is one fold of ``histoguard experiment --folds K``): mean ±
sd over the folds of every condition at image and patient level, the white-box robustness and the calibration,
with each fold's value; the cells are ``engine.report.cv``'s, as cv.md prints them."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.report.cv import EVAL_HEADER, ROBUST_HEADER, evaluation_rows, robustness_rows


def _table(header) -> QTableWidget:
    table = QTableWidget(0, len(header))
    table.setHorizontalHeaderLabels(list(header))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def fill(table: QTableWidget, rows: list[list[str]]) -> None:
    table.setRowCount(len(rows))
    for r, cells in enumerate(rows):
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if c:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(r, c, item)
    height = sum(table.rowHeight(r) for r in range(len(rows))) + table.horizontalHeader().height()
    table.setFixedHeight(height + 2 * table.frameWidth() + 2)


class CrossValidationView(QWidget):
    """``set_summary(cv.json, this fold's folder)``; ``image``, ``patient`` and ``robust`` are the tables."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.RichText)
        self.image, self.patient, self.robust = _table(EVAL_HEADER), _table(EVAL_HEADER), _table(ROBUST_HEADER)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 8, 4)
        layout.addWidget(self.note)
        for title, table in (("Image level", self.image), ("Patient level", self.patient),
                             ("White-box robustness (each model on its own gradients)", self.robust)):  # fmt: skip
            layout.addWidget(QLabel(f"<b>{title}</b> — mean ± sd over the folds, then each fold's accuracy"))
            layout.addWidget(table)
        layout.addStretch(1)

    def set_summary(self, summary: dict, run_path) -> None:
        folds = summary["folds"]
        this = next((f["fold"] for f in folds if f["run"] == run_path.name), None)
        sizes = ", ".join(f"{f['test_patients']}" for f in folds)
        self.note.setText(
            f"<b>Cross-validation.</b> {escape(summary['protocol'])}. Test patients per fold: "
            f"{sizes}. This run is fold <b>{this}</b>; every fold is a run folder of its own "
            f"(<tt>{escape(str(run_path.parent))}/fold_k</tt>: File › Open run folder…). The other tabs show this "
            "fold only, with its patient-level intervals."
        )
        fill(self.image, evaluation_rows(summary, "image"))
        fill(self.patient, evaluation_rows(summary, "patient"))
        fill(self.robust, robustness_rows(summary))
