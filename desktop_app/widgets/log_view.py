"""A read-only view of the engine's log records while a task runs.

Records are formatted by a ``logging.Handler`` on whichever thread logs them (usually a worker) and reach
the view through a Qt signal, so the text widget is only touched on the UI thread.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QPlainTextEdit, QWidget

MAX_LINES = 3000


class _Bridge(QObject):
    line = Signal(str)


class SignalLogHandler(logging.Handler):
    """Forwards formatted records through ``bridge.line`` (thread-safe: the signal is queued to the view)."""

    def __init__(self, bridge: _Bridge, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.bridge = bridge
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 (logging must never break the caller)
            self.handleError(record)
            return
        try:
            self.bridge.line.emit(text)
        except RuntimeError:  # the view was closed while a worker still logged: drop the line
            pass


class LogView(QPlainTextEdit):
    """Keeps the last ``MAX_LINES`` lines; ``handler()`` gives the logging handler that feeds it."""

    def __init__(self, parent: QWidget | None = None, max_lines: int = MAX_LINES) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(max_lines)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setPlaceholderText("The engine's log appears here while training runs (also saved as log.txt).")
        self._bridge = _Bridge(self)
        self._bridge.line.connect(self.append_line)
        self._handler = SignalLogHandler(self._bridge)

    def handler(self) -> logging.Handler:
        """The handler to attach to a logger while a task runs (see ``attached``)."""
        return self._handler

    def append_line(self, text: str) -> None:
        at_end = self.verticalScrollBar().value() >= self.verticalScrollBar().maximum() - 2
        self.appendPlainText(text)
        if at_end:  # follow new lines unless the user scrolled up to read
            self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())

    def lines(self) -> list[str]:
        return self.toPlainText().splitlines()
