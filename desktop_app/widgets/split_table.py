"""The split the Train page will use: patients, images per class and share of images in train/val/test.

A patient whose images sit in more than one split is counted and named in the caption, so an image-level
split's leak is shown in numbers rather than only warned about.
"""

from __future__ import annotations

from collections import defaultdict

from PySide6.QtWidgets import QGroupBox, QLabel, QVBoxLayout, QWidget

from desktop_app.widgets.counts_table import CountsTable
from desktop_app.widgets.dataset_summary import class_title

SPLIT_TITLES = (("train", "Train"), ("val", "Validation"), ("test", "Test"))
ERROR_STYLE = "background:#fde7e9; border:1px solid #d13438; padding:6px; color:#5c0b10;"
LEAK_STYLE = "color:#a4262c; font-weight:bold;"


def patients_in_several_splits(dataset, split) -> list[str]:
    """Patients with images in more than one split (always empty for a patient-level split)."""
    where: dict[str, set[str]] = defaultdict(set)
    for record, name in zip(dataset.records, split.assignment):
        if record.patient_id is not None:
            where[record.patient_id].add(name)
    return sorted(p for p, names in where.items() if len(names) > 1)


class SplitTable(QGroupBox):
    """``set_split(dataset, split, summary)`` where ``summary`` is ``engine.api.split_summary``'s output."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Resulting split", parent)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.table = CountsTable(max_visible_rows=4, stretch_column=0)
        self.leak = QLabel("")
        self.leak.setWordWrap(True)
        self.leak.setStyleSheet(LEAK_STYLE)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(ERROR_STYLE)
        layout = QVBoxLayout(self)
        for w in (self.caption, self.table, self.leak, self.error):
            layout.addWidget(w)
        layout.addStretch(1)
        self.leak.hide()
        self.error.hide()

    def set_split(self, dataset, split, summary: dict, source: str = "") -> None:
        classes, positive = dataset.classes, dataset.positive_class
        headers = [
            "Split",
            "Patients",
            *(f"{class_title(c, positive)}\nimages" for c in classes),
            "All\nimages",
            "Share of\nimages",
        ]
        total = max(len(dataset.records), 1)
        rows = []
        for key, title in SPLIT_TITLES:
            part = summary[key]
            share = f"{100 * part['n_images'] / total:.1f} %"
            rows.append([title, part["n_patients"], *(part["per_class"][c] for c in classes), part["n_images"], share])
        n_patients = len({r.patient_id for r in dataset.records if r.patient_id is not None})
        per_class = [sum(summary[k]["per_class"][c] for k, _ in SPLIT_TITLES) for c in classes]
        rows.append(["All", n_patients, *per_class, len(dataset.records), "100.0 %"])
        self.table.set_table(headers, rows, bold_rows=[len(rows) - 1])
        self.table.show()
        self.caption.setText(_caption(split, summary, source))
        self._show_leak(dataset, split, n_patients)
        self.error.hide()

    def show_error(self, message: str) -> None:
        """The split cannot be made with the current settings: say why instead of showing a stale table."""
        self.table.hide()
        self.caption.setText("")
        self.leak.hide()
        self.error.setText(f"<b>No split:</b> {message}")
        self.error.show()

    def _show_leak(self, dataset, split, n_patients: int) -> None:
        shared = patients_in_several_splits(dataset, split)
        if shared:
            names = ", ".join(shared[:5]) + (", …" if len(shared) > 5 else "")
            self.leak.setText(
                f"Warning: {len(shared)} of {n_patients} patients have images in more than one split ({names}); "
                "test results will be optimistic."
            )
        self.leak.setVisible(bool(shared))


def _caption(split, summary: dict, source: str) -> str:
    level = "Patient-level" if split.level == "patient" else "Image-level"
    shares = " / ".join(f"{r:.2f}" for r in split.ratios)
    text = source or f"{level} split, shares train / validation / test {shares}, seed {split.seed}"
    if split.level == "patient":
        text += "; every patient is in exactly one split"
    return f"{text}. <span style='color:#666'>Split id {summary['hash'][:12]}</span>"
