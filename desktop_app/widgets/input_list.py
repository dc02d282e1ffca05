"""The images and folders chosen for prediction (added by dialogs or dropped on the page)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, Qt
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

IMAGE_FILTER = "Slide images (*.png *.jpg *.jpeg *.tif *.tiff *.PNG *.JPG *.JPEG *.TIF *.TIFF);;All files (*)"


def is_image_file(path: Path) -> bool:
    from engine.data.discover import IMAGE_SUFFIXES  # the suffixes the engine's prediction accepts

    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def dropped_paths(mime: QMimeData) -> list[Path]:
    """Local folders and image files among ``mime``'s URLs (other files and remote URLs are left out)."""
    if not mime.hasUrls():
        return []
    paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
    return [p for p in paths if p.is_dir() or is_image_file(p)]


class InputList(QListWidget):
    """Paths in the order added, without duplicates; folders are searched recursively at prediction time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSelectionMode(QListWidget.SelectionMode.NoSelection)
        self.setMinimumHeight(90)

    def add_paths(self, paths: list[Path]) -> int:
        """Add the paths not already listed; return how many were new."""
        known = set(self.paths())
        new = [Path(p) for p in paths if Path(p) not in known]
        for path in new:
            text = f"{path.name or path}/  (folder and its subfolders)" if path.is_dir() else path.name
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            item.setToolTip(str(path))
            self.addItem(item)
            known.add(path)
        return len(new)

    def paths(self) -> list[Path]:
        return [Path(self.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.count())]
