"""The eps sweep as numbers: one row per (model, attack source), one column per eps (k/255), each value with
its 95% interval as the report prints it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from engine.report.labels import cell, eps_text, fmt, series_label, sweep_series


class SweepTable(QTableWidget):
    """Read-only; ``set_sweep(report['sweep'], metric)``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 0, parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

    def set_sweep(self, sweep: list[dict], metric: str = "accuracy") -> None:
        series = sweep_series(sweep, metric)
        eps_values = sorted({row["eps"] for row in sweep})
        self.clear()
        self.setRowCount(len(series))
        self.setColumnCount(len(eps_values))
        self.setHorizontalHeaderLabels([eps_text(e) for e in eps_values])
        self.setVerticalHeaderLabels([series_label(m, s) for m, s in series])
        for row, pair in enumerate(series):
            rows = {r["eps"]: r for r in sweep if (r["model"], r["attack_source"]) == pair}
            for col, eps in enumerate(eps_values):
                item = QTableWidgetItem(cell(rows[eps], metric) if eps in rows else fmt(None))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(row, col, item)
        self.setFixedHeight(
            self.verticalHeader().length() + self.horizontalHeader().height() + 2 * self.frameWidth() + 2
        )
