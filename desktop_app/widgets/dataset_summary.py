"""What discovery found: images and patients per class (and per magnification), as a table and bar plots.

Counts come from ``Dataset.summary()``; the class-by-magnification cells are counted from the records
(a single pass over them, cheap even for BreakHis' 7,909 images).
"""

from __future__ import annotations

from collections import Counter

from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from desktop_app.widgets.bar_chart import BarChart
from desktop_app.widgets.counts_table import CountsTable

NEGATIVE_COLOUR, POSITIVE_COLOUR, MAG_COLOUR = "#6a9fd8", "#d8756a", "#8a8fa0"


def class_title(label: str, positive: str) -> str:
    """A class name with its role, so the positive class is named in words, not by colour."""
    return f"{label} (positive)" if label == positive else label


def magnifications(summary: dict) -> list[str]:
    """Magnifications present (40X < 100X < ...), without 'unknown'; empty when the data has none."""
    return [m for m in summary["per_magnification"] if m != "unknown"]


class DatasetSummary(QGroupBox):
    """``set_dataset(dataset)``: the counts table (``table``) and two bar charts (``class_chart``,
    ``mag_chart``; the latter hidden when the images carry no magnification)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("What was found", parent)
        self.table = CountsTable(max_visible_rows=4, stretch_column=0)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color:#444; font-size:11px;")
        self.class_chart = BarChart("Images per class", "class")
        self.mag_chart = BarChart("Images per magnification", "magnification")
        charts = QHBoxLayout()
        charts.addWidget(self.class_chart)
        charts.addWidget(self.mag_chart)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(self.note)
        layout.addLayout(charts, 1)

    def set_dataset(self, dataset) -> None:
        summary = dataset.summary()
        mags = magnifications(summary)
        self._fill_table(dataset, summary, mags)
        self.note.setText(_note(summary))
        self.note.setVisible(bool(self.note.text()))
        positive = summary["positive_class"]
        classes = summary["classes"]
        self.class_chart.set_bars(
            [c + ("\n(positive)" if c == positive else "") for c in classes],
            [summary["per_class"][c] for c in classes],
            [POSITIVE_COLOUR if c == positive else NEGATIVE_COLOUR for c in classes],
        )
        self.mag_chart.setVisible(bool(mags))
        self.mag_chart.set_bars(
            list(summary["per_magnification"]),
            list(summary["per_magnification"].values()),
            [MAG_COLOUR] * len(summary["per_magnification"]),
        )

    def _fill_table(self, dataset, summary: dict, mags: list[str]) -> None:
        has_patients = summary["n_patients"] > 0
        by_class_mag = Counter((r.label, r.magnification) for r in dataset.records)
        headers = ["Class", "Images", "Patients", *mags]
        rows = []
        for c in summary["classes"]:
            patients = summary["patients_per_class"][c] if has_patients else "—"
            rows.append(
                [class_title(c, summary["positive_class"]), summary["per_class"][c], patients]
                + [by_class_mag[(c, m)] for m in mags]
            )
        total_patients = summary["n_patients"] if has_patients else "—"
        rows.append(["Total", summary["n_images"], total_patients, *(summary["per_magnification"][m] for m in mags)])
        self.table.set_table(headers, rows, bold_rows=[len(rows) - 1])
        for c, m in enumerate(mags, start=3):
            self.table.horizontalHeaderItem(c).setToolTip(f"images at magnification {m}")


def _note(summary: dict) -> str:
    """Tumour types (BreakHis) and a warning when patients are unknown."""
    parts = []
    if summary["per_tumor_type"]:
        types = " · ".join(f"{t.replace('_', ' ')} {n}" for t, n in summary["per_tumor_type"].items())
        parts.append(f"Tumour types (images): {types}.")
    if summary["n_patients"] == 0:
        parts.append(
            "<b>No patient ids</b> were found, so a patient-level split is impossible: put images in "
            "&lt;class&gt;/&lt;patient&gt;/ folders, use BreakHis names or a CSV manifest with a patient_id column."
        )
    if "unknown" in summary["per_magnification"] and len(summary["per_magnification"]) > 1:
        parts.append(f"{summary['per_magnification']['unknown']} images have no magnification.")
    return " ".join(parts)
