"""Persistent user settings (window size, last folders) in QSettings.

``HISTOGUARD_SETTINGS=/path/file.ini`` points the app at another file, so tests and screenshot runs never
read or change the user's own settings.

Privacy: folders of the user's images (the dataset, the images to diagnose or stress-test) are remembered
for this session only and never written to the settings file, since their names can carry patient ids;
run, model and export folders are kept. Qt's own file dialog would write every folder it visits into
``~/.config/QtProject.conf``; ``keep_file_dialog_history_private`` stops that.
"""

from __future__ import annotations

import os
import sys
import weakref
from pathlib import Path

from PySide6.QtCore import QSettings

SETTINGS_ENV = "HISTOGUARD_SETTINGS"
SCHEMA_VERSION = 1
PRIVATE_KEYS = frozenset({"dataset", "diagnose", "stress"})  # folders of patient images: this session only
_session: weakref.WeakKeyDictionary[QSettings, dict[str, str]] = weakref.WeakKeyDictionary()


def make_settings() -> QSettings:
    path = os.environ.get(SETTINGS_ENV)
    if path:
        settings = QSettings(path, QSettings.Format.IniFormat)
    else:
        settings = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "HistoGuard", "HistoGuard")
    if settings.value("schema_version", SCHEMA_VERSION, int) != SCHEMA_VERSION:
        settings.clear()  # written by an incompatible version: start fresh rather than misread it
    settings.setValue("schema_version", SCHEMA_VERSION)
    for key in PRIVATE_KEYS:  # written by versions that still kept them
        settings.remove(f"last_dir/{key}")
    return settings


def last_dir(settings: QSettings, key: str) -> str:
    """The folder last used for ``key`` (e.g. "dataset"), or the home folder."""
    if key in PRIVATE_KEYS:
        value = _session.get(settings, {}).get(key, "")
    else:
        value = settings.value(f"last_dir/{key}", "", str)
    return value if value and Path(value).exists() else str(Path.home())


def remember_dir(settings: QSettings, key: str, path: str | os.PathLike) -> None:
    p = Path(path)
    folder = str(p if p.is_dir() else p.parent)
    if key in PRIVATE_KEYS:
        _session.setdefault(settings, {})[key] = folder
    else:
        settings.setValue(f"last_dir/{key}", folder)


def keep_file_dialog_history_private() -> None:
    """Point Qt's own user settings (``QtProject.conf``: the file dialog's history and last folder) at a
    place that cannot be created, so they are never written. Our settings use IniFormat, which this leaves
    alone. On Windows and macOS Qt keeps these in the registry / preferences, where this has no effect."""
    if sys.platform.startswith(("win", "darwin")):
        return
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, os.devnull + "/histoguard-no-settings")
