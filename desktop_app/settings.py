"""Persistent user settings (window size, last folders) in QSettings.

``HISTOGUARD_SETTINGS=/path/file.ini`` points the app at another file, so tests and screenshot runs never
read or change the user's own settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

SETTINGS_ENV = "HISTOGUARD_SETTINGS"
SCHEMA_VERSION = 1


def make_settings() -> QSettings:
    path = os.environ.get(SETTINGS_ENV)
    if path:
        settings = QSettings(path, QSettings.Format.IniFormat)
    else:
        settings = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "HistoGuard", "HistoGuard")
    if settings.value("schema_version", SCHEMA_VERSION, int) != SCHEMA_VERSION:
        settings.clear()  # written by an incompatible version: start fresh rather than misread it
    settings.setValue("schema_version", SCHEMA_VERSION)
    return settings


def last_dir(settings: QSettings, key: str) -> str:
    """The folder last used for ``key`` (e.g. "dataset"), or the home folder."""
    value = settings.value(f"last_dir/{key}", "", str)
    return value if value and Path(value).exists() else str(Path.home())


def remember_dir(settings: QSettings, key: str, path: str | os.PathLike) -> None:
    p = Path(path)
    settings.setValue(f"last_dir/{key}", str(p if p.is_dir() else p.parent))
