"""An image from a numpy array (H, W, 3 uint8) or a file, scaled to fit, with a caption below."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget


def array_to_pixmap(rgb: np.ndarray) -> QPixmap:
    """A QPixmap of an RGB uint8 array (copied, so the array may be freed)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got shape {rgb.shape}")
    h, w, _ = rgb.shape
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


class ImageView(QWidget):
    """Shows one image scaled to fit (keeping its aspect ratio, nearest-neighbour when enlarging small
    model inputs so pixels stay visible) with a caption."""

    def __init__(self, caption: str = "", min_size: int = 160, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(min_size, min_size)
        self.picture.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.picture.setStyleSheet("background: #f3f3f3; border: 1px solid #d0d0d0;")
        self.caption = QLabel(caption)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.caption)
        self._pixmap: QPixmap | None = None

    def set_array(self, rgb: np.ndarray, caption: str | None = None) -> None:
        self.set_pixmap(array_to_pixmap(rgb), caption)

    def set_pixmap(self, pixmap: QPixmap, caption: str | None = None) -> None:
        self._pixmap = pixmap
        if caption is not None and caption != self.caption.text():
            self.caption.setText(caption)
            self.layout().activate()  # the picture's room changes with the caption's lines: scale to the new room
        self._rescale()

    def clear(self, caption: str = "") -> None:
        self._pixmap = None
        self.picture.clear()
        self.caption.setText(caption)

    def has_image(self) -> bool:
        return self._pixmap is not None

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is None:
            return
        size = self.picture.contentsRect().size()
        small = self._pixmap.width() < size.width() / 2
        mode = Qt.TransformationMode.FastTransformation if small else Qt.TransformationMode.SmoothTransformation
        self.picture.setPixmap(self._pixmap.scaled(size, Qt.AspectRatioMode.KeepAspectRatio, mode))
