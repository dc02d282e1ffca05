"""The selected slide tile's attribution map, laid over the tile as the model saw it: Show map (on: every selected tile
is explained, on a worker), the map's opacity, and a line that says which map it is and whether it passed the
randomisation check. Drawing only: the map and its colours arrive computed (``set_result``)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from desktop_app.widgets.explain_bar import FAILED_STYLE, PASSED_STYLE
from desktop_app.widgets.map_view import MapView

CAPTION = "Attribution map"


class TileMap(QWidget):
    def __init__(self, min_size: int = 120, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.show_button = QPushButton("Show map")
        self.show_button.setCheckable(True)
        self.show_button.setToolTip(
            "Where the evidence for the tile's call lies: occlusion on the ONNX file, or Grad-CAM on the checkpoint "
            "beside it (full edition); computed on a worker for every tile you select"
        )
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.setFixedWidth(90)
        self.opacity.setToolTip("Opacity of the map over the tile")
        self.opacity.valueChanged.connect(self._opacity_moved)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.show_button)
        row.addWidget(QLabel("opacity"))
        row.addWidget(self.opacity)
        row.addStretch(1)
        self.view = MapView(CAPTION, min_size)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.status)
        self.show_button.toggled.connect(self._toggled)
        self.clear()

    def clear(self, text: str = "") -> None:
        self.result: dict | None = None
        self.view.clear(CAPTION)
        self.view.setVisible(self.show_button.isChecked())
        self.set_status(text)

    def set_result(self, r: dict, caption: str, status: str, failed: bool = False) -> None:
        """``r``: ``engine.api.explain_rgb``'s result with "heat" (``engine.api.heat_rgba``), drawn over the tile at
        the slider's opacity."""
        self.result = r
        self.view.setVisible(True)
        self.view.set_layers(r["image"], r["heat"], self.opacity_value(), caption)
        self.set_status(status, failed)

    def set_status(self, html: str, failed: bool = False) -> None:
        self.status.setText(html)
        self.status.setStyleSheet(FAILED_STYLE if failed else PASSED_STYLE if html else "")

    def opacity_value(self) -> float:
        return self.opacity.value() / 100

    def has_map(self) -> bool:
        return self.view.has_map()

    def _opacity_moved(self, value: int) -> None:
        self.view.set_opacity(value / 100)

    def _toggled(self, on: bool) -> None:
        self.show_button.setText("Hide map" if on else "Show map")
        if not on:
            self.clear()
