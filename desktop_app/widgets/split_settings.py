"""Split settings: level (patient / image), train/val/test ratios and seed, with an Apply button.

The widget only validates what it can see (ratios that add up to 1, a non-empty train and test share)
and warns about image-level splits; the split itself is made by the engine when the page applies it.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QWidget,
)

from engine.core.config import DataConfig

LEVELS = (("Patient-level (recommended)", "patient"), ("Image-level (leaks patients)", "image"))
LEAK_TEXT = (
    "<b>Image-level split leaks patients.</b> Images of one patient can land in both train and test, so the "
    "model is tested on patients it has already seen and the accuracy is inflated (by up to tens of points on "
    "BreakHis). Use it only to reproduce an image-level study."
)
WARNING_STYLE = "background:#fde7e9; border:1px solid #d13438; padding:6px; color:#5c0b10;"
ERROR_STYLE = "color:#a4262c; font-weight:bold;"
SPLIT_NAMES = ("train", "val", "test")


class SplitSettings(QGroupBox):
    """Emits ``apply_requested`` when the user clicks Apply with valid settings; read them with ``values()``."""

    apply_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Split settings", parent)
        self.level = QComboBox()
        for text, value in LEVELS:
            self.level.addItem(text, value)
        self.ratio_spins = {name: self._ratio_spin(name) for name in SPLIT_NAMES}
        self.seed = QSpinBox()
        self.seed.setRange(0, 2_147_483_647)
        self.seed.setMaximumWidth(140)
        self.seed.setToolTip("The same seed, ratios and images always give the same split")
        self.leak_warning = _label(LEAK_TEXT, WARNING_STYLE)
        self.error = _label("", ERROR_STYLE)
        self.apply_button = QPushButton("Apply split")
        self.apply_button.setToolTip("Make the split with these settings; the Train page uses it")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self._applied: tuple | None = None
        self._usable = True
        self._layout()
        self.level.currentIndexChanged.connect(self._changed)
        for spin in (*self.ratio_spins.values(), self.seed):
            spin.valueChanged.connect(self._changed)
        self.apply_button.clicked.connect(self._apply_clicked)
        self._changed()

    def _layout(self) -> None:
        form = QFormLayout(self)
        form.addRow("Split by", self.level)
        ratios = QHBoxLayout()
        for name, spin in self.ratio_spins.items():
            ratios.addWidget(QLabel(name.capitalize() if name != "val" else "Validation"))
            ratios.addWidget(spin)
        ratios.addStretch(1)
        form.addRow("Shares", ratios)
        form.addRow("Seed", self.seed)
        form.addRow(self.leak_warning)
        form.addRow(self.error)
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.status, 1)
        form.addRow(buttons)

    @staticmethod
    def _ratio_spin(name: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(0.0, 1.0)
        spin.setDecimals(2)
        spin.setSingleStep(0.05)
        spin.setToolTip(f"Share of the patients (or images) in the {name} split, 0-1; the three add up to 1")
        return spin

    def set_config(self, cfg: DataConfig, usable: bool = True) -> None:
        """Show ``cfg``'s split settings as the applied ones (no signal is emitted); ``usable``: whether
        they gave a split (the status line says so)."""
        widgets = (self.level, *self.ratio_spins.values(), self.seed)
        for w in widgets:
            w.blockSignals(True)
        self.level.setCurrentIndex(max(0, self.level.findData(cfg.split_level)))
        for spin, value in zip(self.ratio_spins.values(), cfg.ratios):
            spin.setValue(value)
        self.seed.setValue(cfg.split_seed)
        for w in widgets:
            w.blockSignals(False)
        self._applied, self._usable = self.values(), usable
        self._changed()

    def values(self) -> tuple[str, tuple[float, float, float], int]:
        """(level, (train, val, test), seed) as shown."""
        ratios = tuple(round(spin.value(), 4) for spin in self.ratio_spins.values())
        return self.level.currentData(), ratios, self.seed.value()  # type: ignore[return-value]

    def problem(self) -> str:
        """Why the shown ratios cannot be used ("" when they can)."""
        train, val, test = self.values()[1]
        total = train + val + test
        if abs(total - 1.0) > 1e-6:
            return f"Train + validation + test = {total:.2f}; the three shares must add up to 1.00."
        if train <= 0 or test <= 0:
            return "Train and test need a share above 0."
        return ""

    def _changed(self) -> None:
        self.leak_warning.setVisible(self.level.currentData() == "image")
        problem = self.problem()
        self.error.setText(problem)
        self.error.setVisible(bool(problem))
        self.apply_button.setEnabled(not problem)
        if self._applied is None or problem:
            self.status.setText("")
        elif self.values() == self._applied:
            ok = "Applied: the Train page uses this split."
            self.status.setText(ok if self._usable else "These settings give no usable split (see the reason).")
        else:
            self.status.setText("<b>Changed</b>: click Apply split to use these settings.")

    def _apply_clicked(self) -> None:
        if not self.problem():
            self.apply_requested.emit()


def _label(text: str, style: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(style)
    label.setVisible(False)
    return label
