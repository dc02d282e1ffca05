"""A microns-per-pixel field, as the Train page (the model's input scale) and the Slides page (an override
of it) both ask for one: 0 is "unset", shown as ``special``."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox


def mpp_spin(special: str, tip: str, step: float = 0.05) -> QDoubleSpinBox:
    """A 0-100 µm/px spin box with three decimals; its value 0 reads ``special`` and means "not given"."""
    spin = QDoubleSpinBox()
    spin.setDecimals(3)
    spin.setRange(0.0, 100.0)
    spin.setSingleStep(step)
    spin.setSuffix(" µm/px")
    spin.setSpecialValueText(special)
    spin.setToolTip(tip)
    return spin
