"""Live training curves: loss and accuracy per epoch for Models A, B and C (pyqtgraph).

Epoch rows come from the engine's per-epoch progress (or a finished run's report) with the keys of
``engine.train.loop.fit``'s history: epoch, train_loss, train_acc, val_loss, val_acc, ... Model C
(adversarial training) also has val_pgd_acc, drawn as its own dash-dot series, and catastrophic_overfitting:
such an epoch gets a labelled red vertical line on both plots and a warning line under the caption, so it
is not told by colour alone. A faint line shows the training loss of single batches, at fractional epochs,
so a long epoch is not a blank wait. Runs made before Model C existed have only A and B: C stays empty.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

MODELS = ("A", "B", "C")
COLOURS = {"A": (31, 119, 180), "B": (214, 39, 40), "C": (44, 160, 44)}  # also told apart by symbol and legend
SYMBOLS = {"A": "o", "B": "s", "C": "t"}
NAMES = {"A": "Model A (clean)", "B": "Model B (+ FGSM images)", "C": "Model C (adversarial training)"}
PGD_NAME = "Model C under PGD (validation)"
KEY_TEXT = (
    "Solid: training set; dashed: validation set; dash-dot: Model C on validation images under PGD; faint: "
    "loss of single training batches; red dotted vertical line: catastrophic overfitting (PGD accuracy collapsed)."
)
EPOCH_SERIES = {"loss": ("train_loss", "val_loss"), "accuracy": ("train_acc", "val_acc")}
PGD_KEY = "val_pgd_acc"
OVERFIT_PEN = pg.mkPen((200, 0, 0), width=2, style=pg.QtCore.Qt.PenStyle.DotLine)
DASH = pg.QtCore.Qt.PenStyle.DashLine
WARNING_STYLE = "color: #a00000; font-weight: bold;"


def _pen(model: str, key: str, alpha: int = 255) -> pg.mkPen:
    Qt = pg.QtCore.Qt  # noqa: N806
    style = Qt.PenStyle.DashDotLine if key == PGD_KEY else Qt.PenStyle.SolidLine
    if key in ("val_loss", "val_acc"):
        style = Qt.PenStyle.DashLine
    return pg.mkPen((*COLOURS[model], alpha), width=1 if key == "batch_loss" else 2, style=style)


def overfitting_warning(model: str, row: dict) -> str:
    """The warning shown for an epoch flagged with catastrophic overfitting."""
    pgd = row.get(PGD_KEY)
    detail = f": validation accuracy under PGD fell to {pgd:.2f}" if isinstance(pgd, (int, float)) else ""
    return (
        f"⚠ Model {model}, epoch {int(row['epoch'])}: catastrophic overfitting suspected{detail}; "
        "the best earlier epoch is kept."
    )


class EpochAxis(pg.AxisItem):
    """An x axis with ticks on whole epochs only (no "epoch 1.5"), written as integers."""

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph override)
        levels = super().tickValues(minVal, maxVal, size)
        whole = [(spacing, [v for v in values if float(v).is_integer()]) for spacing, values in levels]
        return [(spacing, values) for spacing, values in whole if values]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph override)
        return [f"{int(round(v * scale))}" for v in values]


class LossAxis(pg.AxisItem):
    """A log-scale y axis that labels only 1, 2 and 5 times a power of ten: pyqtgraph labels every minor
    tick within a decade (0.06, 0.07, 0.08, ...), which overlap into an unreadable block."""

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph override)
        strings = super().logTickStrings(values, scale, spacing)
        return [text if _round_mantissa(v) else "" for text, v in zip(strings, values)]


def _round_mantissa(log_value: float) -> bool:
    mantissa = 10 ** (log_value - math.floor(log_value + 1e-9))
    return any(abs(mantissa - m) < 1e-6 * m for m in (1, 2, 5))


class TrainingCurves(QWidget):
    """Two plots (loss, accuracy); ``add_epoch`` / ``add_batch`` while training, ``set_training`` for a
    finished run's report."""

    def __init__(self, parent: QWidget | None = None, vertical: bool = False) -> None:
        super().__init__(parent)
        self.caption = QLabel("Curves appear here while a model trains, or when a finished run is opened.")
        self.caption.setWordWrap(True)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(WARNING_STYLE)
        self.warning.hide()
        self.key = QLabel(KEY_TEXT)
        self.key.setWordWrap(True)
        self.key.setStyleSheet("color: #606060;")
        self.legend_view = pg.GraphicsLayoutWidget()  # one legend above both plots: it never hides a curve
        self.legend = pg.LegendItem(colCount=3, labelTextSize="8pt", frame=False, horSpacing=8, verSpacing=-4)
        self.legend_view.addItem(self.legend)
        self.legend_view.ci.layout.setContentsMargins(0, 0, 0, 0)
        self.legend_view.setFixedHeight(52)
        self.loss_plot = self._plot("Loss (log scale)", "loss", LossAxis("left"))
        self.loss_plot.setLogMode(x=False, y=True)
        self.acc_plot = self._plot("Accuracy", "accuracy")
        self.acc_plot.setYRange(0, 1.02)
        self.rows: dict[str, list[dict]] = {m: [] for m in MODELS}
        self.batches: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in MODELS}
        self.items: dict[tuple[str, str], pg.PlotDataItem] = {}
        self.markers: dict[tuple[str, int], list[pg.InfiniteLine]] = {}  # (model, epoch) -> one line per plot
        for model in MODELS:
            self._add_items(model)
        self._dashed = pg.PlotDataItem([], [], pen=pg.mkPen((90, 90, 90), width=2, style=DASH))  # legend only
        self._sync_legend()
        plots = QVBoxLayout() if vertical else QHBoxLayout()
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.acc_plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.warning)
        layout.addWidget(self.legend_view)
        layout.addLayout(plots, 1)
        layout.addWidget(self.key)

    @staticmethod
    def _plot(title: str, y_label: str, left: pg.AxisItem | None = None) -> pg.PlotWidget:
        axes = {"bottom": EpochAxis("bottom")} | ({"left": left} if left else {})
        plot = pg.PlotWidget(title=title, axisItems=axes)
        plot.setLabel("bottom", "epoch")
        plot.setLabel("left", y_label)
        plot.getAxis("left").enableAutoSIPrefix(False)  # 0.4 stays 0.4, not 400 x 0.001
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setMinimumHeight(150)
        return plot

    def _add_items(self, model: str) -> None:
        """Per model: the faint batch loss, train (solid) and validation (dashed) series; for Model C also
        validation under PGD (dash-dot)."""
        self.items[(model, "batch_loss")] = self.loss_plot.plot([], [], pen=_pen(model, "batch_loss", 80))
        keys = [(plot_name, key) for plot_name, pair in EPOCH_SERIES.items() for key in pair]
        if model == "C":
            keys.append(("accuracy", PGD_KEY))
        for plot_name, key in keys:
            plot = self.loss_plot if plot_name == "loss" else self.acc_plot
            self.items[(model, key)] = plot.plot(
                [],
                [],
                pen=_pen(model, key),
                symbol=SYMBOLS[model],
                symbolSize=6 if key != PGD_KEY else 8,
                symbolBrush=(*COLOURS[model], 255) if key.startswith("train") else "w",
                symbolPen=_pen(model, "train"),
            )

    def _sync_legend(self) -> None:
        """One entry per model that has curves (all three before any data), then the line styles; a run made
        before Model C existed shows no Model C entry."""
        with_data = [m for m in MODELS if self.rows[m] or self.batches[m][0]]
        self.legend.clear()
        for model in with_data or MODELS:
            self.legend.addItem(self.items[(model, "train_acc")], NAMES[model])
        self.legend.addItem(self._dashed, "dashed: validation")
        if "C" in (with_data or MODELS):
            self.legend.addItem(self.items[("C", PGD_KEY)], PGD_NAME)

    def legend_texts(self) -> list[str]:
        return [label.text for _sample, label in self.legend.items]

    # --- data in ------------------------------------------------------------------------------------
    def clear(self) -> None:
        for model in MODELS:
            self.rows[model] = []
            self.batches[model] = ([], [])
        for item in self.items.values():
            item.setData([], [])
        for lines in self.markers.values():
            for plot, line in zip((self.loss_plot, self.acc_plot), lines):
                plot.removeItem(line)
        self.markers.clear()
        self.warning.setText("")
        self.warning.hide()
        self._sync_legend()

    def add_epoch(self, model: str, row: dict) -> None:
        """One epoch's history row of ``model`` ("A", "B" or "C"); a repeated epoch replaces the earlier one."""
        rows = [r for r in self.rows[model] if r.get("epoch") != row.get("epoch")] + [dict(row)]
        self.rows[model] = sorted(rows, key=lambda r: r.get("epoch", 0))
        self._redraw_epochs(model)

    def add_batch(self, model: str, epoch_position: float, loss: float) -> None:
        """The training loss of one batch at ``epoch_position`` (e.g. 2.5 = half-way through epoch 3)."""
        xs, ys = self.batches[model]
        xs.append(epoch_position)
        ys.append(loss)
        self.items[(model, "batch_loss")].setData(xs, ys)
        if len(xs) == 1:
            self._sync_legend()

    def set_training(self, training: dict) -> None:
        """A report's ``training`` section: {"A": {"history": [...]}, "B": {...}, "C": {...} (newer runs)}."""
        self.clear()
        for model in MODELS:
            for row in (training.get(model) or {}).get("history", []):
                self.rows[model].append(dict(row))
            self._redraw_epochs(model)

    def _redraw_epochs(self, model: str) -> None:
        rows = self.rows[model]
        xs = [float(r["epoch"]) for r in rows]
        for (m, key), item in self.items.items():
            if m == model and key != "batch_loss":
                item.setData(xs, [float(r.get(key, float("nan"))) for r in rows])
        for row in rows:
            if row.get("catastrophic_overfitting"):
                self._mark_overfitting(model, row)
        self._sync_legend()

    def _mark_overfitting(self, model: str, row: dict) -> None:
        epoch = int(row["epoch"])
        if (model, epoch) in self.markers:
            return
        lines = []
        for plot, label in ((self.loss_plot, None), (self.acc_plot, f"overfitting ({model}, epoch {epoch})")):
            line = pg.InfiniteLine(pos=epoch, angle=90, pen=OVERFIT_PEN, label=label)
            if label:
                line.label.setColor((170, 0, 0))
                line.label.setPosition(0.15)  # near the bottom: accuracy curves sit near the top
            plot.addItem(line)
            lines.append(line)
        self.markers[(model, epoch)] = lines
        text = "\n".join(filter(None, [self.warning.text(), overfitting_warning(model, row)]))
        self.warning.setText(text)
        self.warning.show()

    # --- data out (what the plots show) -------------------------------------------------------------
    def series(self, model: str, key: str) -> tuple[list[float], list[float]]:
        """The x and y values the plot item of ``model``'s ``key`` holds (e.g. "val_acc", "batch_loss")."""
        item = self.items[(model, key)]  # xData / yData: the data as given (getData is log-mapped)
        x, y = item.xData, item.yData
        return ([] if x is None else [float(v) for v in x]), ([] if y is None else [float(v) for v in y])

    def epoch_points(self, model: str) -> int:
        return len(self.series(model, "train_loss")[0])

    def overfitting_epochs(self, model: str) -> list[int]:
        """Epochs of ``model`` marked with catastrophic overfitting (a vertical line on both plots)."""
        return sorted(epoch for m, epoch in self.markers if m == model)

    def marker_lines(self, model: str, epoch: int) -> list[pg.InfiniteLine]:
        return self.markers.get((model, epoch), [])
