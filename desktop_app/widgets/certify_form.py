"""The settings of a randomized-smoothing certificate (``engine.api.certify_files``) in one row: the Certify button,
the noise sigma (the model's own when it has one, else chosen here), n and alpha (``CertifyConfig``'s defaults),
and a hint that says what a certified radius means.

Only widgets and their values: the page starts the work.
"""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from engine.core.config import CertifyConfig

DEFAULTS = CertifyConfig()
DEFAULT_SIGMA = 0.25  # Cohen et al.'s middle setting, for a model that has no sigma of its own
HINT = (
    "Radius: the L2 distance within which the <i>smoothed</i> classifier (the majority call over noisy copies) "
    "provably keeps its call; L∞: the same per pixel value, as k/255; <b>abstain</b>: no certificate."
)
DETAILS = (
    "Randomized smoothing (Cohen et al. 2019). The certificate holds for the smoothed classifier, the call made "
    "most often on noisy copies of the image (noise sigma on [0, 1] images), not for the plain prediction, which "
    "can differ. Within the certified L2 radius (pixel units) no change of the image can change that call, with "
    "probability 1 − alpha; the L∞ column is the change per pixel value that radius covers (radius / √(3·H·W)), "
    "as k/255. 'abstain': the noisy copies do not agree enough to certify anything. It costs about n + "
    f"{DEFAULTS.n0} model runs per image."
)
NOTE_STYLE = "color: palette(mid); font-size: 11px;"


def _label(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet(NOTE_STYLE)
    return label


class CertifyForm(QWidget):
    """``config()`` is the CertifyConfig the widgets hold; ``set_own_sigma`` shows a model's own sigma (locked)."""

    def __init__(self, button_text: str = "Certify", compact: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.button = QPushButton(button_text)
        self.sigma = QDoubleSpinBox()
        self.sigma.setRange(0.01, 1.0)
        self.sigma.setDecimals(3)
        self.sigma.setSingleStep(0.05)
        self.sigma.setValue(DEFAULT_SIGMA)
        self.sigma.setToolTip("Noise standard deviation on [0, 1] images: the model's own when it was trained with "
                              "Gaussian noise (--adversarial gaussian), else this value")  # fmt: skip
        self.sigma_note = _label("")
        self.n = QSpinBox()
        self.n.setRange(10, 1_000_000)
        self.n.setSingleStep(100)
        self.n.setValue(DEFAULTS.n)
        self.n.setToolTip(f"Noisy copies that bound the top class's share (default {DEFAULTS.n}; {DEFAULTS.n0} more "
                          "choose the class). More copies give larger radii and take longer")  # fmt: skip
        self.alpha = QDoubleSpinBox()
        self.alpha.setRange(0.0001, 0.25)
        self.alpha.setDecimals(4)
        self.alpha.setSingleStep(0.001)
        self.alpha.setValue(DEFAULTS.alpha)
        self.alpha.setToolTip(f"The certificate fails with probability at most alpha (default {DEFAULTS.alpha:g})")
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet(NOTE_STYLE)
        self.hint.setToolTip(DETAILS)
        self.button.setToolTip(f"The certified radius of each image, on a worker with Cancel. {DETAILS}")
        self._layout(compact)
        self.set_own_sigma(None)

    def _layout(self, compact: bool) -> None:
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        widgets = (self.button, QLabel("sigma"), self.sigma, self.sigma_note, QLabel("n"), self.n, QLabel("alpha"))
        for w in (*widgets, self.alpha):
            row.addWidget(w)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.hint)
        self.hint.setVisible(not compact)

    def set_own_sigma(self, own: float | None, known: bool = True) -> None:
        """The model's own sigma (``engine.api.model_sigma``): shown and locked; None: choose one (0.25 at first).
        ``known=False``: not read yet, the value is used only if the model has none."""
        self.sigma.setEnabled(own is None)
        if own is not None:
            self.sigma.setValue(own)
            self.sigma_note.setText("(the model's own)")
        else:
            self.sigma_note.setText("(the model has none)" if known else "(if none of its own)")
        self.sigma_note.setToolTip("" if known else "The model's own sigma is used when it has one; this one if not")

    def config(self, sigma: float | None = None) -> CertifyConfig:
        """The settings shown, with ``sigma`` instead of the spin box's when given."""
        return CertifyConfig(sigma=sigma or round(self.sigma.value(), 3), n=self.n.value(), alpha=self.alpha.value())
