"""The training settings of a study run: architecture, image size, epochs, batch size, learning rate,
FGSM eps of Model B (as k/255), starting weights and device.

The architectures are listed statically: the engine's registry imports torch, which the window must not
wait for (a test checks this list against ``engine.api.list_models()``).
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from engine.config import TrainConfig
from engine.errors import ConfigError

ARCHITECTURES = (
    ("densenet121", "DenseNet121 (the study's model)", "8.0M parameters; ImageNet weights available"),
    ("resnet18", "ResNet18 (fast on CPU)", "11.2M parameters; ImageNet weights available"),
    ("mobilenet_v3_small", "MobileNetV3-Small (fastest on CPU)", "1.5M parameters; ImageNet weights available"),
    ("small_cnn", "Small CNN (for quick tests)", "3 convolution layers; no ImageNet weights"),
)
WEIGHTS = (
    ("auto", "auto: ImageNet if in the local cache, else from scratch"),
    ("none", "none: train from scratch"),
    ("imagenet", "imagenet (local cache only)"),
    ("file", "a weights file…"),
)
DEVICES = (("auto", "auto (GPU if there is one)"), ("cpu", "cpu"), ("cuda", "cuda (NVIDIA GPU)"))


def _combo(entries) -> QComboBox:
    combo = QComboBox()
    for value, text, *tip in entries:
        combo.addItem(text, value)
        if tip:
            combo.setItemData(combo.count() - 1, tip[0], Qt.ItemDataRole.ToolTipRole)
    return combo


def _spin(low: int, high: int, step: int = 1, suffix: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setSuffix(suffix)
    return spin


def _select(combo: QComboBox, value: str) -> None:
    index = combo.findData(value)
    if index < 0:
        raise ConfigError(f"{value!r} is not one of {', '.join(combo.itemData(i) for i in range(combo.count()))}")
    combo.setCurrentIndex(index)


class TrainForm(QWidget):
    """Emits ``changed`` on every edit; ``train_config(base)`` builds the engine's TrainConfig."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.arch = _combo(ARCHITECTURES)
        self.image_size = _spin(16, 1024, 16, " px")
        self.epochs = _spin(1, 1000)
        self.batch_size = _spin(2, 4096)  # a batch of one cannot train BatchNorm layers
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(0.000001, 1.0)
        self.lr.setSingleStep(0.0005)
        self.eps_k = _spin(1, 64, 1, " / 255")
        self.eps_text = QLabel()
        self.weights = _combo(WEIGHTS)
        self.weights_file = QLineEdit()
        self.weights_file.setPlaceholderText("a .pth state dict")
        self.weights_browse = QPushButton("Browse…")
        self.device = _combo(DEVICES)
        self._layout()
        self._connect()
        self.set_from(TrainConfig(), 4 / 255)

    def _layout(self) -> None:
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Architecture", self.arch)
        form.addRow("Image size", self.image_size)
        form.addRow("Epochs (at most)", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.lr)
        eps_row = QHBoxLayout()
        eps_row.addWidget(self.eps_k)
        eps_row.addWidget(self.eps_text, 1)
        form.addRow("FGSM eps (Model B)", eps_row)
        form.addRow("Start weights", self.weights)
        file_row = QHBoxLayout()
        file_row.addWidget(self.weights_file, 1)
        file_row.addWidget(self.weights_browse)
        self.file_row_label = QLabel("Weights file")
        form.addRow(self.file_row_label, file_row)
        form.addRow("Device", self.device)

    def _connect(self) -> None:
        for spin in (self.image_size, self.epochs, self.batch_size, self.eps_k):
            spin.valueChanged.connect(self._edited)
        self.lr.valueChanged.connect(self._edited)
        for combo in (self.arch, self.weights, self.device):
            combo.currentIndexChanged.connect(self._edited)
        self.weights_file.textChanged.connect(self._edited)
        self.weights_browse.clicked.connect(self._browse_weights)

    def _edited(self, *_args) -> None:
        k = self.eps_k.value()
        self.eps_text.setText(f"eps = {k}/255 ≈ {k / 255:.4f} (pixel units)")
        file_mode = self.weights.currentData() == "file"
        for w in (self.file_row_label, self.weights_file, self.weights_browse):
            w.setVisible(file_mode)
        self.changed.emit()

    def _browse_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Start weights", "", "PyTorch weights (*.pth *.pt);;All files (*)")
        if path:
            self.weights_file.setText(path)

    # --- values in and out --------------------------------------------------------------------------
    def set_from(self, train: TrainConfig, eps: float) -> None:
        """Show ``train`` and ``eps`` (a run's or the defaults)."""
        _select(self.arch, train.arch)
        self.image_size.setValue(train.image_size)
        self.epochs.setValue(train.epochs)
        self.batch_size.setValue(train.batch_size)
        self.lr.setValue(train.lr)
        self.eps_k.setValue(max(1, round(eps * 255)))
        if train.weights in ("auto", "none", "imagenet"):
            _select(self.weights, train.weights)
        else:
            _select(self.weights, "file")
            self.weights_file.setText(train.weights)
        _select(self.device, train.device if self.device.findData(train.device) >= 0 else "auto")
        self._edited()

    def weights_value(self) -> str:
        choice = self.weights.currentData()
        if choice != "file":
            return choice
        path = self.weights_file.text().strip()
        if not path:
            raise ConfigError("no weights file chosen: choose a .pth file with Browse…, or start weights 'none'")
        return path

    def eps(self) -> float:
        return self.eps_k.value() / 255

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """``base`` (patience, seed, augmentation, ...) with the values of the form; ConfigError if invalid."""
        return replace(
            base,
            arch=self.arch.currentData(),
            image_size=self.image_size.value(),
            epochs=self.epochs.value(),
            batch_size=self.batch_size.value(),
            lr=self.lr.value(),
            weights=self.weights_value(),
            device=self.device.currentData(),
        )
