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


# how the app names the settings an engine message points to (engine.core.errors.option): its own controls,
# never a command-line flag it does not have ({value}: the value the message asks for)
GUI_OPTIONS = {
    "data": "a dataset (File › Open dataset folder…)",
    "demo": "the demo (Start page › Try the demo)",
    "force": "“Overwrite” on the Train page",
    "resume": "“Resume if the folder holds this run” on the Train page",
    "device": "“Device: {value}” on the Train page",
    "positive_class": "the positive class “{value}” on the Data page",
    "patient_regex": "a patient id pattern (the command line's --patient-regex; the app reads patient folders)",
    "magnification": "one magnification on the Data page",
    "split_file": "the run's own split (open its run folder)",
    "split_ratios": "other split shares on the Data page",
    "split_level": "“Split by: {value}” on the Data page",
    "weights": "“Start weights: {value}” on the Train page",
    "model_mpp": "the model resolution on the Slides page",
    "slide_mpp": "the slide resolution on the Slides page",
    "adversarial": "a Model C defence on the Train page",
    "adversarial_from": "the study's Model B (the Train page trains it)",
    "bootstrap_resamples": "the number of bootstrap resamples (the command line's --bootstrap; the app uses 1000)",
    "export": "the Train page (a finished run exports its models) or `histoguard export`",
    "sigma": "the sigma field beside “Certify” on the Diagnose page",
}


def user_message(exc: BaseException) -> str:
    if isinstance(exc, EngineError):
        return exc.render(GUI_OPTIONS)
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
