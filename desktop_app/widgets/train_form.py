"""The settings of a study run: architecture, image size, epochs, batch size, learning rate, the attack
eps of Models B and C (as k/255), Model C's defence, stain normalisation and HED jitter, starting weights, device,
and (in a compact group) the robustness evaluation that follows training.

The architectures are listed statically: the engine's registry imports torch, which the window must not
wait for (a test checks this list against ``engine.api.list_models()``).
"""

from __future__ import annotations

from dataclasses import fields, replace

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

from desktop_app.widgets.mpp_spin import mpp_spin
from desktop_app.widgets.robust_eval_form import RobustEvalForm
from engine.core.catalog import DEFENCE_LABELS
from engine.core.config import ExperimentConfig, TrainConfig
from engine.core.errors import ConfigError

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
STAIN_NORMS = (
    ("none", "none", "images as they are"),
    ("macenko", "Macenko", "re-stain each image with the training set's haematoxylin and eosin vectors (Macenko 2009)"),
    ("reinhard", "Reinhard", "match each image's CIELAB colour mean and spread to the training set's (Reinhard 2001)"),
)
STAIN_TIP = (
    "Stain normalisation: every training, validation and test image is re-coloured to one reference stain, fitted on "
    "the training images, before the model sees it. It is stored with the model and applied wherever the model runs "
    "(Diagnose, slides, certification, maps), so images from another lab are normalised alike."
)
HED_TIP = (
    "HED stain jitter in training (Tellez et al. 2018): each image's haematoxylin, eosin and DAB concentrations times "
    "U(1-scale, 1+scale), plus U(-shift, shift) in optical density. 0 and 0: off; 0.05/0.05 light, 0.2/0.05 strong."
)
DEFENCE_TIPS = {
    "none": "no Model C: only Models A and B are trained",
    "fgsm-rs": "Model C is trained on FGSM images with a random start, made on the fly (fast, one attack step)",
    "pgd": "Model C is trained on PGD images made on the fly (slower, several attack steps per batch)",
    "trades": "Model C is trained with the TRADES loss (clean accuracy traded against robustness)",
}
DEFENCES = tuple(
    (name, f"{label} (no Model C)" if name == "none" else label, DEFENCE_TIPS.get(name, label))
    for name, label in DEFENCE_LABELS.items()
)


SIGMA_TIP = (
    "Model C defence 'gaussian' (randomized smoothing): the standard deviation of the Gaussian noise added to every "
    "training image, in pixel units on [0, 1] images (Cohen et al.: 0.25). A larger sigma certifies larger radii "
    "at some cost in accuracy; the model records it, and certification uses it"
)
CERTIFIED_TIP = (
    "How many test images the experiment certifies on Model C's ONNX file (randomized smoothing, n = 1,000 noisy "
    "copies each: about a second per image for a small model on 2 CPU cores); 0 = off"
)


def _combo(entries) -> QComboBox:
    combo = QComboBox()
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(16)  # may be narrower than its longest entry; the list shows it whole
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


def _fraction_spin(low: float, high: float, tip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(2)
    spin.setSingleStep(0.05)
    spin.setToolTip(tip)
    return spin


def _pair(first: QWidget, label: str, second: QWidget) -> QHBoxLayout:
    """Two short fields in one form row (the form must fit a 1280x800 window)."""
    row = QHBoxLayout()
    row.addWidget(first, 1)
    row.addSpacing(8)
    row.addWidget(QLabel(label))
    row.addWidget(second, 1)
    return row


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
        self.input_mpp = mpp_spin(
            "not recorded",
            "Microns per pixel of the model's input (the training images after resizing to the image size). "
            "Stored with the model so whole slides are tiled at the scale it was trained at.",
        )
        self.eps_k = _spin(1, 64, 1, " / 255")
        self.eps_k.setToolTip("FGSM eps of Model B's extra training images and Model C's adversarial training")
        self.eps_text = QLabel()
        self.defence = _combo(DEFENCES)
        self.sigma = _fraction_spin(0.01, 1.0, SIGMA_TIP)
        self.certified = _spin(0, 100000, 10, " images")
        self.certified.setToolTip(CERTIFIED_TIP)
        self.stain_norm = _combo(STAIN_NORMS)
        self.stain_norm.setToolTip(STAIN_TIP)
        self.stain_norm.setMinimumContentsLength(8)  # one row with the HED jitter: the form stays as wide as it was
        self.hed_scale, self.hed_shift = _fraction_spin(0.0, 0.95, HED_TIP), _fraction_spin(0.0, 1.0, HED_TIP)
        self.robust = RobustEvalForm()
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
        form.setVerticalSpacing(5)
        form.addRow("Architecture", self.arch)
        form.addRow("Image size", _pair(self.image_size, "Batch size", self.batch_size))
        form.addRow("Input scale", self.input_mpp)
        form.addRow("Epochs (at most)", _pair(self.epochs, "Learning rate", self.lr))
        eps_row = QHBoxLayout()
        eps_row.addWidget(self.eps_k)
        eps_row.addSpacing(6)
        eps_row.addWidget(self.eps_text, 1)
        form.addRow("Attack eps (B, C)", eps_row)
        form.addRow("Model C defence", self.defence)
        noise_row = _pair(self.sigma, "certify", self.certified)
        self.noise_label = QLabel("Noise sigma")
        form.addRow(self.noise_label, noise_row)
        stain_row = _pair(self.stain_norm, "HED jitter", self.hed_scale)
        stain_row.addWidget(QLabel("shift"))
        stain_row.addWidget(self.hed_shift, 1)
        form.addRow("Stain normalisation", stain_row)
        form.addRow("Start weights", self.weights)
        file_row = QHBoxLayout()
        file_row.addWidget(self.weights_file, 1)
        file_row.addWidget(self.weights_browse)
        self.file_row_label = QLabel("Weights file")
        form.addRow(self.file_row_label, file_row)
        form.addRow("Device", self.device)
        form.addRow(self.robust)

    def _connect(self) -> None:
        for spin in (self.image_size, self.epochs, self.batch_size, self.eps_k):
            spin.valueChanged.connect(self._edited)
        for spin in (self.lr, self.hed_scale, self.hed_shift, self.sigma, self.certified):
            spin.valueChanged.connect(self._edited)
        self.input_mpp.valueChanged.connect(self._edited)
        for combo in (self.arch, self.weights, self.device, self.defence, self.stain_norm):
            combo.currentIndexChanged.connect(self._edited)
        self.robust.changed.connect(self._edited)
        self.weights_file.textChanged.connect(self._edited)
        self.weights_browse.clicked.connect(self._browse_weights)

    def _edited(self, *_args) -> None:
        k = self.eps_k.value()
        self.eps_text.setText(f"eps = {k}/255 ≈ {k / 255:.4f} (pixel units)")
        file_mode = self.weights.currentData() == "file"
        for w in (self.file_row_label, self.weights_file, self.weights_browse):
            w.setVisible(file_mode)
        gaussian = self.defence.currentData() == "gaussian"
        for w in (self.noise_label, self.sigma, self.certified):
            w.setEnabled(gaussian)
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
        self.input_mpp.setValue(train.input_mpp or 0.0)
        _select(self.stain_norm, train.stain_norm)
        self.hed_scale.setValue(train.hed_scale)
        self.hed_shift.setValue(train.hed_shift)
        self.sigma.setValue(train.noise_sigma)
        self.eps_k.setValue(max(1, round(eps * 255)))
        if train.weights in ("auto", "none", "imagenet"):
            _select(self.weights, train.weights)
        else:
            _select(self.weights, "file")
            self.weights_file.setText(train.weights)
        _select(self.device, train.device if self.device.findData(train.device) >= 0 else "auto")
        self._edited()

    def set_experiment(self, cfg: ExperimentConfig | None) -> None:
        """Show a run's defence and robustness settings, or the engine's defaults for None."""
        defaults = {f.name: f.default for f in fields(ExperimentConfig)}
        _select(self.defence, cfg.defence if cfg is not None else defaults["defence"])
        self.certified.setValue(cfg.certified_images if cfg is not None else defaults["certified_images"])
        self.robust.set_from(cfg)
        self._edited()

    def experiment_values(self) -> dict:
        """The ExperimentConfig fields the form sets besides ``train`` and ``eps``."""
        return {"defence": self.defence.currentData(), "certified_images": self.certified.value(),
                **self.robust.values()}  # fmt: skip

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
            input_mpp=self.input_mpp.value() or None,
            weights=self.weights_value(),
            device=self.device.currentData(),
            stain_norm=self.stain_norm.currentData(),
            stain_reference=base.stain_reference if self.stain_norm.currentData() != "none" else None,
            hed_scale=self.hed_scale.value(),
            hed_shift=self.hed_shift.value(),
            noise_sigma=self.sigma.value(),
        )
