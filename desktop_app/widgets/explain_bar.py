"""The controls of an attribution map: the method, Show map (on: every selected image is explained), the map's
opacity, Export PNG, and a line that says what the map shows and whether it passed the randomisation check."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from engine.core.catalog import EXPLAIN_INFO

FAILED_STYLE = "background:#fde2e1; border:1px solid #d9534f; padding:3px; color:#6b1a17;"
PASSED_STYLE = "color:#1e4620; padding:3px;"


class ExplainBar(QWidget):
    method_changed = Signal(str)
    opacity_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.method = QComboBox()
        self.method.setToolTip("How the map is made; occlusion runs on the ONNX file itself (no PyTorch)")
        for name, info in EXPLAIN_INFO.items():
            self.method.addItem(info.label, name)
            self.method.setItemData(self.method.count() - 1, info.shows, Qt.ItemDataRole.ToolTipRole)
        self.show_button = QPushButton("Show map")
        self.show_button.setCheckable(True)
        self.show_button.setToolTip("Explain the selected image's call: where the evidence for it lies (on a worker)")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.setFixedWidth(90)
        self.opacity.setToolTip("Opacity of the map over the image")
        self.export_button = QPushButton("Export PNG…")
        self.export_button.setEnabled(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Map:"))
        row.addWidget(self.method)
        row.addWidget(self.show_button)
        row.addWidget(QLabel("opacity"))
        row.addWidget(self.opacity)
        row.addWidget(self.export_button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self.method.currentIndexChanged.connect(self._method_moved)
        self.opacity.valueChanged.connect(self._opacity_moved)

    def _method_moved(self, _index: int) -> None:
        self.method_changed.emit(self.current_method())

    def _opacity_moved(self, value: int) -> None:
        self.opacity_changed.emit(value / 100)

    def current_method(self) -> str:
        return self.method.currentData()

    def opacity_value(self) -> float:
        return self.opacity.value() / 100

    def allow(self, methods: dict[str, str]) -> None:
        """Enable only ``methods`` (name -> why it is available or not: '' for available, else the reason)."""
        for i in range(self.method.count()):
            name = self.method.itemData(i)
            reason = methods.get(name, "not available")
            self.method.model().item(i).setEnabled(not reason)
            self.method.setItemData(i, reason or EXPLAIN_INFO[name].shows, Qt.ItemDataRole.ToolTipRole)
        if not self.method.model().item(self.method.currentIndex()).isEnabled():
            enabled = [i for i in range(self.method.count()) if self.method.model().item(i).isEnabled()]
            if enabled:
                self.method.setCurrentIndex(enabled[0])

    def set_status(self, html: str, failed: bool = False) -> None:
        self.status.setText(html)
        self.status.setStyleSheet(FAILED_STYLE if failed else PASSED_STYLE if html else "")
