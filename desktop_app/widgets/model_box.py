"""The ONNX model a prediction uses: a picker, and what the file itself says about how it was made.

A pathologist must see at a glance which model answers (file name and sha256), what it can answer
(classes, positive class), how it was trained (clean or adversarial, eps in k/255), whether it was only
trained on synthetic demo data, and where onnxruntime runs it (the provider the session really uses).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QWidget

SYNTHETIC_WARNING = "⚠ Trained on synthetic demo data: not for diagnosis."
FIELDS = (("file", "File"), ("sha256", "SHA-256"), ("arch", "Architecture"), ("classes", "Classes"))
FIELDS += (("input", "Input"), ("trained", "Trained"), ("provider", "Runs on"))


def eps_text(eps: float) -> str:
    """0.0313… -> '8/255' (eps in pixel units, as the rest of the app writes it)."""
    k = float(eps) * 255
    return f"{round(k)}/255" if abs(k - round(k)) < 1e-6 else f"{float(eps):.4g}"


def positive_class(meta: dict) -> str | None:
    classes = meta.get("classes") or []
    return meta.get("positive_class") or (classes[-1] if classes else None)


def training_text(meta: dict) -> str:
    """'clean' or 'adversarial: originals + FGSM images from Model A, eps 8/255' from the metadata."""
    how = meta.get("training")
    if not isinstance(how, dict) or not how.get("method"):
        return "unknown (the file has no training record)"
    method = how["method"]
    if method == "clean":
        return "clean (original images only)"
    eps = f", eps {eps_text(how['eps'])}" if how.get("eps") is not None else ""
    if method == "merged-fgsm":
        source = str(how.get("attack_source", "?"))
        source = f"Model {source}" if len(source) <= 2 else Path(source).name
        return f"adversarial: originals + FGSM images from {source}{eps}"
    return f"adversarial ({method}){eps}"


def describe(info: dict) -> dict[str, str]:
    """Rich-text values of the box's rows for ``info`` = {path, sha256, meta, provider}."""
    meta, path = info.get("meta") or {}, Path(info["path"])
    classes, positive = meta.get("classes") or [], positive_class(meta)
    marked = [f"<b>{escape(c)} (positive)</b>" if c == positive else escape(c) for c in classes]
    name = f" — {escape(meta['model_name'])}" if meta.get("model_name") else ""
    size = meta.get("image_size")
    provider = info.get("provider", "?")
    where = "GPU" if provider.startswith(("CUDA", "Tensorrt", "TensorRT")) else "CPU"
    return {
        "file": f"{escape(path.name)}{name}",
        "sha256": f"<tt>{info['sha256'][:16]}…</tt>",
        "arch": escape(str(meta.get("arch", "unknown"))),
        "classes": ", ".join(marked) or "<b>none: the file has no HistoGuard metadata</b>",
        "input": f"{size}×{size} px RGB" if size else "unknown",
        "trained": escape(training_text(meta)),
        "provider": f"{escape(provider)} ({where}, onnxruntime)",
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

    def show_info(self, info: dict) -> None:
        """Show the model's description; ``info`` = {path, sha256, meta, provider}."""
        for key, text in describe(info).items():
            self.values[key].setText(text)
        self.values["sha256"].setToolTip(f"SHA-256 of the file:\n{info['sha256']}")
        self.values["file"].setToolTip(str(info["path"]))
        self.synthetic.setVisible(bool((info.get("meta") or {}).get("synthetic_data")))
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
