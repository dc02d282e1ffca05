"""The Slides page's toolbar, above the viewer: open a slide, zoom (fit, 1:1, out, in) with the current zoom
and pyramid level, and the overlay: which map, its opacity and its colour key."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QToolButton, QWidget

from desktop_app.widgets.colour_bar import ColourBar

OVERLAYS = (("No overlay", "none"), ("Probability", "probability"), ("Robustness", "robustness"))
ZOOM_BUTTONS = (
    ("fit_button", "Fit", "Show the whole slide"),
    ("one_button", "1:1", "One screen pixel per slide pixel (full resolution)"),
    ("zoom_out_button", "−", "Zoom out (or turn the mouse wheel)"),
    ("zoom_in_button", "+", "Zoom in (or turn the mouse wheel)"),
)


def zoom_text(scale: float, level: int, objective_power: float | None) -> str:
    """'Zoom 25% (≈10×) · level 1': screen pixels per level-0 pixel, the magnification it matches when the
    slide records its objective, and the pyramid level drawn."""
    text = f"{100 * scale:.1f}%" if scale < 0.1 else f"{100 * scale:.0f}%"
    if objective_power:
        text += f" (≈{objective_power * scale:.2g}×)"
    return f"Zoom {text} · level {level}"


class SlideToolbar(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        bar = QHBoxLayout(self)
        bar.setContentsMargins(0, 0, 0, 0)
        self.open_button = QPushButton("Open slide…")
        bar.addWidget(self.open_button)
        bar.addSpacing(12)
        for name, text, tip in ZOOM_BUTTONS:
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.setMinimumWidth(34)
            setattr(self, name, button)
            bar.addWidget(button)
        self.zoom_label = QLabel("")
        self.zoom_label.setMinimumWidth(150)
        bar.addWidget(self.zoom_label)
        bar.addStretch(1)
        self.overlay_combo = QComboBox()
        self.overlay_combo.setToolTip("Probability: the model's p per tile. Robustness: the eps that flips its call")
        for text, key in OVERLAYS:
            self.overlay_combo.addItem(text, key)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.setFixedWidth(100)
        self.opacity.setToolTip("Overlay opacity")
        self.colour_bar = ColourBar()
        policy = self.colour_bar.sizePolicy()
        policy.setRetainSizeWhenHidden(True)  # the toolbar does not jump when an overlay is shown
        self.colour_bar.setSizePolicy(policy)
        for widget in (QLabel("Overlay:"), self.overlay_combo, QLabel("Opacity:"), self.opacity):
            bar.addWidget(widget)
        bar.addSpacing(8)
        bar.addWidget(self.colour_bar)

    def set_robustness_available(self, available: bool) -> None:
        self.overlay_combo.model().item(self.overlay_combo.findData("robustness")).setEnabled(available)
