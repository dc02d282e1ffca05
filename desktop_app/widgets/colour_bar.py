"""The overlay's colour key: the heatmap ramp (``engine.slides.export.colourise``) with labelled ends.

The ramp is drawn from the same function that colours the overlay and the exported PNG, so the key can
never disagree with the picture. Labels say what each end means in words ("0 benign", "1 malignant").
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop_app.widgets.slide_view import rgba_pixmap
from engine.slides.export import colourise

BAR_HEIGHT = 12


class ColourBar(QWidget):
    """``set_labels(left, right, middle="")``: the texts under the ramp's 0 end, 1 end and middle."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        ramp = colourise(np.linspace(0, 1, 256, dtype=np.float32)[None, :])
        self._ramp = rgba_pixmap(ramp)
        self.labels = ("", "", "")
        self.setMinimumWidth(240)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(BAR_HEIGHT + self.fontMetrics().height() + 4)

    def set_labels(self, left: str, right: str, middle: str = "") -> None:
        self.labels = (left, middle, right)
        self.setToolTip(" … ".join(t for t in self.labels if t))
        self.update()

    def colour_at(self, fraction: float) -> QColor:
        """The ramp's colour at ``fraction`` of its width (0 left, 1 right)."""
        image = self._ramp.toImage()
        return image.pixelColor(round(min(max(fraction, 0.0), 1.0) * (image.width() - 1)), 0)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        bar = QRect(0, 0, self.width(), BAR_HEIGHT)
        painter.drawPixmap(bar, self._ramp)
        painter.setPen(QColor("#7a7a7a"))
        painter.drawRect(bar.adjusted(0, 0, -1, -1))
        painter.setPen(self.palette().windowText().color())
        text = QRect(0, BAR_HEIGHT + 2, self.width(), self.height() - BAR_HEIGHT - 2)
        left, middle, right = self.labels
        painter.drawText(text, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, left)
        painter.drawText(text, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, middle)
        painter.drawText(text, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, right)
        painter.end()
