"""A task's progress: stage name, a progress bar with rate and ETA, and a Cancel button."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from desktop_app.workers import Task
from engine.core.progress import Progress


def format_eta(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}:{seconds % 60:02d}"


class ProgressPanel(QWidget):
    """Follows one task at a time: ``follow(task)``; Cancel asks the task to stop (within one batch)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stage = QLabel("Idle")
        self.stage.setMinimumWidth(220)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.eta = QLabel("")
        self.eta.setMinimumWidth(150)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w, stretch in ((self.stage, 0), (self.bar, 1), (self.eta, 0), (self.cancel_button, 0)):
            layout.addWidget(w, stretch)
        self.task: Task | None = None
        self._stage_name, self._stage_start, self._start_done = "", 0.0, 0

    def follow(self, task: Task, text: str = "Starting…") -> None:
        self.task = task
        self.stage.setText(text)
        self.bar.setRange(0, 0)  # busy until the first progress event
        self.eta.setText("")
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        task.progress.connect(self.on_progress)
        task.finished.connect(self._finished)
        task.cancelled.connect(self._cancelled)
        task.failed.connect(self._failed)

    def on_progress(self, p: Progress) -> None:
        now = time.monotonic()
        if p.stage != self._stage_name or p.done < self._start_done:
            self._stage_name, self._stage_start, self._start_done = p.stage, now, p.done
        self.stage.setText(p.stage[:1].upper() + p.stage[1:])
        self.bar.setRange(0, max(p.total, 1))
        self.bar.setValue(min(p.done, p.total))
        self.bar.setFormat(f"%v / %m {p.unit}")
        self.eta.setText(self._eta_text(p, now))

    def _eta_text(self, p: Progress, now: float) -> str:
        elapsed, done = now - self._stage_start, p.done - self._start_done
        if done <= 0 or elapsed < 0.5:
            return ""
        rate = done / elapsed
        left = (p.total - p.done) / rate
        return f"{rate:.1f} {p.unit}/s, ETA {format_eta(left)}"

    def cancel(self) -> None:
        if self.task is not None and self.task.running:
            self.task.cancel()
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Cancelling…")

    def _done(self, text: str) -> None:
        self.stage.setText(text)
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if text == "Done" else 0)
        self.bar.setFormat("")
        self.eta.setText("")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        self.task = None

    def _finished(self, _result) -> None:
        self._done("Done")

    def _cancelled(self) -> None:
        self._done("Cancelled")

    def _failed(self, _exc, _details) -> None:
        self._done("Failed (see the error message)")
