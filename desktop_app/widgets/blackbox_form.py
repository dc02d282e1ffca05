"""The Stress-test page's black-box settings: an ONNX file, labelled images, eps (k/255), the query budget.

The black-box (Square) attack only queries the exported ONNX file through onnxruntime: no gradients and no
checkpoint, what anyone holding the deployed file could do. Only widgets and their values here; the page
opens dialogs and starts the work.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from desktop_app.widgets.image_source import images_group
from desktop_app.widgets.stress_form import note, spin

SOURCES = (("The run's test split", "split"), ("A folder of labelled images", "folder"))


class BlackboxForm(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._model_box())
        layout.addWidget(images_group(self, SOURCES))
        layout.addWidget(self._attack_box())
        self.run_button = QPushButton("Run black-box attack")
        self.run_button.setMinimumHeight(34)
        layout.addWidget(self.run_button)
        layout.addStretch(1)

    # --- building ---------------------------------------------------------------------------------
    def _model_box(self) -> QGroupBox:
        box = QGroupBox("Model (ONNX file)")
        v = QVBoxLayout(box)
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.open_onnx_button = QPushButton("Open ONNX…")
        v.addWidget(self.model_combo)
        v.addWidget(self.open_onnx_button)
        v.addWidget(note("Queries only: the attack sees the file's answers, never its gradients or weights."))
        return box

    def _attack_box(self) -> QGroupBox:
        box = QGroupBox("Square attack (black-box)")
        form = QFormLayout(box)
        self.eps_slider = QSlider(Qt.Orientation.Horizontal)
        self.eps_slider.setRange(1, 32)
        self.eps_slider.setPageStep(4)
        self.eps_slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.eps_slider.setTickInterval(4)
        self.eps_label = QLabel()
        self.queries_spin = spin(10, 10_000, 300, " queries")
        self.queries_spin.setSingleStep(50)
        self.queries_spin.setToolTip("Model answers the attack may ask for, per image")
        self.limit_spin = spin(1, 5_000, 100, " images")
        self.limit_spin.setToolTip("At most this many images (a fixed random subset): each costs up to the queries")
        form.addRow(self.eps_label, self.eps_slider)
        form.addRow("Query budget", self.queries_spin)
        form.addRow("Images", self.limit_spin)
        form.addRow(note("Time grows with images × queries; a few hundred queries show the trend."))
        self.eps_slider.valueChanged.connect(self._update_eps)
        self.set_eps_k(8)
        return box

    # --- values -----------------------------------------------------------------------------------
    def set_models(self, models: list[tuple[str, Path]], current: Path | None = None) -> None:
        """(label, .onnx path) entries; ``current`` (or the first) is chosen."""
        self.model_combo.clear()
        for label, path in models:
            self.model_combo.addItem(label, str(path))
            self.model_combo.setItemData(self.model_combo.count() - 1, str(path), Qt.ItemDataRole.ToolTipRole)
        if current is not None:
            self.set_model(current)

    def set_model(self, path: str | Path) -> None:
        index = self.model_combo.findData(str(path))
        if index < 0:
            self.model_combo.addItem(Path(path).name, str(path))
            index = self.model_combo.count() - 1
        self.model_combo.setCurrentIndex(index)

    def model(self) -> Path | None:
        data = self.model_combo.currentData()
        return Path(data) if data else None

    def source(self) -> tuple[str, Path | None]:
        return self.image_source.source()

    def set_source(self, key: str, path: str | Path | None = None) -> None:
        self.image_source.set_source(key, path)

    def eps_k(self) -> int:
        return self.eps_slider.value()

    def set_eps_k(self, k: int) -> None:
        self.eps_slider.setValue(k)
        self._update_eps()

    # --- labels -----------------------------------------------------------------------------------

    def _update_eps(self) -> None:
        self.eps_label.setText(f"eps = {self.eps_k()}/255")
