"""The stages of a study run (prepare, train A, FGSM from A, train B, evaluate, export) and their status.

Stages only move forward: the engine reports them in order, so when one starts every earlier one is done
(a resumed run skips what was finished). Status is written as a word with a symbol, never colour alone.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from engine.progress import Progress

STAGES = (
    ("prepare", "Prepare data"),
    ("train_a", "Train Model A"),
    ("fgsm", "FGSM images from A"),
    ("train_b", "Train Model B"),
    ("evaluate", "Evaluate"),
    ("export", "Export ONNX"),
)
KEYS = tuple(key for key, _ in STAGES)
SYMBOLS = {"waiting": "○", "running": "▶", "done": "✓", "cancelled": "■", "failed": "✗"}


def stage_key(stage: str) -> str | None:
    """Map an engine progress stage ("train Model A", "FGSM from A (train)", ...) to a row key."""
    s = stage.lower()
    if s.startswith("train model a"):
        return "train_a"
    if s.startswith("train model b"):
        return "train_b"
    if s.startswith("fgsm"):
        return "fgsm"
    if s.startswith("evaluate"):
        return "evaluate"
    if s.startswith("export"):
        return "export"
    if s == "done":
        return None
    return "prepare"  # discovery, demo data, decode


def _detail(p: Progress) -> str:
    if p.unit == "epochs":
        return f"epoch {p.done} of {p.total} done"
    if p.unit == "batches" and "epoch" in p.metrics:
        return f"epoch {int(p.metrics['epoch'])}: batch {p.done} of {p.total}"
    return f"{p.stage}: {p.done} of {p.total} {p.unit}"


class StageList(QTableWidget):
    """One row per stage: name, status (waiting / running / done / cancelled / failed) and a detail."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(len(STAGES), 3, parent)
        self.setHorizontalHeaderLabels(["Stage", "Status", "Detail"])
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.statuses: dict[str, str] = {}
        for row, (_key, name) in enumerate(STAGES):
            self.setItem(row, 0, QTableWidgetItem(name))
            self.setItem(row, 1, QTableWidgetItem())
            self.setItem(row, 2, QTableWidgetItem())
        self.reset()
        self.resizeRowsToContents()
        height = self.horizontalHeader().height() + sum(self.rowHeight(r) for r in range(len(STAGES))) + 4
        self.setFixedHeight(height)

    def reset(self) -> None:
        for key in KEYS:
            self.set_status(key, "waiting", "")

    def set_status(self, key: str, status: str, detail: str | None = None) -> None:
        row = KEYS.index(key)
        self.statuses[key] = status
        self.item(row, 1).setText(f"{SYMBOLS[status]} {status}")
        if detail is not None:
            self.item(row, 2).setText(detail)
            self.item(row, 2).setToolTip(detail)

    def status(self, key: str) -> str:
        return self.statuses[key]

    def current(self) -> str | None:
        """The running stage, if any."""
        return next((k for k in KEYS if self.statuses[k] == "running"), None)

    def on_progress(self, p: Progress) -> None:
        key = stage_key(p.stage)
        if key is None:
            self.set_all("done")
            return
        index = KEYS.index(key)
        if any(self.statuses[k] != "waiting" for k in KEYS[index + 1 :]):
            return  # a late event of an earlier stage
        for k in KEYS[:index]:
            if self.statuses[k] != "done":
                self.set_status(k, "done")
        self.set_status(key, "running", _detail(p))

    def set_all(self, status: str) -> None:
        for key in KEYS:
            self.set_status(key, status)

    def stop(self, status: str) -> None:
        """Mark the running stage ``cancelled`` or ``failed`` (the first waiting one if none runs yet)."""
        key = self.current() or next((k for k in KEYS if self.statuses[k] == "waiting"), None)
        if key is not None:
            self.set_status(key, status)
