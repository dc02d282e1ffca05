"""A cohort's table (cohort.csv's rows): sortable by any column (numbers as numbers, empty cells last), failed
slides in red with their error as a tooltip; a double-click asks for that slide (``slide_chosen(row index)``)."""

from __future__ import annotations

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

COLUMNS = (
    ("slide", "Slide"),
    ("status", "Status"),
    ("tissue_tiles", "Tissue tiles"),
    ("positive_fraction", "Called {positive}"),
    ("top_k_score", "Score (top {k})"),
    ("uncertain_fraction", "Uncertain"),
    ("median_flip_eps_255", "Median flip eps /255"),
    ("p10_flip_eps_255", "10th pct flip eps /255"),
    ("error", "Error"),
)
FAILED, PENDING = QColor("#fde8e8"), QColor("#8a8a8a")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
INDEX_ROLE = Qt.ItemDataRole.UserRole + 2


def sort_key(column: str, text: str):
    """What a cell sorts by: numbers ("inf" too) for numeric columns, text otherwise; None for an empty cell."""
    if column in ("slide", "status", "error"):
        return text.lower()
    try:
        return float(text) if text else None
    except ValueError:
        return None


class _EmptyLast(QSortFilterProxyModel):
    """Sorts by SORT_ROLE with empty cells (not run, not computed) last in either order."""

    def lessThan(self, left, right) -> bool:  # noqa: N802 (Qt override)
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if a is None or b is None:
            return (
                a is not None and b is None
                if self.sortOrder() == Qt.SortOrder.AscendingOrder
                else a is None and b is not None
            )
        return a < b


def shown(column: str, text: str) -> str:
    if text and column in ("positive_fraction", "uncertain_fraction"):
        return f"{float(text):.1%}"
    return text


class CohortTable(QTableView):
    slide_chosen = Signal(int)  # the row's index in cohort.csv

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.source = QStandardItemModel(self)
        self.proxy = _EmptyLast(self)
        self.proxy.setSourceModel(self.source)
        self.proxy.setSortRole(SORT_ROLE)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        self.setWordWrap(False)  # one line a slide; a long error is elided, whole in its tooltip
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.doubleClicked.connect(self._double_clicked)
        self.set_rows([])

    def set_rows(self, rows: list[dict], positive: str = "positive", k: int | str = 10, robust: bool = False) -> None:
        """Show cohort.csv's rows (dicts of text); the flip eps columns only with a robustness map."""
        columns = [(c, t) for c, t in COLUMNS if robust or "flip" not in c]
        self.columns = [c for c, _ in columns]
        self.source.clear()
        self.source.setHorizontalHeaderLabels([t.format(positive=positive, k=k) for _, t in columns])
        for i, row in enumerate(rows):
            self.source.appendRow([self._item(i, row, c) for c in self.columns])
        self.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # input order until a header is clicked
        self.proxy.sort(-1)

    def _item(self, i: int, row: dict, column: str) -> QStandardItem:
        text = row.get(column) or ""
        item = QStandardItem(shown(column, text))
        item.setData(sort_key(column, text), SORT_ROLE)
        item.setData(i, INDEX_ROLE)
        if column not in ("slide", "status", "error"):
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if row.get("status") == "failed":
            item.setBackground(QBrush(FAILED))
            item.setToolTip(f"failed: {row.get('error', '')}")
        elif row.get("status") == "pending":
            item.setForeground(QBrush(PENDING))
        else:
            item.setToolTip("double-click: open the slide with its heatmap on the Slides page")
        return item

    def row_count(self) -> int:
        return self.source.rowCount()

    def index_at(self, view_row: int) -> int:
        """The cohort.csv row shown at ``view_row`` (after sorting)."""
        return int(self.proxy.index(view_row, 0).data(INDEX_ROLE))

    def _double_clicked(self, index) -> None:
        self.slide_chosen.emit(int(index.data(INDEX_ROLE)))
