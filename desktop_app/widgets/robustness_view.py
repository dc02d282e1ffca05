"""The Results page's robustness section: gradient-masking checks, the reviewer table (with transfer and natural
perturbations one click away) beside the confusion matrix of the selected line, accuracy against eps per model
and attack, and the distribution of the smallest eps that flips each image (its quartiles in the table's last view).

Everything comes from report.json's "robustness" section; older runs have none and get a short note.
"""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from desktop_app.widgets.confusion_heatmap import ConfusionHeatmap
from desktop_app.widgets.flags_panel import FlagsPanel
from desktop_app.widgets.min_eps_plot import MinEpsPlot
from desktop_app.widgets.robust_curves import RobustCurves
from desktop_app.widgets.robustness_table import VIEWS, RobustnessTable
from engine.report.labels import eps_text
from engine.report.robustness import attack_name, threat

NO_SECTION = (
    "<b>No robustness evaluation in this run.</b> It was made by an older HistoGuard, before the robustness "
    "table (several attacks, transfer, black-box, smallest flipping eps, gradient-masking checks) was added. "
    "Run the experiment again to get it; the study's clean and FGSM results are on the other tab."
)


def plan_text(section: dict, n: int | None) -> str:
    plan = section.get("plan") or {}
    attacks = ", ".join(attack_name({"attack": a}) for a in plan.get("attacks", []))
    eps = ", ".join(eps_text(e) for e in plan.get("eps_values", []))
    images = f" on {n} test images (image level)" if n else ""
    restarts = plan.get("restarts", 1)
    return (
        f"<b>Robustness</b> under {escape(attacks)} at eps {escape(eps)} ({plan.get('steps', '?')} steps, "
        f"{restarts} restart{'s' if restarts != 1 else ''}){images}; hover over a column title for its meaning."
    )


def cm_titles(row: dict) -> tuple[str, str]:
    """('Model B · PGD 8/255', 'white-box, 10 steps') for the heatmap of a table row."""
    if row["kind"] == "natural":
        return f"Model {row['model']} · {attack_name(row)}", f"level {row['level']}"
    many = (row.get("steps") or 0) > 1 and row["kind"] != "black-box"  # a black-box row's "steps" are queries
    steps = f", {row['steps']} steps" if many else ""
    return f"Model {row['model']} · {attack_name(row)} {eps_text(row['eps'])}", f"{threat(row)}{steps}"


class RobustnessView(QWidget):
    """``set_report(report)``: fills every part, or shows ``NO_SECTION`` when the report has no robustness."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.flags = FlagsPanel()
        self.view_combo = QComboBox()
        for key, (text, _) in VIEWS.items():
            self.view_combo.addItem(text, key)
        self.table = RobustnessTable()
        self.table.setMinimumHeight(150)
        self.heatmap = ConfusionHeatmap()
        self.heatmap.setFixedWidth(215)
        self.heatmap.setMinimumHeight(200)  # the whole section fits a 1280x800 window without scrolling
        self.heatmap.setMaximumHeight(260)
        self.curves = RobustCurves()
        self.min_eps = MinEpsPlot()
        for plot in (self.curves, self.min_eps):
            plot.setMinimumHeight(200)
        self.body = self._body()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 8, 4)
        layout.addWidget(self.note)
        layout.addWidget(self.body, 1)
        layout.addStretch(0)  # an older run's note sits at the top, not in the middle
        self.section: dict = {}
        self.classes = ["negative", "positive"]
        self.view_combo.currentIndexChanged.connect(self._view_changed)
        self.table.row_chosen.connect(self.show_row)

    def _body(self) -> QWidget:
        box = QWidget()
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.flags, 0, 0, 1, 2)
        row = QHBoxLayout()
        row.addWidget(QLabel("<b>Show:</b>"))
        row.addWidget(self.view_combo)
        row.addWidget(QLabel("Click a line to see its confusion matrix."), 1)
        grid.addLayout(row, 1, 0, 1, 2)
        grid.addWidget(self.table, 2, 0)
        grid.addWidget(self.heatmap, 2, 1)
        plots = QHBoxLayout()
        plots.addWidget(self.curves, 3)
        plots.addWidget(self.min_eps, 2)
        grid.addLayout(plots, 3, 0, 1, 2)
        grid.setRowStretch(2, 1)
        grid.setRowStretch(3, 1)
        return box

    def set_report(self, report: dict) -> None:
        section = report.get("robustness") or {}
        self.section = section
        self.classes = list((report.get("dataset") or {}).get("classes") or self.classes)
        has = bool(section.get("rows"))
        self.body.setVisible(has)
        clean = [e for e in report.get("evaluations", []) if e.get("level") == "image" and e["condition"] == "clean"]
        self.note.setText(plan_text(section, clean[0]["n"] if clean else None) if has else NO_SECTION)
        if not has:
            return
        self.flags.set_section(section)
        baseline = clean[0].get("majority_baseline") if clean else None
        self.curves.set_section(section, baseline, report.get("certified"))
        self.min_eps.set_min_eps(section.get("min_eps") or {})
        self._view_changed()

    def _view_changed(self) -> None:
        self.table.set_section(self.section, self.view_combo.currentData())
        if self.table.rowCount():
            self.table.selectRow(0)
        else:
            self.heatmap.set_data([[0, 0], [0, 0]], self.classes, "No rows", "this run has none of these")

    def show_row(self, row: dict) -> None:
        if "x" in row:  # a paired comparison: two models, no one confusion matrix
            title = f"Models {row['x']} and {row['y']}"
            self.heatmap.set_data([[0, 0], [0, 0]], self.classes, title, "a comparison: see the table")
            return
        if "confusion_matrix" not in row:  # a min-eps line: a distribution, not one evaluation
            self.heatmap.set_data([[0, 0], [0, 0]], self.classes, f"Model {row['model']}", "no confusion matrix here")
            return
        title, subtitle = cm_titles(row)
        self.heatmap.set_data(row["confusion_matrix"], self.classes, title, subtitle)
