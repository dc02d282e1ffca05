"""A few example images per class, one row per class with the class named at the left.

``pick_examples`` chooses the files (spread over patients and magnifications) and ``load_thumbnails``
decodes them on a worker into small uint8 arrays; a file that could not be decoded keeps its place with
the reason, so a corrupt image is visible rather than silently missing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from desktop_app.errors import user_message
from desktop_app.widgets.image_view import ImageView
from engine import api
from engine.core.errors import EngineError
from engine.core.progress import check_cancel, report


@dataclass(frozen=True)
class Thumbnail:
    """One decoded example: ``image`` is None when the file could not be decoded (``caption`` says why)."""

    image: np.ndarray | None
    caption: str
    tooltip: str = ""


# --- choosing and decoding (worker side: plain Python, no widgets) ---------------------------------------
def load_thumbnails(
    picks: dict[str, list[tuple[Path, str]]], size: int, *, on_progress=None, cancel=None
) -> dict[str, list[Thumbnail]]:
    """Decode the chosen files into small RGB arrays; a file that cannot be decoded keeps its slot with the reason."""
    total, done, out = sum(len(v) for v in picks.values()), 0, {}
    for label, items in picks.items():
        out[label] = []
        for path, caption in items:
            check_cancel(cancel, "loading example images")
            out[label].append(_thumbnail(Path(path), caption, size))
            done += 1
            report(on_progress, "example images", done, total, unit="images")
    return out


def _thumbnail(path: Path, caption: str, size: int) -> Thumbnail:
    try:
        image = api.load_rgb(path)
    except (EngineError, OSError) as exc:
        return Thumbnail(None, f"cannot decode {path.name}", user_message(exc))
    image.thumbnail((size, size))
    return Thumbnail(np.array(image, dtype=np.uint8), caption, str(path))


def pick_examples(dataset, per_class: int) -> dict[str, list[tuple[Path, str]]]:
    """A few images per class from as many patients (and magnifications) as possible, deterministically."""
    out = {}
    for label in dataset.classes:
        by_patient: dict[str, list] = defaultdict(list)
        for r in dataset.records:
            if r.label == label:
                by_patient[r.patient_id or ""].append(r)
        groups = [sorted(by_patient[k], key=_record_order) for k in sorted(by_patient)]
        out[label] = [(r.path, _caption(r)) for r in _spread(groups, per_class)]
    return out


def _spread(groups: list[list], n: int) -> list:
    """Take one record per group in turn; within a group start at a different offset for each group and
    step through it evenly, so the picks cover different magnifications rather than the first files."""
    rounds = -(-n // max(len(groups), 1))
    chosen, seen = [], set()
    for i in range(rounds):
        for k, g in enumerate(groups):
            idx = (k * len(g) // len(groups) + i * len(g) // rounds) % len(g)
            if id(g[idx]) not in seen and len(chosen) < n:
                seen.add(id(g[idx]))
                chosen.append(g[idx])
    return chosen


def _record_order(record) -> tuple:
    mag = (record.magnification or "").rstrip("X")
    return (int(mag) if mag.isdigit() else 1 << 30, str(record.path))


def _caption(record) -> str:
    parts = [record.patient_id or record.path.name, record.magnification]
    return " · ".join(p for p in parts if p)


# --- the widget -------------------------------------------------------------------------------------------
class ThumbnailGrid(QWidget):
    """``show_loading(classes)`` then ``set_rows({class: [Thumbnail, ...]})``; ``views[class]`` holds the
    ImageViews of a row (tests read ``has_image()`` and the captions)."""

    def __init__(self, per_class: int = 4, size: int = 84, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.per_class, self.size = per_class, size
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(6)
        self.views: dict[str, list[ImageView]] = {}
        self.row_labels: dict[str, QLabel] = {}

    def show_loading(self, classes: Sequence[str], positive: str) -> None:
        self._rebuild(classes, positive)
        for views in self.views.values():
            for view in views:
                view.clear("loading…")

    def set_rows(self, rows: dict[str, list[Thumbnail]], positive: str) -> None:
        self._rebuild(list(rows), positive)
        for label, thumbs in rows.items():
            for view, thumb in zip(self.views[label], thumbs):
                view.setToolTip(thumb.tooltip)
                if thumb.image is None:
                    view.clear(thumb.caption)
                    view.picture.setText("cannot\ndecode")
                else:
                    view.set_array(thumb.image, thumb.caption)
            for view in self.views[label][len(thumbs) :]:
                view.clear("")

    def _rebuild(self, classes: Sequence[str], positive: str) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.views, self.row_labels = {}, {}
        for row, label in enumerate(classes):
            role = "positive (disease) class" if label == positive else "negative class"
            name = QLabel(f"<b>{label}</b><br><span style='color:#555'>{role}</span>")
            name.setWordWrap(True)
            name.setFixedWidth(92)
            name.setAlignment(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft)
            self.grid.addWidget(name, row, 0)
            self.row_labels[label] = name
            self.views[label] = []
            for col in range(self.per_class):
                view = ImageView(min_size=self.size)
                view.picture.setFixedHeight(self.size)
                view.caption.setStyleSheet("font-size: 11px;")
                self.grid.addWidget(view, row, col + 1)
                self.grid.setColumnStretch(col + 1, 1)
                self.views[label].append(view)
