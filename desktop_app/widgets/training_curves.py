"""Live training curves: loss and accuracy per epoch for Model A and Model B (pyqtgraph).

Epoch rows come from the engine's per-epoch progress (or a finished run's report) with the keys of
``engine.train.loop.fit``'s history: epoch, train_loss, train_acc, val_loss, val_acc, ... A faint line shows
the training loss of single batches, at fractional epochs, so a long epoch is not a blank wait.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

MODELS = ("A", "B")
COLOURS = {"A": (31, 119, 180), "B": (214, 39, 40)}  # blue / red, told apart by symbol and legend as well
SYMBOLS = {"A": "o", "B": "s"}
KEY_TEXT = (
    "Circles: Model A (clean training); squares: Model B (original + FGSM images). Solid: training set, "
    "dashed: validation set; the faint line is the loss of single training batches."
)
EPOCH_SERIES = {"loss": ("train_loss", "val_loss"), "accuracy": ("train_acc", "val_acc")}


def _pen(model: str, key: str, alpha: int = 255) -> pg.mkPen:
    style = pg.QtCore.Qt.PenStyle.DashLine if key.startswith("val") else pg.QtCore.Qt.PenStyle.SolidLine
    return pg.mkPen((*COLOURS[model], alpha), width=1 if key == "batch_loss" else 2, style=style)


def _label(key: str) -> str:
    return {"train_loss": "train", "val_loss": "validation", "train_acc": "train", "val_acc": "validation"}[key]


class EpochAxis(pg.AxisItem):
    """An x axis with ticks on whole epochs only (no "epoch 1.5")."""

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph override)
        levels = super().tickValues(minVal, maxVal, size)
        whole = [(spacing, [v for v in values if float(v).is_integer()]) for spacing, values in levels]
        return [(spacing, values) for spacing, values in whole if values]


class TrainingCurves(QWidget):
    """Two plots side by side (loss, accuracy); ``add_epoch`` / ``add_batch`` while training,
    ``set_training`` for a finished run's report."""

    def __init__(self, parent: QWidget | None = None, vertical: bool = False) -> None:
        super().__init__(parent)
        self.caption = QLabel("Curves appear here while a model trains, or when a finished run is opened.")
        self.caption.setWordWrap(True)
        self.key = QLabel(KEY_TEXT)
        self.key.setWordWrap(True)
        self.key.setStyleSheet("color: palette(mid);")
        self.loss_plot = self._plot("Loss (log scale)", "loss", (-10, 10))  # loss falls: top right is free
        self.loss_plot.setLogMode(x=False, y=True)
        self.acc_plot = self._plot("Accuracy", "accuracy", (-10, -30))  # accuracy rises: bottom right
        self.acc_plot.setYRange(0, 1.02)
        self.rows: dict[str, list[dict]] = {m: [] for m in MODELS}
        self.batches: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in MODELS}
        self.items: dict[tuple[str, str], pg.PlotDataItem] = {}
        for model in MODELS:
            self._add_items(model)
        plots = QVBoxLayout() if vertical else QHBoxLayout()
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.acc_plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addLayout(plots, 1)
        layout.addWidget(self.key)

    @staticmethod
    def _plot(title: str, y_label: str, legend_offset: tuple[int, int]) -> pg.PlotWidget:
        plot = pg.PlotWidget(title=title, axisItems={"bottom": EpochAxis("bottom")})
        plot.setLabel("bottom", "epoch")
        plot.setLabel("left", y_label)
        plot.getAxis("left").enableAutoSIPrefix(False)  # 0.4 stays 0.4, not 400 x 0.001
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.addLegend(offset=legend_offset, labelTextSize="8pt", colCount=2)
        plot.setMinimumHeight(150)
        return plot

    def _add_items(self, model: str) -> None:
        self.items[(model, "batch_loss")] = self.loss_plot.plot([], [], pen=_pen(model, "batch_loss", 80))
        for plot_name, keys in EPOCH_SERIES.items():
            plot = self.loss_plot if plot_name == "loss" else self.acc_plot
            for key in keys:
                self.items[(model, key)] = plot.plot(
                    [],
                    [],
                    pen=_pen(model, key),
                    symbol=SYMBOLS[model],
                    symbolSize=6,
                    symbolBrush=(*COLOURS[model], 255) if key.startswith("train") else "w",
                    symbolPen=_pen(model, "train"),
                    name=f"Model {model} {_label(key)}",
                )

    # --- data in ------------------------------------------------------------------------------------
    def clear(self) -> None:
        for model in MODELS:
            self.rows[model] = []
            self.batches[model] = ([], [])
        for item in self.items.values():
            item.setData([], [])

    def add_epoch(self, model: str, row: dict) -> None:
        """One epoch's history row of ``model`` ("A" or "B"); a repeated epoch replaces the earlier one."""
        rows = [r for r in self.rows[model] if r.get("epoch") != row.get("epoch")] + [dict(row)]
        self.rows[model] = sorted(rows, key=lambda r: r.get("epoch", 0))
        self._redraw_epochs(model)

    def add_batch(self, model: str, epoch_position: float, loss: float) -> None:
        """The training loss of one batch at ``epoch_position`` (e.g. 2.5 = half-way through epoch 3)."""
        xs, ys = self.batches[model]
        xs.append(epoch_position)
        ys.append(loss)
        self.items[(model, "batch_loss")].setData(xs, ys)

    def set_training(self, training: dict) -> None:
        """A report's ``training`` section: {"A": {"history": [...]}, "B": {...}}."""
        self.clear()
        for model in MODELS:
            for row in (training.get(model) or {}).get("history", []):
                self.rows[model].append(dict(row))
            self._redraw_epochs(model)

    def _redraw_epochs(self, model: str) -> None:
        rows = self.rows[model]
        xs = [float(r["epoch"]) for r in rows]
        for keys in EPOCH_SERIES.values():
            for key in keys:
                self.items[(model, key)].setData(xs, [float(r.get(key, float("nan"))) for r in rows])

    # --- data out (what the plots show) -------------------------------------------------------------
    def series(self, model: str, key: str) -> tuple[list[float], list[float]]:
        """The x and y values the plot item of ``model``'s ``key`` holds (e.g. "val_acc", "batch_loss")."""
        item = self.items[(model, key)]  # xData / yData: the data as given (getData is log-mapped)
        x, y = item.xData, item.yData
        return ([] if x is None else [float(v) for v in x]), ([] if y is None else [float(v) for v in y])

    def epoch_points(self, model: str) -> int:
        return len(self.series(model, "train_loss")[0])
