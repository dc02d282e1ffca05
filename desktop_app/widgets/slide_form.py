"""The slide page's settings: how tiles are cut for the model (the model's and the slide's resolution, each
empty to use the file's own), and how the robustness map is searched.

Eps is in k/255 (grey levels of 255) as everywhere in the app. The robustness map attacks only the
``top N`` most suspicious tiles by default: a white-box search per tile costs a gradient and a few
forward passes (FGSM) or a bisection of PGD runs, far more than the prediction.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.widgets.mpp_spin import mpp_spin
from engine.core.config import AttackConfig

METHODS = (("FGSM (fast)", "fgsm"), ("PGD (stronger, slower)", "pgd"))
OVERLAPS = (("none (side by side)", 0.0), ("25%", 0.25), ("50% (4x the tiles)", 0.5), ("75% (16x)", 0.75))
OVERLAP_TIP = (
    "How much of a tile its neighbours share. With overlap the heatmap gets finer cells (one per stride), each the "
    "mean probability of the tiles over it; the tiles CSV still lists every tile."
)
TTAS = (("none", "none"), ("flips (4x)", "flips"), ("flips + 90° turns (8x)", "d4"))
TTA_TIP = "Average each tile's probabilities over its flips (4) or flips and 90° turns (8): that many times the work"


def _combo(items, tip: str) -> QComboBox:
    box = QComboBox()
    for text, value in items:
        box.addItem(text, value)
    box.setToolTip(tip)
    return box


def int_spin(lo: int, hi: int, value: int, suffix: str = "", special: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(lo, hi)
    spin.setValue(value)
    spin.setSuffix(suffix)
    if special:
        spin.setSpecialValueText(special)
    return spin


class SlideForm(QWidget):
    """Prediction and robustness settings with their Run buttons (the page connects them)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._prediction_box())
        layout.addWidget(self._robustness_box())

    def _prediction_box(self) -> QGroupBox:
        box = QGroupBox("Prediction")
        self.model_mpp = mpp_spin(
            "from the model",
            "Microns per pixel of the images the model was trained on. With the slide's resolution it decides how "
            "many slide pixels one model tile covers; 'from the model' uses the model file's own value if it has one.",
            step=0.25,
        )
        self.slide_mpp = mpp_spin(
            "from the file",
            "Microns per level-0 pixel of the slide (about 0.25 at 40x, 0.5 at 20x), over what the file records: for "
            "files whose resolution tags are missing or wrong (a TIFF's 72 dpi print resolution reads as 352.8 µm/px).",
        )
        self.min_tissue = int_spin(1, 100, 50, " %")
        self.min_tissue.setToolTip("A tile is predicted when at least this much of it is tissue")
        self.overlap, self.tta = _combo(OVERLAPS, OVERLAP_TIP), _combo(TTAS, TTA_TIP)
        self.tile_hint = QLabel("")
        self.tile_hint.setWordWrap(True)
        self.tile_hint.setStyleSheet("color:#505050;")
        self.run_button = QPushButton("Run prediction")
        self.run_button.setStyleSheet("font-weight:bold; padding:5px;")
        form = QFormLayout(box)
        form.addRow("Model resolution:", self.model_mpp)
        form.addRow("Slide resolution:", self.slide_mpp)
        form.addRow("Min. tissue per tile:", self.min_tissue)
        form.addRow("Tile overlap:", self.overlap)
        form.addRow("Test-time augm.:", self.tta)
        form.addRow(self.tile_hint)
        form.addRow(self.run_button)
        return box

    def _robustness_box(self) -> QGroupBox:
        box = QGroupBox("Robustness map")
        self.method = QComboBox()
        for text, key in METHODS:
            self.method.addItem(text, key)
        self.max_k = int_spin(1, 64, 16, "/255")
        self.max_k.setToolTip("The largest eps searched; a tile that does not flip by then is 'not flipped'")
        self.steps = int_spin(1, 100, 10)
        self.steps.setToolTip("PGD iterations per eps tried")
        self.limit = int_spin(0, 100_000, 50, " tiles", special="all tiles")
        self.limit.setToolTip("Attack only this many tiles, the most suspicious first (highest probability)")
        self.robust_button = QPushButton("Compute robustness map")
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color:#505050;")
        form = QFormLayout(box)
        form.addRow("Attack:", self.method)
        form.addRow("Max. eps:", self.max_k)
        form.addRow("PGD steps:", self.steps)
        form.addRow("Top tiles:", self.limit)
        form.addRow(self.hint)
        form.addRow(self.robust_button)
        self.method.currentIndexChanged.connect(self._method_changed)
        self._method_changed()
        return box

    def _method_changed(self) -> None:
        self.steps.setEnabled(self.method.currentData() == "pgd")

    def tiling_options(self) -> dict:
        """``predict_slide``'s ``overlap`` and ``tta`` as chosen."""
        return {"overlap": self.overlap.currentData(), "tta": self.tta.currentData()}

    def model_mpp_value(self) -> float | None:
        return self.model_mpp.value() or None

    def slide_mpp_value(self) -> float | None:
        return self.slide_mpp.value() or None

    def robustness_attack(self) -> tuple[AttackConfig, int | None]:
        """The map's attack (eps: the largest k/255 searched) and how many of the top tiles (None: all)."""
        attack = AttackConfig(self.method.currentData(), self.max_k.value() / 255, steps=self.steps.value())
        return attack, self.limit.value() or None
