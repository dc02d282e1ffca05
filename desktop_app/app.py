"""QApplication set-up, logging to a file and the main window with what it needs (state, tasks, errors).

``desktop_app.launcher`` starts it; ``desktop_app.tools`` (screenshots, self-test) build it from here."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from desktop_app.logfile import PrivateFormatter
from engine import __version__

log = logging.getLogger(__name__)


def log_dir() -> Path:
    env = os.environ.get("HISTOGUARD_LOG_DIR")
    base = Path(env) if env else Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base if env else base / "histoguard"


def setup_logging() -> Path | None:
    """Log to ``histoguard.log`` in the user's state folder, with image paths and names left out (the run
    folder's ``log.txt`` has them); return the file's path."""
    root = logging.getLogger()
    if any(getattr(h, "_histoguard", False) for h in root.handlers):
        return next(Path(h.baseFilename) for h in root.handlers if getattr(h, "_histoguard", False))
    root.setLevel(logging.INFO)
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(folder / "histoguard.log", encoding="utf-8")
    except OSError:
        return None  # a read-only home: log to stderr only
    handler._histoguard = True  # type: ignore[attr-defined]
    # this file outlives every run folder: it gets no image path or name (desktop_app/logfile.py)
    handler.setFormatter(PrivateFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return Path(handler.baseFilename)


def resource_path(name: str) -> Path | None:
    """A file of ``resources/``: beside the packages in a source install, in the bundle when frozen."""
    for base in (getattr(sys, "_MEIPASS", None), Path(__file__).resolve().parents[1]):
        if base and (Path(base) / "resources" / name).is_file():
            return Path(base) / "resources" / name
    return None


def get_app() -> QApplication:
    from desktop_app.settings import keep_file_dialog_history_private

    keep_file_dialog_history_private()  # before any file dialog reads or writes Qt's QtProject.conf
    app = QApplication.instance() or QApplication(sys.argv[:1])
    icon = resource_path("histoguard.png")
    if icon is not None:
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon)))
    app.setApplicationName("HistoGuard")
    app.setDesktopFileName("histoguard")  # the menu entry (resources/histoguard.desktop) owns the window
    app.setApplicationVersion(__version__)
    app.setOrganizationName("HistoGuard")
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="w", foreground="k")
    return app


def build_window(settings=None):
    """The main window with its state, task runner and error reporter (``settings``: a QSettings)."""
    from desktop_app.context import AppContext
    from desktop_app.errors import ErrorReporter
    from desktop_app.main_window import MainWindow
    from desktop_app.settings import make_settings
    from desktop_app.state import AppState
    from desktop_app.workers import TaskRunner

    state = AppState()
    log_file = setup_logging()
    ctx = AppContext(
        state, TaskRunner(), ErrorReporter(None, str(log_file) if log_file else None), settings or make_settings()
    )
    window = MainWindow(ctx)
    state.setParent(window)
    ctx.tasks.setParent(window)
    ctx.errors.setParent(window)
    return window
