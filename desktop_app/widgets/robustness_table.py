"""The reviewer's robustness table (report.json "robustness" rows): one view at a time, the same text cells as
report.md / report.html (``engine.report.robustness``), and the row dict behind each line.

Views: "attacks" (the worst case over every attack, white-box, black-box and the random-noise baselines),
"transfer" (adversarial images made on another model), "natural" (stain, blur, JPEG), "compare" (the paired
comparisons of the models on the same images) and "min_eps" (the smallest eps that flips each image, one line
per model). Metrics carry their 95% intervals as the reports print them. Selecting a line emits
``row_chosen(row)``, so the page can show that row's confusion matrix (a comparison or min_eps line has none).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from engine.report.robustness import (
    COMPARE_HEADER,
    HEADER,
    MIN_EPS_HEADER,
    NATURAL_HEADER,
    comparison_rows,
    min_eps_rows,
    natural_rows,
    sorted_rows,
    table_rows,
)

VIEWS = {  # key -> (menu text, kinds)
    "attacks": (
        "Worst case, white-box, black-box and random-noise baselines",
        ("worst-case", "white-box", "black-box", "baseline"),
    ),
    "transfer": ("Transfer: adversarial images made on another model", ("transfer",)),
    "strong": ("Strong evaluation: APGD-CE, APGD-margin and Square on a fixed subset", ("strong",)),
    "natural": ("Natural perturbations: stain, blur, JPEG", ("natural",)),
    "compare": ("Paired comparisons: which model is more accurate on the same images", ()),
    "min_eps": ("Smallest eps that flips each image (PGD), per model", ()),
}
HEADERS = {"natural": NATURAL_HEADER, "min_eps": MIN_EPS_HEADER, "compare": COMPARE_HEADER}
HELP = {
    "threat": "every attack: the worst case per image over all attacks at this eps (an image counts as right "
    "only if it survived them all); white-box: the model's own gradients; black-box: queries to its ONNX file "
    "only; transfer: adversarial images made on another model; random: noise of the same size (a control, "
    "not an attack)",
    "eps": "largest change of a pixel, in k/255 of the pixel range (PGD-L2: the L2 radius)",
    "clean acc": "accuracy on the same images without any change",
    "robust acc": "accuracy under this attack",
    "accuracy": "accuracy under this perturbation",
    "sens": "sensitivity: share of positive (cancer) images called positive",
    "spec": "specificity: share of negative images called negative",
    "missed": "missed-cancer rate: share of positive images called negative (1 - sensitivity)",
    "median min eps": "half of the correctly classified images flip at or below this eps (PGD); >max: most never do",
    "quartiles": "a quarter of the images flip at or below the first value, three quarters at or below the second",
    "wrong without attack": "images already misclassified clean (no eps needed, left out of the distribution)",
    "not flipped at max": "images whose prediction no eps up to the largest tried could change",
    "difference (95% CI)": "accuracy of the first model minus the second on the same images, with its "
    "patient-level paired bootstrap interval: an interval that excludes 0 is a real difference",
    "McNemar p": "exact McNemar test on the images only one model gets right (small: unlikely to be chance; "
    "it treats images as independent)",
    "right for one only": "images only the first / only the second model gets right",
}


def ordered_rows(section: dict, view: str) -> list[dict]:
    """The row dicts of ``view`` in the order the engine's tables list them."""
    if view == "min_eps":
        return [{"model": m, **s} for m, s in sorted(section.get("min_eps", {}).items())]
    if view == "compare":
        return list(section.get("comparisons", []))
    return sorted_rows(section, VIEWS[view][1])


def row_cells(section: dict, row: dict, view: str) -> list[str]:
    """The engine's text cells of one row (its clean accuracy looked up in the section)."""
    if view == "min_eps":
        return min_eps_rows({"min_eps": {row["model"]: row}})[0]
    if view == "compare":
        return comparison_rows({"comparisons": [row]})[0]
    one = {"rows": [*(r for r in section.get("rows", []) if r["kind"] == "clean"), row]}
    return natural_rows(one)[0] if view == "natural" else table_rows(one, VIEWS[view][1])[0]


class RobustnessTable(QTableWidget):
    row_chosen = Signal(object)  # the report row dict of the selected line

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(HEADER), parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(20)
        font = self.font()
        font.setPointSizeF(font.pointSizeF() - 1)  # eleven columns beside the confusion matrix
        self.setFont(font)
        self.horizontalHeader().setStretchLastSection(True)
        self.rows: list[dict] = []
        self.view = "attacks"
        self.itemSelectionChanged.connect(self._selection_changed)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override): rows scroll; the plots below need the room
        return QSize(700, 200)

    def set_section(self, section: dict, view: str = "attacks") -> None:
        self.view = view
        header = HEADERS.get(view, HEADER)
        self.clear()
        self.setColumnCount(len(header))
        self.setHorizontalHeaderLabels(list(header))
        for col, name in enumerate(header):
            self.horizontalHeaderItem(col).setToolTip(HELP.get(name, ""))
        self.rows = ordered_rows(section, view)
        self.setRowCount(len(self.rows))
        for i, row in enumerate(self.rows):
            for col, text in enumerate(row_cells(section, row, view)):
                item = QTableWidgetItem(text)
                if col >= 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(i, col, item)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

    def cells(self, row: int) -> list[str]:
        return [self.item(row, c).text() for c in range(self.columnCount())]

    def _selection_changed(self) -> None:
        rows = {i.row() for i in self.selectedIndexes()}
        if len(rows) == 1:
            self.row_chosen.emit(self.rows[rows.pop()])
