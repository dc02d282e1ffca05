"""What every page gets: the state, the task runner, the error reporter and the settings."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSettings

from desktop_app.errors import ErrorReporter
from desktop_app.state import AppState
from desktop_app.workers import TaskRunner


@dataclass
class AppContext:
    state: AppState
    tasks: TaskRunner
    errors: ErrorReporter
    settings: QSettings
