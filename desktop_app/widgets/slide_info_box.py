"""What the open slide file says about itself: vendor, size, pyramid levels, resolution, objective.

A missing resolution is said in words ("not recorded"), because it decides how large a model tile is on
the slide: without it one tile is the model's input size in level-0 pixels unless the user gives the
model's µm/px (the prediction form's field).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QWidget

ROWS = (("file", "File"), ("vendor", "Format"), ("size", "Size"), ("levels", "Levels"))
ROWS += (("mpp", "Resolution"), ("objective", "Objective"))


def describe_slide(info) -> dict[str, str]:
    """Rich-text values of the box's rows for an ``engine.slides.SlideInfo``."""
    w, h = info.dimensions
    levels = "<br>".join(
        f"{i}: {lw:,} × {lh:,} (÷{ds:.3g})"
        for i, ((lw, lh), ds) in enumerate(zip(info.level_dimensions, info.level_downsamples))
    )
    if info.mpp:
        mx, my = info.mpp
        mpp = f"{mx:.3f} µm/px" if abs(mx - my) < 1e-3 else f"{mx:.3f} × {my:.3f} µm/px"
        mpp += f" ({w * mx / 1000:.1f} × {h * my / 1000:.1f} mm)"
    else:
        mpp = "<b>not recorded</b> in the file"
    power = f"{info.objective_power:g}×" if info.objective_power else "not recorded"
    return {
        "file": escape(Path(info.path).name),
        "vendor": escape(info.vendor),
        "size": f"{w:,} × {h:,} px",
        "levels": levels,
        "mpp": mpp,
        "objective": power,
    }


class SlideInfoBox(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Slide", parent)
        self.values: dict[str, QLabel] = {}
        form = QFormLayout(self)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        for key, label in ROWS:
            value = QLabel("—")
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.values[key] = value
            form.addRow(f"{label}:", value)

    def show_info(self, info) -> None:
        for key, text in describe_slide(info).items():
            self.values[key].setText(text)
        self.values["file"].setToolTip(str(info.path))

    def clear(self) -> None:
        for value in self.values.values():
            value.setText("—")
            value.setToolTip("")
