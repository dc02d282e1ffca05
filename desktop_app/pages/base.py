"""Base class of the main window's pages."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from desktop_app.context import AppContext
from desktop_app.workers import Task


class Page(QWidget):
    """A page of the main window. Subclasses set ``title`` (sidebar entry) and build their widgets."""

    title = "Page"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setObjectName(f"page_{type(self).__name__}")

    def start_task(self, name: str, fn: Callable, *args, **kwargs) -> Task:
        """Run an engine call on the worker pool. Failures go to the one error dialog; the caller
        connects ``finished`` / ``cancelled`` / ``progress`` to bound methods (never lambdas capturing
        widgets: a bound method of a QObject is delivered on the UI thread)."""
        task = self.ctx.tasks.start(name, fn, *args, **kwargs)
        task.failed.connect(self._task_failed)
        return task

    def _task_failed(self, exc: BaseException, details: str) -> None:
        task = self.sender()
        self.ctx.errors.show(task.name if task is not None else "Error", exc, details)


def heading(text: str, hint: str = "") -> QWidget:
    """A page title with an optional one-line explanation below it."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 4)
    title = QLabel(f"<h2 style='margin:0'>{text}</h2>")
    layout.addWidget(title)
    if hint:
        sub = QLabel(hint)
        sub.setWordWrap(True)
        sub.setStyleSheet("color: #505050;")
        layout.addWidget(sub)
    return box
