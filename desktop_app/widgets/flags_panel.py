"""Gradient-masking checks (report.json robustness "flags"): each warning on its own coloured line, or one
green line when there is no warning sign.

A flag's colour says how strong the evidence is, and its first word says it too (so nothing rests on
colour): red "Warning" when an attack that needs no gradients (black-box, transfer, random noise) beat
the white-box ones, i.e. the white-box numbers overstate the robustness; orange "Check" when the
white-box curves are inconsistent (PGD weaker than FGSM, accuracy rising with eps).
"""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from engine.report.robustness import flags_text

RED = "background:#fde2e1; border:1px solid #d9534f; padding:5px; color:#6b1a17;"
ORANGE = "background:#fff0d9; border:1px solid #e08e0b; padding:5px; color:#5c3b00;"
GREEN = "background:#e3f4e1; border:1px solid #5cb85c; padding:5px; color:#1e4620;"
STRONG = ("blackbox_beats_white_box", "transfer_beats_white_box", "baseline_beats_white_box")


def severity(flag: dict) -> str:
    return "Warning" if flag.get("flag") in STRONG else "Check"


class FlagsPanel(QWidget):
    """``set_section(report["robustness"])``; ``lines`` are the labels shown, in order."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.box = QVBoxLayout(self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.box.setSpacing(3)
        self.lines: list[QLabel] = []

    def set_section(self, section: dict) -> None:
        for line in self.lines:
            self.box.removeWidget(line)
            line.deleteLater()
        self.lines = []
        flags = section.get("flags") or []
        if not flags:
            self._add(f"<b>✓ Gradient-masking checks:</b> {escape(flags_text(section))}", GREEN)
        for flag in flags:
            word = severity(flag)
            self._add(
                f"<b>⚠ {word}, Model {escape(flag['model'])}:</b> {escape(flag['message'])}",
                RED if word == "Warning" else ORANGE,
            )

    def _add(self, html: str, style: str) -> None:
        label = QLabel(html)
        label.setWordWrap(True)
        label.setStyleSheet(style)
        self.box.addWidget(label)
        self.lines.append(label)

    def texts(self) -> list[str]:
        return [line.text() for line in self.lines]
