"""Accuracy against eps (k/255) per model and attack, from report.json's robustness rows (pyqtgraph).

Models differ in colour, attacks in marker; white-box attacks are solid lines, the random-noise baselines
dotted, the black-box Square attack dash-dotted with stars, and the majority-class baseline a grey dashed
line. Each line starts at the model's clean accuracy (eps 0). PGD-L2 rows are left out: their eps is an
L2 radius, not k/255. The worst case over every attack (an image counts only if it survived them all) is a
dashed line with crosses and carries its 95% interval as a band in the model's colour (without worst-case rows,
the plan's last white-box attack, PGD by default, has the band). A certified section (Model C certified by
randomized smoothing) adds its certified accuracy against the L-inf size its L2 radii cover, in black, dash-dot-dot
with plus markers: a proven lower bound, unlike the attack curves. The legend beside the plot names every line.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QWidget

from desktop_app.widgets.bands import add_band, interval_points
from engine.report.robustness import attack_name

COLOURS = {"A": "#1f77b4", "B": "#d62728", "C": "#2ca02c"}
OTHER_COLOURS = ("#9467bd", "#8c564b", "#e377c2")
CERTIFIED_COLOUR = "#202020"
MARKERS = {"fgsm": "o", "bim": "t", "pgd": "s", "apgd": "d", "square": "star", "worst-case": "x"}
STYLES = {
    "worst-case": Qt.PenStyle.DashLine,
    "white-box": Qt.PenStyle.SolidLine,
    "baseline": Qt.PenStyle.DotLine,
    "black-box": Qt.PenStyle.DashDotLine,
}


def series_of(section: dict) -> dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]:
    """(model, attack, kind) -> (eps in k/255, accuracy), starting at the clean accuracy (eps 0)."""
    clean = {r["model"]: r["accuracy"] for r in section.get("rows", []) if r["kind"] == "clean"}
    points: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for r in section.get("rows", []):
        if r["kind"] in STYLES and r["attack"] != "pgd-l2" and r["accuracy"] is not None and r.get("eps"):
            points.setdefault((r["model"], r["attack"], r["kind"]), []).append((r["eps"] * 255, r["accuracy"]))
    out = {}
    for key, pts in sorted(points.items()):
        if clean.get(key[0]) is not None:
            pts = [(0.0, clean[key[0]]), *pts]
        pts.sort()
        out[key] = (np.array([round(e, 3) for e, _ in pts]), np.array([a for _, a in pts], dtype=float))
    return out


def _intervals(section: dict, model: str, attack: str, kind: str) -> list[tuple[float, list[float] | None]]:
    """(eps in k/255, accuracy interval) of ``model``'s ``kind`` ``attack`` rows, from its clean row on."""
    rows = [r for r in section.get("rows", []) if r["model"] == model]
    out = [(0.0, (r.get("ci") or {}).get("accuracy")) for r in rows if r["kind"] == "clean"]
    out += [(round(r["eps"] * 255, 3), (r.get("ci") or {}).get("accuracy")) for r in rows
            if r["kind"] == kind and r["attack"] == attack]  # fmt: skip
    return sorted(out, key=lambda p: p[0])


def certified_series(certified: dict | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(L-inf k/255, certified accuracy) of a report's certified section's curve; None without one."""
    rows = [r for r in (certified or {}).get("curve", []) if r["accuracy"] is not None]
    if not rows:
        return None
    return np.array([r["linf_255"] for r in rows]), np.array([r["accuracy"] for r in rows], dtype=float)


class RobustCurves(pg.GraphicsLayoutWidget):
    """``set_section(report["robustness"], majority_baseline)``; ``series`` holds what is plotted."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(240)
        self.plot_item = self.addPlot(row=0, col=0)
        self.plot_item.setTitle("Accuracy under attack", size="10pt")
        self.plot_item.setLabel("bottom", "eps (k/255 of the pixel range)")
        self.plot_item.setLabel("left", "accuracy")
        self.plot_item.showGrid(x=True, y=True, alpha=0.25)
        self.plot_item.setMouseEnabled(x=False, y=False)
        self.plot_item.hideButtons()
        self.legend = pg.LegendItem(labelTextSize="8pt", verSpacing=-6)
        self.addItem(self.legend, row=0, col=1)
        self.series: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = {}
        self.bands: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.baseline: float | None = None
        self.certified: tuple[np.ndarray, np.ndarray] | None = None

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override): modest, so the robustness tab fits 1280x800
        return QSize(420, 220)

    def set_section(self, section: dict, baseline: float | None = None, certified: dict | None = None) -> None:
        self.plot_item.clear()
        self.legend.clear()
        self.series = series_of(section)
        self.certified = certified_series(certified)
        self.bands = {}
        models = sorted({m for m, _, _ in self.series})
        worst = any(kind == "worst-case" for _, _, kind in self.series)
        banded = "worst-case" if worst else ((section.get("plan") or {}).get("attacks") or ["pgd"])[-1]
        for (model, attack, kind), (x, y) in self.series.items():
            colour = COLOURS.get(model) or OTHER_COLOURS[models.index(model) % len(OTHER_COLOURS)]
            pen = pg.mkPen(colour, width=2 if kind != "baseline" else 1.5, style=STYLES[kind])
            marker = MARKERS.get(attack) if kind != "baseline" else None
            item = self.plot_item.plot(x, y, pen=pen, symbol=marker, symbolBrush=colour, symbolPen=colour,
                                       symbolSize=7)  # fmt: skip
            what = attack_name({"attack": attack}) + (" (random)" if kind == "baseline" else "")
            self.legend.addItem(item, f"{model}: {what}")
            if attack == banded and kind in ("white-box", "worst-case"):
                band = interval_points(_intervals(section, model, attack, kind))
                if add_band(self.plot_item, *band, colour):
                    self.bands[model] = band
        xs = [v for x, _ in self.series.values() for v in x.tolist()]
        if self.certified is not None:
            self._plot_certified(certified)
            xs_all = xs + self.certified[0].tolist()
        else:
            xs_all = xs
        self.baseline = baseline
        if baseline is not None and xs:
            pen = pg.mkPen("#777777", width=1.5, style=Qt.PenStyle.DashLine)
            item = self.plot_item.plot([0, max(xs_all)], [baseline, baseline], pen=pen)
            self.legend.addItem(item, f"majority class ({baseline:.2f})")
        ticks = sorted(set(xs))
        self.plot_item.getAxis("bottom").setTicks([[(k, f"{k:g}") for k in ticks]])
        if xs_all:
            self.plot_item.setXRange(0, max(xs_all), padding=0.03)
        self.plot_item.setYRange(0, 1.05, padding=0)

    def _plot_certified(self, certified: dict) -> None:
        x, y = self.certified
        pen = pg.mkPen(CERTIFIED_COLOUR, width=2.5, style=Qt.PenStyle.DashDotDotLine)
        item = self.plot_item.plot(x, y, pen=pen, symbol="+", symbolBrush=CERTIFIED_COLOUR, symbolPen=CERTIFIED_COLOUR,
                                   symbolSize=9)  # fmt: skip
        self.legend.addItem(item, f"{certified.get('model', 'C')}: certified (σ {certified['sigma']:g}, L2 as L∞)")
        points = [(r["linf_255"], r.get("ci")) for r in certified["curve"] if r["accuracy"] is not None]
        add_band(self.plot_item, *interval_points(points), CERTIFIED_COLOUR)
