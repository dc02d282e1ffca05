"""The ONNX model a prediction uses: a picker, and what the file itself says about how it was made.

A pathologist must see at a glance which model answers (file name and sha256), what it can answer
(classes, positive class), how it was trained (clean or adversarial, eps in k/255), whether its
probabilities are calibrated and which calls it flags for review, whether it was only trained on synthetic
demo data, and where onnxruntime runs it (the provider the session really uses).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QWidget

from engine.deploy.model_info import ModelInfo
from engine.report.labels import band_text, calibration_text, training_text

SYNTHETIC_WARNING = "⚠ Trained on synthetic demo data: not for diagnosis."
FIELDS = (("file", "File"), ("sha256", "SHA-256"), ("arch", "Architecture"), ("classes", "Classes"))
FIELDS += (("input", "Input"), ("trained", "Trained"), ("probabilities", "Probabilities"), ("band", "Review band"))
FIELDS += (("provider", "Runs on"),)


def describe(info: ModelInfo) -> dict[str, str]:
    """Rich-text values of the box's rows for an opened model (``engine.api.read_model_info``)."""
    meta = info.meta
    marked = [f"<b>{escape(c)} (positive)</b>" if c == meta.positive_class else escape(c) for c in meta.classes]
    name = f" — {escape(meta.model_name)}" if meta.model_name else ""
    int8 = " (INT8 copy)" if meta.quantized else ""
    return {
        "file": f"{escape(info.path.name)}{name}{int8}",
        "sha256": f"<tt>{info.sha256[:16]}…</tt>",
        "arch": escape(meta.arch),
        "classes": ", ".join(marked),
        "input": f"{meta.image_size}×{meta.image_size} px RGB",
        "trained": escape(training_text(meta)),
        "probabilities": escape(calibration_text(meta)),
        "band": escape(band_text(meta.review_band, meta.positive_class)),
        "provider": f"{escape(info.provider)} ({'GPU' if info.on_gpu else 'CPU'}, onnxruntime)",
    }


class ModelBox(QGroupBox):
    """Picker (the open run's models, or any .onnx file) and the chosen model's description."""

    model_chosen = Signal(object)  # Path picked in the combo box
    open_requested = Signal()  # "Open ONNX…" clicked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Model", parent)
        self.picker = QComboBox()
        self.picker.setMinimumContentsLength(18)
        self.picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.picker.setPlaceholderText("No model: open a run or an ONNX file")
        self.picker.activated.connect(self._activated)
        self.open_button = QPushButton("Open ONNX…")
        self.open_button.clicked.connect(self.open_requested)
        top = QHBoxLayout()
        top.addWidget(self.picker, 1)
        top.addWidget(self.open_button)
        self.synthetic = QLabel(SYNTHETIC_WARNING)
        self.synthetic.setObjectName("syntheticModelWarning")
        self.synthetic.setWordWrap(True)
        self.synthetic.setStyleSheet(
            "background:#fde7e9; border:2px solid #c50f1f; color:#7a0010; padding:6px; font-weight:bold;"
        )
        self.synthetic.setVisible(False)
        self.status = QLabel("No model chosen.")
        self.status.setWordWrap(True)
        form = QFormLayout()
        self.values: dict[str, QLabel] = {}
        for key, label in FIELDS:
            value = QLabel("—")
            value.setWordWrap(True)
            self.values[key] = value
            form.addRow(f"{label}:", value)
        layout = QFormLayout(self)
        layout.addRow(top)
        layout.addRow(self.synthetic)
        layout.addRow(self.status)
        layout.addRow(form)

    def set_choices(self, choices: list[tuple[str, Path]], current: Path | None) -> None:
        """Fill the picker without emitting ``model_chosen``; ``current`` is selected (added if missing)."""
        if current is not None and all(p != current for _, p in choices):
            choices = [*choices, (f"{current.name} ({current.parent})", current)]
        self.picker.blockSignals(True)
        self.picker.clear()
        for text, path in choices:
            self.picker.addItem(text, str(path))
            self.picker.setItemData(self.picker.count() - 1, str(path), Qt.ItemDataRole.ToolTipRole)
        self.picker.setCurrentIndex(self.picker.findData(str(current)) if current is not None else -1)
        self.picker.blockSignals(False)

    def _activated(self, index: int) -> None:
        data = self.picker.itemData(index)
        if data:
            self.model_chosen.emit(Path(data))

    def show_loading(self, path: Path | None) -> None:
        self._clear_values()
        self.status.setText(f"Reading {path.name}…" if path else "No model chosen: open a run or an ONNX file.")

    def show_info(self, info: ModelInfo) -> None:
        """Show the model's description."""
        for key, text in describe(info).items():
            self.values[key].setText(text)
        self.values["sha256"].setToolTip(f"SHA-256 of the file:\n{info.sha256}")
        self.values["file"].setToolTip(str(info.path))
        self.synthetic.setVisible(info.meta.synthetic_data)
        self.status.setText("")
        self.status.setVisible(False)

    def show_error(self, path: Path, message: str) -> None:
        self._clear_values()
        self.status.setText(f"<b>{escape(path.name)} cannot be used:</b> {escape(message)}")

    def _clear_values(self) -> None:
        for value in self.values.values():
            value.setText("—")
            value.setToolTip("")
        self.synthetic.setVisible(False)
        self.status.setVisible(True)
