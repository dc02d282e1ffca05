"""The images whose prediction an attack flipped: one row per (image, model), clickable.

Each row keeps its flip dict (engine.api.stress_test_set's "flips"), so sorting never mixes rows up;
selecting a row emits ``flip_chosen(flip)``.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

COLUMNS = ("Image", "True label", "Model", "Prediction", "p")


class FlipsTable(QTableWidget):
    flip_chosen = Signal(object)  # the flip dict of the selected row

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.verticalHeader().setVisible(False)
        self.setAlternatingRowColors(True)
        self.setTextElideMode(Qt.TextElideMode.ElideLeft)  # file names differ at their end
        self.setWordWrap(False)
        self.horizontalHeaderItem(3).setToolTip("Prediction on the clean image → on the adversarial image")
        self.horizontalHeaderItem(4).setToolTip("Probability of each prediction: clean → adversarial")
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.itemSelectionChanged.connect(self._selection_changed)

    def set_flips(self, flips: list[dict]) -> None:
        self.setSortingEnabled(False)
        self.clearContents()
        self.setRowCount(len(flips))
        for row, flip in enumerate(flips):
            for col, text in enumerate(row_texts(flip)):
                item = QTableWidgetItem(text)
                if col == 0:
                    item.setData(Qt.ItemDataRole.UserRole, flip)
                    item.setToolTip(flip["path"])
                self.setItem(row, col, item)
        self.setSortingEnabled(True)

    def flip_at(self, row: int) -> dict:
        return self.item(row, 0).data(Qt.ItemDataRole.UserRole)

    def _selection_changed(self) -> None:
        rows = {i.row() for i in self.selectedIndexes()}
        if len(rows) == 1:
            self.flip_chosen.emit(self.flip_at(rows.pop()))


def row_texts(flip: dict) -> tuple[str, ...]:
    return (
        Path(flip["path"]).name,
        flip["label"],
        flip["model"],
        f"{flip['clean_pred']} → {flip['adv_pred']}",
        f"{flip['p_clean']:.2f} → {flip['p_adv']:.2f}",
    )
