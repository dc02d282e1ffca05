"""Prediction rows (``engine.api.predict_files``) as a sortable table: one image per row.

Unreadable files stay in the table with the reason, so a batch never hides a file it skipped. Rows that carry a
randomized-smoothing certificate (``engine.api.attach_certificates``) fill one more column, shown only then: the
certified L2 radius and the L-inf size it covers as k/255, "0.616 (2.83/255)", or "abstain" (shaded like an uncertain
call). The error column is shown only when a file could not be read.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

ROW_ROLE = Qt.ItemDataRole.UserRole  # index into the rows list, kept on column 0 (sorting moves items)
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


class SortItem(QTableWidgetItem):
    """A cell that sorts by a number (probabilities), not by its text."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if mine is None or theirs is None:
            return super().__lt__(other)
        return mine < theirs


def short_error(row: dict) -> str:
    """The engine's message without the file's path in front (the File column already names it)."""
    error, prefix = row.get("error") or "", f"{row.get('path', '')}: "
    return error[len(prefix) :] if error.startswith(prefix) else error


def predicted_probability(row: dict) -> float | None:
    return row.get(f"p_{row['predicted']}") if row.get("predicted") else None


UNCERTAIN = QColor("#fff4ce")  # the review band's calls: amber, as the app's warnings
ABSTAIN = "abstain"
ERROR_COLUMN, RADIUS_COLUMN = 5, 6  # the certificate is shown before the error


def certificate_tip(row: dict) -> str:
    """What a row's certificate says, in words (the tooltip of its cells)."""
    settings = f"sigma {row['certified_sigma']:g}, n {row['certified_n']}, alpha {row['certified_alpha']:g}"
    if row["certified_call"] == ABSTAIN:
        return (
            f"The smoothed classifier abstains: its noisy copies do not agree enough to certify any radius "
            f"(lower bound on the top class's share {row['certified_p_A_lower']:.3f} <= 0.5; {settings})."
        )
    return (
        f"The smoothed classifier calls {row['certified_call']}, and no change of the image within L2 distance "
        f"{row['certified_radius_l2']:.3f} (pixel units on [0, 1] images) can change that call, nor any change of "
        f"at most {row['certified_linf_255']:.2f}/255 per pixel value (with probability 1 - alpha; {settings})."
    )


class PredictionTable(QTableWidget):
    """Columns: file, predicted class, p(positive class), p(predicted class), review flag, (certified radius,)
    (error). Probabilities are the model file's calibrated ones; an "uncertain" row is shaded amber."""

    row_selected = Signal(object)  # the selected row's dict, or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 7, parent)
        self.rows: list[dict] = []
        self.positive = "positive"
        self._set_headers()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.horizontalHeader()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        for col in (1, 2, 3, 4, RADIUS_COLUMN):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.moveSection(ERROR_COLUMN, RADIUS_COLUMN)  # shown last (it stretches); its index stays 5
        self.setColumnHidden(RADIUS_COLUMN, True)
        self.setColumnWidth(0, 240)
        self.itemSelectionChanged.connect(self._selection_changed)

    def _set_headers(self) -> None:
        self.setHorizontalHeaderLabels(
            ["File", "Predicted", f"p({self.positive})", "p(predicted)", "Review", "Error", "Certified radius"]
        )
        self.horizontalHeaderItem(RADIUS_COLUMN).setToolTip(
            "Randomized smoothing: the L2 radius within which the smoothed classifier's call provably cannot change, "
            "and (in brackets) the change per pixel value it covers, as k/255"
        )

    def set_rows(self, rows: list[dict], positive: str) -> None:
        """Replace the table's content (sorting is switched off while filling, then restored)."""
        self.setSortingEnabled(False)
        self.clearSelection()
        self.rows, self.positive = list(rows), positive
        self._set_headers()
        self.setRowCount(len(rows))
        for i, row in enumerate(rows):
            self._fill(i, row)
        certified = any("certified_call" in r for r in rows)
        self.setColumnHidden(RADIUS_COLUMN, not certified)
        self.setColumnHidden(ERROR_COLUMN, not any(r.get("error") for r in rows))
        self.setColumnWidth(0, 170 if certified else 240)  # room for the certificate (the name elides; tooltip: path)
        self.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # keep the order added
        self.setSortingEnabled(True)

    def _fill(self, i: int, row: dict) -> None:
        name = QTableWidgetItem(Path(row["path"]).name)
        name.setData(ROW_ROLE, i)
        name.setToolTip(row["path"])
        self.setItem(i, 0, name)
        self.setItem(i, 1, QTableWidgetItem(row.get("predicted") or "not read"))
        self.setItem(i, 2, self._number(row.get(f"p_{self.positive}")))
        self.setItem(i, 3, self._number(predicted_probability(row)))
        review = QTableWidgetItem(row.get("review") or "")
        if row.get("review"):
            review.setToolTip(f"p({self.positive}) is inside the review band {row.get('review_band', '')}")
        self.setItem(i, 4, review)
        error = QTableWidgetItem(short_error(row))
        error.setToolTip(row.get("error") or "")
        self.setItem(i, ERROR_COLUMN, error)
        self._fill_certificate(i, row)
        if row.get("review"):
            for col in range(self.columnCount()):
                self.item(i, col).setBackground(QBrush(UNCERTAIN))

    def _fill_certificate(self, i: int, row: dict) -> None:
        """'0.616 (2.83/255)', with the smoothed call where it differs from the prediction; "abstain" shaded like an
        uncertain call; empty without a certificate. Sorted by the radius (abstain lowest)."""
        call = row.get("certified_call")
        if call is None:
            self.setItem(i, RADIUS_COLUMN, QTableWidgetItem(""))
            return
        abstained = call == ABSTAIN
        item = self._number(None if abstained else row["certified_radius_l2"])
        if abstained:
            item.setText(ABSTAIN)
            item.setBackground(QBrush(UNCERTAIN))
        else:
            other = "" if call == row.get("predicted") else f" {call}"
            item.setText(f"{row['certified_radius_l2']:.3f}{other} ({row['certified_linf_255']:.2f}/255)")
        item.setToolTip(certificate_tip(row))
        self.setItem(i, RADIUS_COLUMN, item)

    @staticmethod
    def _number(value: float | None) -> SortItem:
        item = SortItem("—" if value is None else f"{value:.3f}")
        item.setData(SORT_ROLE, -1.0 if value is None else float(value))
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return item

    def row_at(self, table_row: int) -> dict:
        """The rows-list entry shown in ``table_row`` (after any sorting)."""
        return self.rows[self.item(table_row, 0).data(ROW_ROLE)]

    def _selection_changed(self) -> None:
        selected = self.selectionModel().selectedRows()
        self.row_selected.emit(self.row_at(selected[0].row()) if selected else None)
