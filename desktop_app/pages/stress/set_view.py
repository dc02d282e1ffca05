"""The Stress page's result for a set of images: accuracy against eps per model, the images whose call flipped
(click one to see it attacked again) and a one-paragraph summary."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from desktop_app.widgets.eps_curves import EpsCurves
from desktop_app.widgets.flips_table import FlipsTable
from desktop_app.widgets.stress_form import L2
from desktop_app.widgets.triptych import Triptych, eps_caption


class SetView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.curves = EpsCurves()
        self.flips = FlipsTable()
        self.flips_title = QLabel("Choose the models and a set of images (a folder or the run's test split), then Run.")
        self.flips_title.setWordWrap(True)
        self.flip_view = Triptych(min_size=80, compact=True)
        self.flip_view.clear("Click a flipped image to see it attacked.")
        bottom = QSplitter(Qt.Orientation.Horizontal)
        table_box = QWidget()
        tv = QVBoxLayout(table_box)
        tv.setContentsMargins(0, 0, 0, 0)
        tv.addWidget(self.flips_title)
        tv.addWidget(self.flips, 1)
        bottom.addWidget(table_box)
        bottom.addWidget(self.flip_view)
        bottom.setStretchFactor(0, 3)
        bottom.setStretchFactor(1, 2)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.curves)
        split.addWidget(bottom)
        split.setSizes([300, 320])
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.summary)
        v.addWidget(split, 1)

    def show_result(self, result: dict, synthetic: bool) -> None:
        """Draw ``engine.api.stress_test_set``'s result."""
        l2 = result["method"] == L2
        self.curves.set_curves(result["curves"], result.get("majority_baseline"), result.get("positive_class"), l2)
        self.flips.set_flips(result["flips"])
        at = eps_caption({"method": result["method"], "eps": result["flip_eps"]})
        self.flips_title.setText(
            f"<b>{len(result['flips'])} prediction(s) flipped at {at}</b> ({escape(result['attack'].describe())}); "
            "click a row to see the image"
        )
        self.flip_view.clear(
            "Click a flipped image to see it attacked." if result["flips"] else "No prediction flipped."
        )
        self.summary.setText(summary_text(result, synthetic))


def summary_text(r: dict, synthetic: bool) -> str:
    parts = []
    for name, points in r["curves"].items():
        clean, last = points[0], points[-1]
        at = eps_caption({"method": r["method"], "eps": last["eps"]})
        parts.append(
            f"<b>{escape(name)}</b>: accuracy {clean['accuracy']:.2f} clean → {last['accuracy']:.2f} at "
            f"{at} ({last['n_flipped']} of {r['n']} flipped)"
        )
    note = " <i>(synthetic demo data: says nothing about diagnosis)</i>" if synthetic else ""
    positive = escape(r.get("positive_class") or "")
    return f"{r['n']} images, positive class <b>{positive}</b>; {escape(r['attack'].describe())}{note}<br>" + "; ".join(
        parts
    )
