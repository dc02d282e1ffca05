"""The tile clicked on the slide: what the model saw (its input, resized from the slide), its call, the
same tile attacked white-box at the chosen eps (adversarial version, perturbation, new call), and its attribution
map over the tile (``TileMap``: Show map, opacity)."""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from desktop_app.widgets.slide_form import METHODS, int_spin
from desktop_app.widgets.slide_summary import flip_phrase
from desktop_app.widgets.tile_map import TileMap
from desktop_app.widgets.triptych import Triptych
from engine.core.config import AttackConfig

POSITIVE_COLOUR, NEGATIVE_COLOUR = "#a4262c", "#0b6a0b"


class SlideTilePanel(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Selected tile", parent)
        self.where = QLabel("")
        self.where.setWordWrap(True)
        self.verdict = QLabel("")
        self.verdict.setObjectName("tileVerdict")
        self.verdict.setWordWrap(True)
        self.method = QComboBox()
        for text, key in METHODS:
            self.method.addItem(text.split(" (")[0], key)
        self.eps_k = int_spin(1, 64, 2, "/255")
        self.eps_k.setPrefix("eps ")
        self.attack_button = QPushButton("Attack tile")
        self.attack_button.setToolTip("Attack this tile white-box (on the model's own gradients) at this eps")
        self.controls = QWidget()
        controls = QHBoxLayout(self.controls)
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(self.method)
        controls.addWidget(self.eps_k)
        controls.addWidget(self.attack_button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color:#505050;")
        self.triptych = Triptych(min_size=80, compact=True)
        self.map = TileMap(min_size=120)
        self.setMinimumWidth(3 * 80 + 40)  # the three pictures side by side, even while they are hidden
        layout = QVBoxLayout(self)
        layout.addWidget(self.where)
        layout.addWidget(self.verdict)
        layout.addWidget(self.controls)
        layout.addWidget(self.status)
        layout.addWidget(self.triptych, 1)
        layout.addWidget(self.map, 1)
        layout.addStretch(0)  # takes the height while the triptych is hidden, none while it is shown
        self.clear()

    def clear(self, text: str = "Click a tile on the slide (after a prediction) to see it here.") -> None:
        self.where.setText(escape(text))
        self.verdict.setText("")
        self.status.setText("")
        self.map_text = ""
        self.triptych.clear("")
        self.triptych.setVisible(False)
        self.map.clear()
        self.map.setVisible(False)
        self.controls.setVisible(False)
        self.attack_button.setEnabled(False)

    def show_tile(
        self, tile, probability: float, call: str, positive: str, flip_k: float | None = None, unsure: bool = False
    ) -> None:
        """The tile's place and its call (``flip_k``: its flip eps in /255 units from the robustness map, None
        without a map; ``unsure``: inside the review band); its picture and its attack arrive later
        (``show_input``/``show_attack``)."""
        self.where.setText(
            f"Column {tile.col}, row {tile.row} · x {tile.x:,}, y {tile.y:,} · {tile.size} px · "
            f"{100 * tile.tissue:.0f}% tissue"
        )
        colour = POSITIVE_COLOUR if call == positive else NEGATIVE_COLOUR
        p_text = f"p({escape(positive)}) = {probability:.3f}" + (" · uncertain, review" if unsure else "")
        self.verdict.setText(f"{escape(call)} <span style='font-size:10pt; font-weight:normal'>{p_text}</span>")
        self.verdict.setStyleSheet(f"font-size:12pt; font-weight:bold; color:{colour};")
        self.map_text = f"Robustness map: {flip_phrase(flip_k)}." if flip_k is not None else ""
        self.status.setText(self.map_text)
        self.triptych.clear("")
        self.triptych.setVisible(True)
        self.map.clear()
        self.map.setVisible(True)
        self.controls.setVisible(True)

    def show_input(self, rgb) -> None:
        self.triptych.original.set_array(rgb, "Model input")

    def set_status(self, text: str) -> None:
        """``text`` after what the robustness map says about the tile, if there is a map."""
        self.status.setText(" ".join(t for t in (self.map_text, text) if t))

    def show_attack(self, result: dict) -> None:
        result.setdefault("label_attacked", result["pred_clean"])
        self.triptych.set_result(result, title=" ")

    def attack(self) -> AttackConfig:
        return AttackConfig(self.method.currentData(), self.eps_k.value() / 255)
