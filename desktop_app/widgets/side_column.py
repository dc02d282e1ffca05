"""A side column of panels beside a central view: scrolled vertically when the window is short, never
clipped sideways."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget


def side_column(*widgets: QWidget, stretch: bool = False) -> QScrollArea:
    """``widgets`` stacked in a scroll area at least as wide as they need. Spare height goes below them
    (``stretch``) or to the last one."""
    column = QWidget()
    v = QVBoxLayout(column)
    v.setContentsMargins(0, 0, 4, 0)
    for i, w in enumerate(widgets):
        v.addWidget(w, 0 if stretch or i < len(widgets) - 1 else 1)
    if stretch:
        v.addStretch(1)
    scroll = QScrollArea()
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(column)
    scroll.setWidgetResizable(True)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setMinimumWidth(column.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
    return scroll
