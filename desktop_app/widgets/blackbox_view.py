"""What a black-box (Square) attack on an ONNX file did: the metrics before and after, and accuracy against
the number of queries (pyqtgraph), with the onnxruntime provider that actually ran the model.

Values are formatted as the reports format them (``engine.report.labels.fmt``); the clean accuracy is a
grey dashed line on the plot, so the drop reads without colour.
"""

from __future__ import annotations

from html import escape

import numpy as np
import pyqtgraph as pg
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

from engine.report.labels import cell, eps_text, fmt

COLUMNS = (
    ("accuracy", "accuracy"),
    ("sensitivity", "sensitivity"),
    ("specificity", "specificity"),
    ("missed_cancer_rate", "missed-cancer rate"),
    ("attack_success_rate", "attack success"),
    ("mean_queries", "mean queries"),
    ("n", "n"),
)
COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")


def cell_text(row: dict, key: str) -> str:
    value = row.get(key)
    if key == "n":
        return str(value)
    if key == "mean_queries":
        return "—" if value is None else f"{value:.0f}"
    return cell(row, key)  # with its 95% interval where the engine gave one


def condition_text(row: dict) -> str:
    return "clean (no attack)" if not row["eps"] else f"Square, eps {eps_text(row['eps'])}"


class BlackboxView(QWidget):
    """``set_result(engine black-box result)``; ``curves[label]`` holds the plotted (queries, accuracy)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("Choose an ONNX file and labelled images, then click Run black-box attack.")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 1 + len(COLUMNS))
        self.table.setHorizontalHeaderLabels(["condition", *(title for _, title in COLUMNS)])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setFixedHeight(90)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "queries to the model (per image)")
        self.plot.setLabel("left", "accuracy")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.legend = self.plot.addLegend(offset=(-10, 10))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.table)
        layout.addWidget(self.plot, 1)
        self.result: dict | None = None
        self.curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def set_result(self, result: dict) -> None:
        self.result = result
        rows = result["results"]
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(condition_text(row)))
            for c, (key, _) in enumerate(COLUMNS, start=1):
                item = QTableWidgetItem(cell_text(row, key))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        rows_h = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        self.table.setFixedHeight(rows_h + self.table.horizontalHeader().height() + 2 * self.table.frameWidth() + 2)
        self._plot(rows)
        self.summary.setText(summary_text(result))

    def _plot(self, rows: list[dict]) -> None:
        self.plot.clear()
        self.legend.clear()
        self.curves = {}
        for i, row in enumerate(r for r in rows if r["eps"]):
            y = np.asarray(row["accuracy_curve"], dtype=float)
            x = np.arange(len(y), dtype=float)
            label = condition_text(row)
            self.plot.plot(x, y, pen=pg.mkPen(COLOURS[i % len(COLOURS)], width=2), name=label)
            self.curves[label] = (x, y)
        clean = next((r for r in rows if not r["eps"]), None)
        if clean is not None and clean["accuracy"] is not None and self.curves:
            n = max(len(y) for _, y in self.curves.values()) - 1
            pen = pg.mkPen("#777777", width=1.5, style=Qt.PenStyle.DashLine)
            self.plot.plot([0, n], [clean["accuracy"]] * 2, pen=pen, name=f"clean accuracy ({clean['accuracy']:.2f})")
        self.plot.setYRange(0, 1.02, padding=0)


def summary_text(result: dict) -> str:
    """One paragraph: model, images, provider, and the accuracy / missed-cancer rate before and after."""
    rows = result["results"]
    clean = next((r for r in rows if not r["eps"]), rows[0])
    classes = result.get("classes") or ["negative", "positive"]
    parts = [
        f"<b>{escape(condition_text(r))}</b>: accuracy {fmt(clean['accuracy'])} → {fmt(r['accuracy'])}, "
        f"missed-cancer rate {fmt(clean['missed_cancer_rate'])} → {fmt(r['missed_cancer_rate'])}"
        for r in rows
        if r["eps"]
    ]
    return (
        f"Square attack on <b>{escape(str(result.get('model', '')))}</b>: "
        f"{result.get('n_images', clean['n'])} images, up to {result['n_queries']} queries each; "
        f"positive class <b>{escape(classes[1])}</b> (missed cancer = a {escape(classes[1])} image called "
        f"{escape(classes[0])}). Run by onnxruntime on <b>{escape(result['provider'])}</b>.<br>" + "<br>".join(parts)
    )
