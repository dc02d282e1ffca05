"""What a pathologist reads first about a predicted slide: how much tissue, how much of it is called
positive, the most suspicious tiles (click one to go there) and, after the robustness map, how easily the
calls flip."""

from __future__ import annotations

from html import escape

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGroupBox, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

TOP = 10


def eps_text(k: float | None) -> str:
    """A flip eps in /255 units as the app writes it: '3/255', 'not flipped' (inf), '—' (None)."""
    if k is None or (isinstance(k, float) and np.isnan(k)):
        return "—"
    return "not flipped" if np.isinf(k) else f"{round(k)}/255"


def flip_phrase(k: float | None) -> str:
    """'flips at 3/255', 'not flipped' or 'not attacked' (NaN: beyond the map's top tiles)."""
    if k is None or np.isnan(k):
        return "not attacked"
    return "not flipped" if np.isinf(k) else f"flips at {round(k)}/255"


def prediction_html(pred) -> str:
    s = pred.summary(top=0)
    rows, cols = pred.grid
    lines = [
        f"<b>{s['tissue_tiles']:,}</b> tissue tiles of {rows * cols:,} ({cols} × {rows} grid, "
        f"{pred.tile_size} px at level 0, read at level {pred.level})"
    ]
    if pred.stride or pred.tta != "none":  # overlap: the grid counts heatmap cells of one stride, not tiles
        lines[0] = (
            f"<b>{s['tissue_tiles']:,}</b> tissue tiles, read at level {pred.level}: {escape(pred.tiling_text())}"
        )
    if pred.info.scale is not None:  # where the tile's scale came from (engine.slides.scale)
        lines.append(f"Scale: {escape(pred.info.scale.describe())}")
    if s["tissue_tiles"]:
        lines.append(
            f"Called <b>{escape(pred.positive)}</b>: <b>{s['positive_tiles']:,}</b> tiles "
            f"(<b>{100 * s['positive_fraction']:.1f}%</b> of the tissue)"
        )
        low, high = s["review_band"]
        how = "calibrated" if s["calibrated"] else "not calibrated"
        lines.append(
            f"Uncertain (p({escape(pred.positive)}) {low:.2f}–{high:.2f}, {how}): <b>{s['uncertain_tiles']:,}</b> "
            "tiles, to review first"
        )
    return "<br>".join(lines)


def robustness_html(summary: dict, settings: dict) -> str:
    n = summary["tiles_computed"]
    if not n:
        return "Robustness map: no tile attacked."
    how = f"{settings.get('method', '?').upper()}, up to {settings.get('max_k', '?')}/255"
    return (
        f"Robustness ({how}, {n:,} tiles): median flip eps <b>{eps_text(summary['median_flip_eps_255'])}</b><br>"
        f"Fragile (flip at ≤ 2/255): <b>{100 * summary['flipped_at_2_255_fraction']:.0f}%</b>, "
        f"at ≤ 8/255: {100 * summary['flipped_at_8_255_fraction']:.0f}%, not flipped: {summary['not_flipped']:,}"
    )


class SlideSummary(QGroupBox):
    """``set_prediction(pred)``; ``tile_chosen(index into pred.tiles)`` when a top tile is clicked."""

    tile_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Summary", parent)
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.robust = QLabel("")
        self.robust.setWordWrap(True)
        self.robust.setTextFormat(Qt.TextFormat.RichText)
        self.top_title = QLabel("Most suspicious tiles (click to go there):")
        self.top = QListWidget()
        self.top.setMaximumHeight(120)
        self.top.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # long lines are elided
        self.top.itemClicked.connect(self._clicked)
        self.top.itemActivated.connect(self._clicked)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.robust)
        layout.addWidget(self.top_title)
        layout.addWidget(self.top)
        self.clear()

    def clear(self, text: str = "No prediction yet: open a slide and a model, then Run prediction.") -> None:
        self.text.setText(escape(text))
        self.robust.setText("")
        self.robust.setVisible(False)
        self.top.clear()
        self.top_title.setVisible(False)
        self.top.setVisible(False)

    def set_prediction(self, pred, settings: dict | None = None) -> None:
        self.text.setText(prediction_html(pred))
        has_map = pred.flip_eps is not None
        self.robust.setVisible(has_map)
        if has_map:
            self.robust.setText(robustness_html(pred.robustness_summary(), settings or {}))
        self.top.clear()
        order = np.argsort(-pred.probabilities, kind="stable")[:TOP]
        for rank, i in enumerate(order, start=1):
            tile, p = pred.tiles[i], float(pred.probabilities[i])
            text = f"{rank}. p {p:.3f}"
            if has_map:
                text += f" · {flip_phrase(float(pred.flip_eps[i]) * 255)}"
            item = QListWidgetItem(f"{text} · ({tile.x:,}, {tile.y:,})")
            item.setToolTip(f"{pred.predicted(p)}, p({pred.positive}) = {p:.4f}, at x {tile.x}, y {tile.y} (level 0)")
            item.setData(Qt.ItemDataRole.UserRole, int(i))
            self.top.addItem(item)
        self.top_title.setVisible(bool(len(order)))
        self.top.setVisible(bool(len(order)))

    def _clicked(self, item: QListWidgetItem) -> None:
        self.tile_chosen.emit(int(item.data(Qt.ItemDataRole.UserRole)))
