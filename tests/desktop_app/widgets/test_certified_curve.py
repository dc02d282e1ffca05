"""The Results page's accuracy-against-eps plot draws a report's certified curve (Model C's smoothed classifier) in
its own style beside the attack curves, against the L-inf size its radii cover; a report without one draws none."""

from __future__ import annotations

import numpy as np
import pytest

from desktop_app.widgets.robust_curves import CERTIFIED_COLOUR, RobustCurves
from desktop_app.widgets.robustness_view import RobustnessView

ROWS = [
    {"model": "C", "kind": "clean", "attack": "none", "eps": 0.0, "accuracy": 0.9, "ci": {"accuracy": [0.8, 1.0]}},
    {"model": "C", "kind": "white-box", "attack": "pgd", "eps": 4 / 255, "accuracy": 0.5, "ci": {}},
]
CERTIFIED = {
    "model": "C",
    "sigma": 0.25,
    "curve": [
        {"radius": r, "linf_255": r / np.sqrt(3 * 32 * 32) * 255, "accuracy": a, "ci": [a - 0.1, min(a + 0.1, 1)]}
        for r, a in ((0.0, 0.8), (0.25, 0.6), (0.5, 0.3), (1.0, 0.0))
    ],
}


def _legend(curves: RobustCurves) -> list[str]:
    return [label.text for _, label in curves.legend.items]


def test_the_certified_curve_is_drawn_in_its_own_style(qtbot):
    curves = RobustCurves()
    qtbot.addWidget(curves)
    curves.set_section({"rows": ROWS}, 0.5, CERTIFIED)
    x, y = curves.certified
    assert x.tolist() == pytest.approx([r["linf_255"] for r in CERTIFIED["curve"]]) and y.tolist() == [0.8, 0.6, 0.3, 0]
    labels = _legend(curves)
    assert "C: certified (σ 0.25, L2 as L∞)" in labels and "C: PGD" in labels
    pens = [item.opts["pen"] for item in curves.plot_item.listDataItems()]
    certified = [p for p in pens if p.color().name() == CERTIFIED_COLOUR]
    assert len(certified) == 1 and certified[0].style() not in {p.style() for p in pens if p is not certified[0]}
    curves.set_section({"rows": ROWS}, 0.5)
    assert curves.certified is None and not any("certified" in t for t in _legend(curves))


def test_the_robustness_view_passes_the_reports_certified_section(qtbot):
    view = RobustnessView()
    qtbot.addWidget(view)
    clean = {"level": "image", "condition": "clean", "n": 10, "majority_baseline": 0.5}
    view.set_report({"robustness": {"rows": ROWS, "flags": []}, "evaluations": [clean], "certified": CERTIFIED})
    assert view.curves.certified is not None
