"""The metrics table: one row per evaluation condition, the majority-class baseline beside accuracy.

Numbers are formatted as the engine's report formats them ('0.84 (0.79–0.88)': the value and its 95%
patient-level bootstrap interval; '—' where a metric is undefined), so what the window shows and what
report.html / report.md print are the same strings.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from engine.report.labels import METRIC_TITLES, METRICS, attack_kind, cell, condition_label

COLUMNS = ("accuracy", "majority_baseline", *METRICS[1:], "n")
HELP = {
    "accuracy": "Share of all test cases classified correctly.",
    "majority_baseline": "Accuracy of a model that always answers the most common class of this test set.",
    "balanced_accuracy": "Mean of sensitivity and specificity: not fooled by unequal class sizes.",
    "sensitivity": "Share of positive cases (the positive class) called positive: TP / (TP + FN).",
    "specificity": "Share of negative cases called negative: TN / (TN + FP).",
    "precision": "Share of positive calls that are right: TP / (TP + FP).",
    "f1": "Harmonic mean of precision and sensitivity.",
    "roc_auc": "Area under the ROC curve of the predicted probability (1 = perfect ranking, 0.5 = chance).",
    "missed_cancer_rate": "Share of positive cases called negative: FN / (FN + TP) = 1 - sensitivity.",
    "n": "Number of test cases (images, or patients at patient level).",
}
CI_HELP = " In brackets: the 95% confidence interval (patients resampled together, so it is honest about small sets)."


class MetricsTable(QTableWidget):
    """Read-only; ``set_evaluations(evals)`` with report.json evaluation dicts in display order."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 1 + len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(["condition", *(METRIC_TITLES[c] for c in COLUMNS)])
        for col, key in enumerate(COLUMNS, start=1):
            self.horizontalHeaderItem(col).setToolTip(HELP[key])
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, self.columnCount()):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def set_evaluations(self, evaluations: list[dict]) -> None:
        self.setRowCount(len(evaluations))
        for row, e in enumerate(evaluations):
            label = QTableWidgetItem(condition_label(e))
            if attack_kind(e) == "transfer":
                label.setToolTip("Attack made on Model A, shown to Model B: the study's setting.")
            self.setItem(row, 0, label)
            for col, key in enumerate(COLUMNS, start=1):
                item = QTableWidgetItem(str(e["n"]) if key == "n" else cell(e, key))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setToolTip(HELP[key] + (CI_HELP if (e.get("ci") or {}).get(key) else ""))
                self.setItem(row, col, item)
        self._fit_height()

    def column_of(self, key: str) -> int:
        """The column showing ``key`` ('accuracy', 'majority_baseline', ..., 'n')."""
        return 1 + COLUMNS.index(key)

    def _fit_height(self) -> None:
        rows = sum(self.rowHeight(r) for r in range(self.rowCount()))
        self.setFixedHeight(rows + self.horizontalHeader().height() + 2 * self.frameWidth() + 2)
