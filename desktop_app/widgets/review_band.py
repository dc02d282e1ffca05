"""The review band: calls whose calibrated p(positive) lies between two values are flagged "uncertain", for a
pathologist to look at first. Two spin boxes; the model's own band (its calibration record) is the default."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QWidget

TIP = (
    "Calls with p(positive) inside this band are marked 'uncertain' in the table and the CSV. The report's "
    "coverage curve shows how accurate the calls outside the band are."
)


class ReviewBand(QWidget):
    band_changed = Signal(object)  # (low, high)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("Flag for review when p(positive) is between")
        self.low, self.high = QDoubleSpinBox(), QDoubleSpinBox()
        for box, (lo, hi) in ((self.low, (0.0, 0.5)), (self.high, (0.5, 1.0))):
            box.setRange(lo, hi)
            box.setSingleStep(0.05)
            box.setDecimals(2)
            box.setToolTip(TIP)
            box.valueChanged.connect(self._changed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.label, self.low, QLabel("and"), self.high):
            layout.addWidget(w)
        layout.addStretch(1)
        self.set_band((0.2, 0.8), "positive")

    def band(self) -> tuple[float, float]:
        return round(self.low.value(), 2), round(self.high.value(), 2)

    def set_band(self, band, positive: str) -> None:
        """Show ``band`` (without emitting ``band_changed``) for a model whose positive class is ``positive``."""
        self.label.setText(f"Flag for review when p({positive}) is between")
        for box, value in zip((self.low, self.high), band):
            box.blockSignals(True)
            box.setValue(float(value))
            box.blockSignals(False)

    def _changed(self) -> None:
        self.band_changed.emit(self.band())
