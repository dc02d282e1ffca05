"""An image and its adversarial version, each with its attribution map, and where the map changed: what the attack
did to the model's attention. ``set_result(engine.api.explain_attack(...) result + colours)``; ``clear(text)``."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from desktop_app.widgets.map_view import MapView
from engine.core.catalog import EXPLAIN_INFO

CAPTIONS = ("Original", "Adversarial", "Change of the map")


class AttentionPair(QWidget):
    def __init__(self, min_size: int = 180, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.method = QComboBox()
        for name, info in EXPLAIN_INFO.items():
            self.method.addItem(info.label, name)
            self.method.setItemData(self.method.count() - 1, info.shows, Qt.ItemDataRole.ToolTipRole)
        self.method.setCurrentIndex(self.method.findData("gradcam"))
        self.run_button = QPushButton("Explain both")
        self.run_button.setToolTip("The map of the original and of the adversarial image, for the original's call")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.setFixedWidth(100)
        self.opacity.valueChanged.connect(self._opacity_moved)
        controls = QHBoxLayout()
        for w in (QLabel("Map:"), self.method, self.run_button, QLabel("opacity"), self.opacity):
            controls.addWidget(w)
        controls.addStretch(1)
        self.views = tuple(MapView(c, min_size) for c in CAPTIONS)
        grid = QGridLayout()
        for col, view in enumerate(self.views):
            grid.addWidget(view, 0, col)
            grid.setColumnStretch(col, 1)
        self.title = QLabel("")
        self.summary = QLabel("")
        self.details = QLabel("")
        for label in (self.title, self.summary, self.details):
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.title)
        layout.addLayout(grid, 1)
        layout.addWidget(self.summary)
        layout.addWidget(self.details)
        self.result: dict | None = None
        self.clear()

    def current_method(self) -> str:
        return self.method.currentData()

    def clear(self, text: str = "") -> None:
        self.result = None
        for view, caption in zip(self.views, CAPTIONS):
            view.clear(caption)
        self.title.setText(escape(text))
        self.summary.setText("")
        self.summary.setStyleSheet("")
        self.details.setText("")

    def set_result(self, r: dict, title: str = "") -> None:
        """``r``: ``explain_attack``'s result with "heat_original", "heat_adversarial" and "heat_difference"."""
        self.result = r
        self.title.setText(title)
        before, after = r["original"], r["adversarial"]
        opacity = self.opacity.value() / 100
        self.views[0].set_layers(before["image"], r["heat_original"], opacity, self._caption("Original", before))
        self.views[1].set_layers(after["image"], r["heat_adversarial"], opacity, self._caption("Adversarial", after))
        self.views[2].set_layers(
            before["image"], r["heat_difference"], 0.85, "Change of the map<br>blue lost, red gained"
        )
        moved = r["attention_moved"]
        text = r["moved_text"]
        self.summary.setText(f"<b>{'⚠ ' if moved else ''}{escape(text[:1].upper() + text[1:])}.</b>")
        self.summary.setStyleSheet(
            "background:#fde2e1; border:1px solid #d9534f; padding:6px; color:#6b1a17;" if moved
            else "background:#e3f4e1; border:1px solid #5cb85c; padding:6px; color:#1e4620;"
        )  # fmt: skip
        label = EXPLAIN_INFO[r["method"]].label
        self.details.setText(
            f"{escape(label)} maps of the class <b>{escape(r['target'])}</b> (the original's call) on both images: "
            f"{escape(EXPLAIN_INFO[r['method']].shows)}. <span style='color:#666'>Rank correlation: Spearman over the "
            "pixels; overlap: of the two maps' top 10 % pixels; mass moved: the share of the map that changed place."
            "</span>"
        )

    def _caption(self, name: str, r: dict) -> str:
        p = r["probabilities"][r["classes"].index(r["predicted"])]
        return f"{name}<br>{escape(r['predicted'])} (p = {p:.2f})"

    def _opacity_moved(self, value: int) -> None:
        for view in self.views[:2]:
            view.set_opacity(value / 100)

    def has_maps(self) -> bool:
        return all(v.has_map() for v in self.views)
