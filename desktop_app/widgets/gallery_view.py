"""The report's gallery (``engine.workflows.gallery``): per model a few test images called right, called wrong and
flipped by the white-box attack, each beside its attribution map, and how many maps passed the randomisation check.
The PNGs are the run folder's (a few dozen small files, read when a run is shown); the texts are the report's."""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from engine.report.gallery import TITLES, caption, intro, sanity_line

SIDE = 112  # pixels a picture
NONE = "This run's report has no gallery (it was made before the gallery existed, or with --no-gallery)."


class GalleryView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_ = QVBoxLayout(self)
        self.pictures: list[QLabel] = []
        self.set_gallery(None, None)

    def set_gallery(self, gallery: dict | None, run_dir: Path | None) -> None:
        """Show ``gallery`` (report.json's "gallery") with the PNGs of ``run_dir``."""
        while self.layout_.count():
            item = self.layout_.takeAt(0)
            if (old := item.widget()) is not None:  # hidden and detached now: deleteLater waits for the event loop
                old.hide()
                old.setParent(None)
                old.deleteLater()
        self.pictures = []
        if not gallery:
            self.layout_.addWidget(_label(escape(NONE)))
            self.layout_.addStretch(1)
            return
        self.layout_.addWidget(_label(f"<span style='color:#444'>{escape(intro(gallery))}</span>"))
        for name, m in gallery["models"].items():
            failed = m["sanity"]["passed"] < m["sanity"]["of"]
            style = "color:#9a3412; font-weight:bold" if failed else "color:#1e4620"
            self.layout_.addWidget(_label(f"<span style='{style}'>{escape(sanity_line(name, m))}</span>"))
        for name, m in gallery["models"].items():
            self.layout_.addWidget(_label(f"<h3>Model {escape(name)}</h3>"))
            for category, title in TITLES.items():
                items = [it for it in m["items"] if it["category"] == category]
                self.layout_.addWidget(_label(f"<b>{escape(title)}</b>{'' if items else ': none found'}"))
                if items:
                    self.layout_.addWidget(self._grid(items, run_dir))
        self.layout_.addStretch(1)

    def _grid(self, items: list[dict], run_dir: Path | None) -> QWidget:
        box = QWidget()
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        for row, it in enumerate(items):
            for col, (kind, name) in enumerate(it["files"].items()):
                picture = QLabel()
                picture.setFixedSize(SIDE, SIDE)
                picture.setToolTip(f"{kind}: {it['name']}")
                pixmap = QPixmap(str(Path(run_dir or ".") / name))
                if pixmap.isNull():
                    picture.setText("missing")
                else:
                    picture.setPixmap(pixmap.scaled(SIDE, SIDE, Qt.AspectRatioMode.KeepAspectRatio))
                self.pictures.append(picture)
                grid.addWidget(picture, row, col)
            grid.addWidget(_label(escape(caption(it))), row, 4)
        grid.setColumnStretch(4, 1)
        return box

    def shown_pictures(self) -> int:
        """How many pictures were found and shown."""
        return sum(1 for p in self.pictures if p.pixmap() is not None and not p.pixmap().isNull())


def _label(html: str) -> QLabel:
    label = QLabel(html)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    return label
