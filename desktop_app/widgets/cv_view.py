"""The Results page's cross-validation tab (a run that is one fold of ``histoguard experiment --folds K``): mean ±
sd over the folds of every condition at image and patient level, the white-box robustness and the calibration,
with each fold's value; the cells are ``engine.report.cv``'s, as cv.md prints them."""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from desktop_app.widgets.text_table import fill, rich_label, text_table
from engine.report.cv import EVAL_HEADER, ROBUST_HEADER, evaluation_rows, robustness_rows


class CrossValidationView(QWidget):
    """``set_summary(cv.json, this fold's folder)``; ``image``, ``patient`` and ``robust`` are the tables."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = rich_label()
        self.image, self.patient = text_table(EVAL_HEADER), text_table(EVAL_HEADER)
        self.robust = text_table(ROBUST_HEADER)
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
