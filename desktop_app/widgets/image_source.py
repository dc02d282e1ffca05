"""Where a stress test takes its images from: a choice (one image, a labelled folder, the run's test split),
a Choose… button for the ones picked from disk, and a line saying what is chosen. Shared by the white-box
and black-box forms of the Stress-test page."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class ImageSource(QWidget):
    def __init__(self, sources: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        """``sources``: (text, key) pairs; key 'split' is the open run's test split (set, not chosen)."""
        super().__init__(parent)
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.combo = QComboBox()
        for text, key in sources:
            self.combo.addItem(text, key)
        self.choose_button = QPushButton("Choose…")
        row.addWidget(self.combo, 1)
        row.addWidget(self.choose_button)
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        v.addLayout(row)
        v.addWidget(self.label)
        self.paths: dict[str, Path | None] = {key: None for _, key in sources}
        self.combo.currentIndexChanged.connect(self.update_label)
        self.update_label()

    def source(self) -> tuple[str, Path | None]:
        key = self.combo.currentData()
        return key, self.paths[key]

    def set_source(self, key: str, path: str | Path | None = None) -> None:
        if key != "split" or path is not None:
            self.paths[key] = Path(path) if path is not None else None
        self.combo.setCurrentIndex(self.combo.findData(key))
        self.update_label()

    def update_label(self) -> None:
        key, path = self.source()
        self.choose_button.setEnabled(key != "split")
        if key == "split":
            text = f"Test split of {path}" if path else "Open a run folder first (File ▸ Open run folder…)"
        else:
            text = str(path) if path else "Nothing chosen yet: click Choose…"
        self.label.setText(text)


def images_group(form: QWidget, sources: list[tuple[str, str]]) -> QWidget:
    """The "Images" group of a stress form: an ``ImageSource`` set on ``form.image_source``, with the parts
    pages and tests reach directly (source_combo, choose_button, source_label, paths) as ``form`` attributes."""
    box = QGroupBox("Images")
    QVBoxLayout(box).addWidget(src := ImageSource(sources))
    form.image_source = src
    form.source_combo, form.choose_button, form.source_label, form.paths = (
        src.combo,
        src.choose_button,
        src.label,
        src.paths,
    )
    return box
