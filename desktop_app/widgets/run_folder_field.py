"""Where a training run goes: a folder field with Browse / New folder, what the folder holds now, and the
two explicit choices for a folder that already holds a run (resume it, or overwrite it).

What the folder holds is the engine's answer (``engine.runs.folder.RunFolder.state``; the engine checks again
on the worker); this widget says what to do in the words of this page rather than the CLI's options.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import QCheckBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from desktop_app.settings import remember_dir
from engine import api
from engine.core.config import ExperimentConfig
from engine.core.errors import RunFolderError

SETTINGS_KEY = "train_run"
RESUME_TEXT = "Resume if the folder holds this run"
OVERWRITE_TEXT = "Overwrite: delete the run in this folder and start again"


def default_parent(settings: QSettings) -> Path:
    """The folder last used for training runs, else "HistoGuard runs" in the home folder."""
    saved = settings.value(f"last_dir/{SETTINGS_KEY}", "", str)
    return Path(saved) if saved and Path(saved).is_dir() else Path.home() / "HistoGuard runs"


def new_run_path(settings: QSettings) -> Path:
    return default_parent(settings) / time.strftime("run-%Y%m%d-%H%M%S")


DESCRIPTIONS = {
    "new": "A new run will be written to this folder.",
    "file": "This is a file, not a folder: choose a folder for the run.",
    "foreign": "This folder is not empty and is not a HistoGuard run folder: choose a new or empty folder.",
    "locked": "A HistoGuard process is writing a run in this folder now (a training here, another window or a "
    "command): choose another folder.",
    "resumable": "This folder holds an unfinished run with these settings: it can be resumed.",
    "finished": "This folder holds a finished run with these settings: press New folder to train again.",
    "other": "This folder holds a run with other settings: choose a new folder, or tick Overwrite.",
}


class RunFolderField(QWidget):
    """``plan(cfg)`` returns the engine's (resume, force) for the chosen folder, or raises RunFolderError."""

    changed = Signal()

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.edit = QLineEdit(str(new_run_path(settings)))
        self.browse_button = QPushButton("Browse…")
        self.new_button = QPushButton("New folder")
        self.new_button.setToolTip("A new timestamped folder beside the last one")
        self.state_label = QLabel()
        self.state_label.setWordWrap(True)
        self.resume_box = QCheckBox(RESUME_TEXT)
        self.resume_box.setChecked(True)
        self.overwrite_box = QCheckBox(OVERWRITE_TEXT)
        row = QHBoxLayout()
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse_button)
        row.addWidget(self.new_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.state_label)
        layout.addWidget(self.resume_box)
        layout.addWidget(self.overwrite_box)
        self.edit.textChanged.connect(self._changed)
        self.resume_box.toggled.connect(self._changed)
        self.overwrite_box.toggled.connect(self._changed)
        self.browse_button.clicked.connect(self._browse)
        self.new_button.clicked.connect(self.new_folder)
        self.state = "new"

    def _changed(self, *_args) -> None:
        self.changed.emit()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Run folder", str(default_parent(self.settings)))
        if folder:
            self.edit.setText(folder)

    def new_folder(self) -> None:
        self.overwrite_box.setChecked(False)
        self.edit.setText(str(new_run_path(self.settings)))

    def path(self) -> Path:
        return Path(self.edit.text().strip()).expanduser()

    def set_path(self, path: str | Path) -> None:
        self.edit.setText(str(path))

    def remember(self) -> None:
        """Remember the chosen folder's parent as the place for the next new run."""
        parent = self.path().parent
        if parent.is_dir():
            remember_dir(self.settings, SETTINGS_KEY, parent)

    def refresh(self, cfg: ExperimentConfig | None) -> str:
        """Look at the folder again (against ``cfg``, the settings Start would use) and say what it holds."""
        self.state = api.run_folder_state(self.path(), cfg) if self.edit.text().strip() else "file"
        text = DESCRIPTIONS[self.state] if self.edit.text().strip() else "Give a folder for the run."
        self.state_label.setText(text)
        has_run = self.state in ("resumable", "finished", "other")
        self.resume_box.setVisible(self.state == "resumable")
        self.overwrite_box.setVisible(has_run)
        return self.state

    def will_resume(self) -> bool:
        return self.state == "resumable" and self.resume_box.isChecked() and not self.overwrite_box.isChecked()

    def plan(self, cfg: ExperimentConfig) -> tuple[bool, bool]:
        """(resume, force) for ``run_experiment``; RunFolderError says what to do when neither fits."""
        path = self.path()
        state = self.refresh(cfg)
        if not self.edit.text().strip():
            raise RunFolderError("no run folder given: type a folder or press New folder")
        if state == "new":
            return False, False
        if state in ("file", "foreign", "locked"):
            raise RunFolderError(f"{path}: {DESCRIPTIONS[state]}")
        if self.overwrite_box.isChecked():
            return False, True
        if state == "resumable" and self.resume_box.isChecked():
            return True, False
        advice = {
            "resumable": f"tick “{RESUME_TEXT}” to continue it",
            "finished": "press New folder to train into a new folder",
            "other": "choose a new folder (New folder), or open that run with File › Open run folder to see it",
        }[state]
        raise RunFolderError(
            f"{path} already holds a {'finished ' if state == 'finished' else ''}run"
            f"{' with other settings' if state == 'other' else ''}; {advice}, or tick “Overwrite” to replace it"
        )
