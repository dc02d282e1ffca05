"""The Stress page's certificate of one image: an ONNX file, the certificate settings (``CertifyForm``) and the
result in words, under the attack's triptych. Only widgets and their values; the page starts the work."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from desktop_app.widgets.certify_form import DETAILS, CertifyForm

EMPTY = (
    "Certify the chosen image with an ONNX file: the L2 radius within which the smoothed classifier (the "
    "majority call over noisy copies) provably keeps its call, to set beside the attack's eps."
)
CERTIFIED_STYLE = "background:#e3f4e1; border:1px solid #5cb85c; padding:4px; color:#1e4620;"
ABSTAIN_STYLE = "background:#fff4ce; border:1px solid #e0c060; padding:4px; color:#4a3b00;"  # as 'uncertain'
NEUTRAL_STYLE = "padding:4px;"


class CertifyPanel(QGroupBox):
    """``set_models``/``model()`` for the ONNX file, ``form`` for the settings and the button, ``show_text``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Certified radius (randomized smoothing, ONNX)", parent)
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(16)
        self.form = CertifyForm("Certify this image", compact=True)
        self.form.setToolTip(DETAILS)
        self.result = QLabel()
        self.result.setObjectName("certificate")
        self.result.setWordWrap(True)
        self.result.setTextFormat(Qt.TextFormat.RichText)
        top = QHBoxLayout()
        top.addWidget(QLabel("Model"))
        top.addWidget(self.model_combo, 1)
        top.addWidget(self.form, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addLayout(top)
        layout.addWidget(self.result)
        self.show_text(EMPTY)

    def set_models(self, models: list[tuple[str, Path]], current: Path | None = None) -> None:
        """(label, .onnx path) entries; ``current`` (or the first) is chosen."""
        self.model_combo.clear()
        for label, path in models:
            self.model_combo.addItem(label, str(path))
            self.model_combo.setItemData(self.model_combo.count() - 1, str(path), Qt.ItemDataRole.ToolTipRole)
        index = self.model_combo.findData(str(current)) if current is not None else -1
        if index >= 0:
            self.model_combo.setCurrentIndex(index)

    def model(self) -> Path | None:
        data = self.model_combo.currentData()
        return Path(data) if data else None

    def show_text(self, html: str, kind: str = "neutral") -> None:
        """``kind``: 'certified', 'abstain' (styled like an uncertain call) or 'neutral'."""
        self.result.setText(html)
        self.result.setStyleSheet({"certified": CERTIFIED_STYLE, "abstain": ABSTAIN_STYLE}.get(kind, NEUTRAL_STYLE))
