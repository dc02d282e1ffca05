"""An image with an attribution map laid over it (``engine.api.heat_rgba``: coloured and as opaque as the map is
strong), the map's opacity set by the caller (a slider). Drawing only: the colours are computed by the engine on a
worker; here two pixmaps are painted one over the other."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPainter, QPixmap

from desktop_app.widgets.image_view import ImageView, array_to_pixmap


def rgba_to_pixmap(rgba: np.ndarray) -> QPixmap:
    """A QPixmap of an (H, W, 4) uint8 RGBA array (copied)."""
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    h, w, _ = rgba.shape
    return QPixmap.fromImage(QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy())


class MapView(ImageView):
    """``set_layers(image, heat, opacity, caption)`` shows ``heat`` over ``image``; ``set_opacity`` changes how much;
    ``hide_map`` goes back to the plain picture (``set_array``: kept while a map is shown); ``clear`` drops both."""

    def __init__(self, caption: str = "", min_size: int = 160, parent=None) -> None:
        super().__init__(caption, min_size, parent)
        self._plain: tuple[QPixmap, str] | None = None
        self._base: QPixmap | None = None
        self._heat: QPixmap | None = None
        self.opacity = 0.6

    def set_layers(self, image: np.ndarray, heat: np.ndarray, opacity: float, caption: str | None = None) -> None:
        if self._plain is None and self.has_image():
            self._plain = (self._pixmap, self.caption.text())
        self._base, self._heat, self.opacity = array_to_pixmap(image), rgba_to_pixmap(heat), float(opacity)
        self.set_pixmap(self._composed(), caption)

    def set_opacity(self, opacity: float) -> None:
        self.opacity = float(opacity)
        if self.has_map():
            self.set_pixmap(self._composed())

    def has_map(self) -> bool:
        return self._base is not None and self._heat is not None

    def hide_map(self) -> None:
        self._base = self._heat = None
        if self._plain is not None:
            self.set_pixmap(*self._plain)
        self._plain = None

    def set_array(self, rgb: np.ndarray, caption: str | None = None) -> None:
        if self.has_map():  # the plain picture waits until the map is hidden
            self._plain = (array_to_pixmap(rgb), self.caption.text() if caption is None else caption)
            return
        super().set_array(rgb, caption)

    def clear(self, caption: str = "") -> None:
        self._base = self._heat = self._plain = None
        super().clear(caption)

    def composed_image(self) -> QImage:
        """What is shown, at the image's own size (the map at the current opacity)."""
        return self._composed().toImage()

    def _composed(self) -> QPixmap:
        out = QPixmap(self._base)
        painter = QPainter(out)
        painter.setOpacity(self.opacity)
        painter.drawPixmap(0, 0, self._heat)
        painter.end()
        return out
