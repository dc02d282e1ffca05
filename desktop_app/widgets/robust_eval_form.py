"""The robustness evaluation settings of a study run, in two compact rows: PGD steps and restarts, the
per-image minimal-eps search, and the black-box Square attack on each exported ONNX file.

Kept small on purpose: the report's robustness table is only as cheap or as thorough as these numbers,
and the defaults are the engine's (``ExperimentConfig``), so a run started here matches the CLI's.
"""

from __future__ import annotations

from dataclasses import fields

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QGroupBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from engine.core.config import ExperimentConfig

DEFAULTS = {f.name: f.default for f in fields(ExperimentConfig)}  # without building a config (it needs data)


def _default(name: str):
    return DEFAULTS[name]


def _spin(low: int, high: int, tip: str, suffix: str = "", special: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setSuffix(suffix)
    spin.setToolTip(tip)
    if special:
        spin.setSpecialValueText(special)  # shown at the minimum (0 = off)
    spin.setMaximumWidth(86 if suffix else 64)
    return spin


class RobustEvalForm(QGroupBox):
    """Emits ``changed`` on every edit; ``values()`` gives the ExperimentConfig fields it sets."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Robustness evaluation after training", parent)
        self.pgd_steps = _spin(1, 999, "PGD / BIM / APGD steps of the white-box attacks and the minimal-eps search")
        self.pgd_restarts = _spin(1, 99, "random restarts of PGD (the worst case over restarts counts)")
        self.min_eps_on = QCheckBox("min. eps to")
        self.min_eps_on.setToolTip("search, per test image, the smallest PGD eps that flips its prediction")
        self.min_eps_max = _spin(1, 64, "largest eps searched, in 1/255 steps", " / 255")
        self.bb_images = _spin(0, 9999, "test images attacked black-box (0 = no black-box attack)", "", "off")
        self.bb_queries = _spin(1, 9999, "model queries per image of the Square attack")
        self._layout()
        for spin in (self.pgd_steps, self.pgd_restarts, self.min_eps_max, self.bb_images, self.bb_queries):
            spin.valueChanged.connect(self._edited)
        self.min_eps_on.toggled.connect(self._edited)
        self.set_from(None)

    def _layout(self) -> None:
        """Two independent rows (a grid would align columns and need more width than the page has)."""
        rows = QVBoxLayout(self)
        rows.setContentsMargins(8, 2, 8, 4)
        rows.setSpacing(3)
        pgd = (QLabel("PGD"), self.pgd_steps, QLabel("steps ×"), self.pgd_restarts, QLabel("restarts"))
        black_box = (QLabel("Black-box"), self.bb_images, QLabel("images ×"), self.bb_queries)
        for widgets in (
            (*pgd, self.min_eps_on, self.min_eps_max),
            (*black_box, QLabel("queries (Square attack, ONNX)")),
        ):
            row = QHBoxLayout()
            for w in widgets:
                row.addWidget(w)
            row.addStretch(1)
            rows.addLayout(row)

    def _edited(self, *_args) -> None:
        self.min_eps_max.setEnabled(self.min_eps_on.isChecked())
        self.bb_queries.setEnabled(self.bb_images.value() > 0)
        self.changed.emit()

    def set_from(self, cfg: ExperimentConfig | None) -> None:
        """Show ``cfg``'s settings (a run's), or the engine's defaults for None."""
        get = (lambda name: getattr(cfg, name)) if cfg is not None else _default
        self.pgd_steps.setValue(get("pgd_steps"))
        self.pgd_restarts.setValue(get("pgd_restarts"))
        k = get("min_eps_max")
        self.min_eps_on.setChecked(k > 0)
        self.min_eps_max.setValue(k if k > 0 else _default("min_eps_max"))
        self.bb_images.setValue(get("blackbox_images"))
        self.bb_queries.setValue(get("blackbox_queries"))
        self._edited()

    def values(self) -> dict:
        """The ExperimentConfig fields of this group."""
        return {
            "pgd_steps": self.pgd_steps.value(),
            "pgd_restarts": self.pgd_restarts.value(),
            "min_eps_max": self.min_eps_max.value() if self.min_eps_on.isChecked() else 0,
            "blackbox_images": self.bb_images.value(),
            "blackbox_queries": self.bb_queries.value(),
        }
