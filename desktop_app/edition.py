"""The Diagnose edition in the window: pages that need PyTorch say so and keep their controls off.

The same app runs in both editions (``engine.core.edition``); only what needs PyTorch is switched off here,
so the Diagnose edition still opens datasets and run folders, shows results, predicts with ONNX models and
runs the black-box attack.
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from engine.core.edition import DIAGNOSE, edition, needs_full_edition

TITLE = "HistoGuard (Diagnose edition)"


def banner(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("editionBanner")
    label.setWordWrap(True)
    label.setStyleSheet("background:#e8f0fb; border:1px solid #8fb0dc; padding:6px; color:#1d3557;")
    return label


def _insert_banner(page: QWidget, text: str) -> None:
    layout = page.layout()
    if isinstance(layout, QVBoxLayout):
        layout.insertWidget(1, banner(text))  # below the page's heading


def apply_edition(window) -> str:
    """Adapt ``window`` (a MainWindow) to the running edition; returns the edition."""
    current = edition()
    if current != DIAGNOSE:
        return current
    window.setWindowTitle(TITLE)
    train = window.pages["TrainPage"]
    train.unavailable = needs_full_edition("Training")
    _insert_banner(train, train.unavailable)
    train._refresh()
    stress = window.pages["StressPage"]
    _insert_banner(stress, needs_full_edition("A white-box attack (one using the model's own gradients)"))
    stress.limit_to_blackbox()
    window.pages["DiagnosePage"].explain.limit_to_onnx()  # occlusion: the one map an ONNX file gives alone
    slides = window.pages["SlidesPage"]
    _insert_banner(slides, needs_full_edition("The robustness map and the tile attack (white-box attacks)"))
    slides.limit_to_onnx()
    return current
