"""The Diagnose page's selected image: the verdict, what a reviewer needs beside it (p of the positive class,
the file, the model and its sha256, when), and the image itself (or its attribution map, ``explain``)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from desktop_app.widgets.map_view import MapView
from desktop_app.widgets.prediction_table import predicted_probability, short_error

POSITIVE_COLOUR, NEGATIVE_COLOUR, UNREAD_COLOUR = "#a4262c", "#0b6a0b", "#4a4a4a"


class SelectedImage(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Selected image", parent)
        self.verdict = QLabel("")
        self.verdict.setObjectName("verdict")
        self.verdict.setWordWrap(True)
        self.details = QLabel("Select a row to see its image.")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        side = QVBoxLayout()
        side.addWidget(self.verdict)
        side.addWidget(self.details)
        side.addStretch(1)
        self.image_view = MapView(min_size=140)  # the image, or the attribution map over the model's input
        inner = QHBoxLayout()
        inner.addLayout(side, 2)
        inner.addWidget(self.image_view, 3)
        self.outer = QVBoxLayout(self)
        self.outer.addLayout(inner, 1)

    def add_below(self, widget: QWidget) -> None:
        """A row under the verdict and the image (the map's controls)."""
        self.outer.addWidget(widget)

    def show_row(self, row: dict | None, positive: str) -> bool:
        """Show a prediction row (None: nothing selected); True when it has an image to load."""
        self.image_view.clear(Path(row["path"]).name if row else "")
        if row is None:
            self._set_verdict("", "")
            self.details.setText("Select a row to see its image.")
            return False
        self.details.setText(details_html(row, positive))
        if row.get("error"):
            self._set_verdict("not read", UNREAD_COLOUR)
            return False
        self._set_verdict(verdict_text(row), POSITIVE_COLOUR if row["predicted"] == positive else NEGATIVE_COLOUR)
        return True

    def _set_verdict(self, text: str, colour: str) -> None:
        self.verdict.setText(text)
        self.verdict.setStyleSheet(f"font-size:18pt; font-weight:bold; color:{colour};")


def verdict_text(row: dict) -> str:
    """'malignant (p = 0.93)': the predicted class and its probability."""
    return f"{row['predicted']} (p = {predicted_probability(row):.2f})"


def certificate_line(row: dict) -> str:
    """'malignant within L2 radius 0.616 (2.83/255 per pixel value) for the smoothed classifier; sigma ...'."""
    settings = f"sigma {row['certified_sigma']:g}, n {row['certified_n']}, alpha {row['certified_alpha']:g}"
    if row["certified_call"] == "abstain":
        return f"the smoothed classifier abstains (its noisy copies disagree); {settings}"
    return (
        f"{row['certified_call']} within L2 radius {row['certified_radius_l2']:.3f} "
        f"({row['certified_linf_255']:.2f}/255 per pixel value) for the smoothed classifier; {settings}"
    )


def details_html(row: dict, positive: str) -> str:
    """What a reviewer needs beside the verdict: p of the positive class, the file, the model, when."""
    lines = [f"<b>Could not be read:</b> {escape(short_error(row))}"] if row.get("error") else []
    if not row.get("error"):
        lines.append(f"p({escape(positive)}) = {row[f'p_{positive}']:.3f}")
        if row.get("review"):
            lines.append(f"<b>Uncertain</b>: inside the review band {escape(row.get('review_band', ''))}; review first")
        if row.get("certified_call"):
            lines.append(f"<b>Certified</b>: {escape(certificate_line(row))}")
    lines += [
        f"File: {escape(row['path'])}",
        f"Model: {escape(row['model'])} (sha256 <tt>{row['model_sha256'][:12]}…</tt>), {escape(row['provider'])}",
        f"Predicted at {escape(row['time'])}",
        "<i>To be reviewed by a pathologist.</i>",
    ]
    return "<br>".join(lines)
