"""One path by which every error reaches the user: a dialog with a readable message and the details.

Engine errors (``EngineError``) already say what is wrong and what to do; anything else is a bug, shown
with its type and the log file's location. Uncaught exceptions in slots come here via ``sys.excepthook``.
"""

from __future__ import annotations

import logging
import sys
import traceback

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from engine.core.edition import is_missing_torch, needs_full_edition
from engine.core.errors import EngineError

log = logging.getLogger(__name__)


def user_message(exc: BaseException) -> str:
    if isinstance(exc, EngineError):
        return str(exc)
    if is_missing_torch(exc):
        return needs_full_edition("This")
    if isinstance(exc, (OSError, MemoryError)):
        return f"{type(exc).__name__}: {exc}"
    return f"Unexpected error ({type(exc).__name__}: {exc}). This is a bug in HistoGuard; the details are below."


class ErrorReporter(QObject):
    """Shows errors in a non-blocking message box and keeps the last few for the log view and tests."""

    error_shown = Signal(str, str)  # title, message

    def __init__(self, parent_widget: QWidget | None = None, log_file: str | None = None) -> None:
        super().__init__(parent_widget)
        self.parent_widget, self.log_file = parent_widget, log_file
        self.history: list[tuple[str, str]] = []
        self.dialog: QMessageBox | None = None

    def show(self, title: str, exc: BaseException, details: str = "") -> None:
        message = user_message(exc)
        details = details or "".join(traceback.format_exception(exc))
        if self.log_file:
            details += f"\n\nFull log: {self.log_file}"
        log.error("%s: %s", title, message)
        self.history.append((title, message))
        box = QMessageBox(QMessageBox.Icon.Critical, f"HistoGuard - {title}", message, parent=self.parent_widget)
        box.setDetailedText(details)
        box.setObjectName("errorDialog")
        box.open()  # window-modal but non-blocking: the event loop (and running workers) go on
        self.dialog = box
        self.error_shown.emit(title, message)

    def install_excepthook(self) -> None:
        previous = sys.excepthook

        def hook(exc_type, exc, tb):
            if issubclass(exc_type, KeyboardInterrupt):
                previous(exc_type, exc, tb)
                return
            self.show("Error", exc, "".join(traceback.format_exception(exc_type, exc, tb)))

        sys.excepthook = hook
