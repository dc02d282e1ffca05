"""Original | adversarial | perturbation of one attacked image, with the prediction before and after.

The verdict line says in words whether the prediction flipped (never by colour alone); the perturbation
is shown amplified so that a change of eps fills the grey range: black is -eps, white +eps, grey none.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from desktop_app.widgets.image_view import ImageView
from engine.core.catalog import ATTACK_LABELS

FLIPPED_STYLE = "background:#fde2e1; border:1px solid #d9534f; padding:6px; color:#6b1a17;"
UNCHANGED_STYLE = "background:#e3f4e1; border:1px solid #5cb85c; padding:6px; color:#1e4620;"
NEUTRAL_STYLE = "padding:6px;"


def eps_k(eps: float) -> str:
    """0.0313… -> '8/255'; values that are not k/255 as decimals."""
    k = float(eps) * 255
    return f"{round(k)}/255" if abs(k - round(k)) < 1e-4 else f"{float(eps):.4g}"


def eps_caption(r: dict) -> str:
    """'eps 8/255', or 'L2 radius 0.5' for PGD-L2 (whose eps bounds the perturbation's length, not each pixel)."""
    return f"L2 radius {r['eps']:g}" if r.get("method") == "pgd-l2" else f"eps {eps_k(r['eps'])}"


class Triptych(QWidget):
    """``set_result(engine.api.attack_image(...) result)``; ``clear(text)`` empties it."""

    def __init__(self, min_size: int = 120, compact: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.compact = compact  # short captions, for a small triptych beside a table
        self.original = ImageView("Original", min_size)
        self.adversarial = ImageView("Adversarial", min_size)
        self.perturbation = ImageView("Perturbation", min_size)
        self.views = (self.original, self.adversarial, self.perturbation)
        self.title = QLabel("")
        self.title.setWordWrap(True)
        self.verdict = QLabel("")
        self.verdict.setObjectName("verdict")
        self.verdict.setWordWrap(True)
        self.details = QLabel("")
        self.details.setWordWrap(True)
        for label in (self.title, self.verdict, self.details):
            label.setTextFormat(Qt.TextFormat.RichText)
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        for col, view in enumerate(self.views):
            grid.addWidget(view, 0, col)
            grid.setColumnStretch(col, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addLayout(grid, 1)
        layout.addWidget(self.verdict)
        layout.addWidget(self.details)
        self.result: dict | None = None
        self.clear()

    def clear(self, text: str = "") -> None:
        self.result = None
        for view, name in zip(self.views, ("Original", "Adversarial", "Perturbation")):
            view.clear(name)
        self.title.setText(escape(text))
        self.verdict.setText("")
        self.verdict.setStyleSheet(NEUTRAL_STYLE)
        self.details.setText("")

    def set_result(self, r: dict, title: str = "") -> None:
        self.result = r
        self.title.setText(title or escape(str(r["image_path"])))
        images = (r["original"], r["adversarial"], r["perturbation_view"])
        for view, image, caption in zip(self.views, images, self._captions(r)):
            view.set_array(image, caption)
        self._verdict(r)
        self.details.setText(self._details(r))

    def _captions(self, r: dict) -> tuple[str, str, str]:
        eps = r["eps"]
        scale = r.get("view_scale", eps)  # the engine scales the picture by eps; an L2 attack's by its largest change
        gain = f"×{1 / (2 * scale):.0f}" if scale > 0 else "none at eps 0"
        before, after = self._prediction(r, "clean"), self._prediction(r, "adv")
        if self.compact:  # three lines each, so the three pictures line up; the attack is in the title
            return f"Original<br>{before}", f"Adversarial<br>{after}", f"Perturbation<br>amplified<br>{gain}"
        attack = f"{ATTACK_LABELS.get(r['method'], r['method'].upper())}, {eps_caption(r)}"
        return f"Original<br>{before}", f"Adversarial ({attack})<br>{after}", f"Perturbation<br>amplified {gain}"

    def _details(self, r: dict) -> str:
        classes = list(r["classes"])
        positive = r.get("positive_class") or classes[-1]
        i = classes.index(positive)
        return (
            f"p({escape(positive)}): {r['probs_clean'][i]:.3f} → {r['probs_adv'][i]:.3f} · largest pixel change "
            f"(L∞) = {eps_k(r['linf'])}{'; ' if r.get('method') == 'pgd-l2' else ' of '}{eps_caption(r)} · "
            f"{'target class' if r.get('targeted') else 'label attacked'}: {escape(r['label_attacked'])}<br>"
            "<span style='color:#666'>Perturbation: grey = no change, darker = pixel value lowered, "
            "lighter = raised (per colour channel).</span>"
        )

    def _prediction(self, r: dict, which: str) -> str:
        classes, probs, pred = list(r["classes"]), r[f"probs_{which}"], r[f"pred_{which}"]
        p = probs[classes.index(pred)]
        if self.compact:
            return f"<b>{escape(pred)}</b><br>p = {p:.2f}"
        return f"predicted <b>{escape(pred)}</b>, p = {p:.2f}"

    def _verdict(self, r: dict) -> None:
        before, after = escape(r["pred_clean"]), escape(r["pred_adv"])
        if r["pred_clean"] != r["pred_adv"]:
            self.verdict.setText(f"<b>⚠ Prediction flipped:</b> {before} → {after}")
            self.verdict.setStyleSheet(FLIPPED_STYLE)
        else:
            self.verdict.setText(f"<b>✓ Prediction unchanged:</b> {before}")
            self.verdict.setStyleSheet(UNCHANGED_STYLE)

    def has_images(self) -> bool:
        return all(v.has_image() for v in self.views)
