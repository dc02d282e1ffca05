"""Diagnose page: run an exported ONNX model (onnxruntime only, offline) on the user's own slide images.

Images come from dialogs or are dropped on the page; the batch runs on a worker with progress and cancel.
Each result row records the model's sha256, the app version, the onnxruntime provider, the time and the
image file's sha256, and the CSV export writes exactly those rows, so a prediction can be traced to the
model file that made it and the image it was made on. A model whose hashes do not match is not opened.
Certify (``certify``) adds each image's randomized-smoothing certificate to its row, the table and the CSV.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop_app.context import AppContext
from desktop_app.errors import user_message
from desktop_app.pages.base import Page, heading
from desktop_app.pages.diagnose.certify import CertifyAction, certificate_summary
from desktop_app.pages.diagnose.explain import ExplainAction
from desktop_app.pages.diagnose.preview import SelectedImage
from desktop_app.settings import last_dir, remember_dir
from desktop_app.state import RunInfo
from desktop_app.widgets.input_list import IMAGE_FILTER, InputList, dropped_paths
from desktop_app.widgets.model_box import ModelBox
from desktop_app.widgets.prediction_table import PredictionTable
from desktop_app.widgets.progress_panel import ProgressPanel
from desktop_app.widgets.review_band import ReviewBand
from desktop_app.workers import Task
from engine import api
from engine.core.errors import DataError, EngineError

DISCLAIMER = (
    "<b>Research tool, not a medical device.</b> Its predictions are not a diagnosis: "
    "every prediction must be reviewed by a pathologist."
)
PREVIEW_SIDE = 1024  # large slide images are shown as a thumbnail of at most this many pixels a side


def read_model(path: Path, *, on_progress=None, cancel=None):
    """What the model file is (``engine.api.read_model_info``; worker). Opening checks the file's integrity: a file
    that does not match its recorded hashes fails here (its error)."""
    return api.read_model_info(path, device="auto")


def predict(model_path: Path, inputs: list[Path], band, *, on_progress=None, cancel=None) -> list[dict]:
    return api.predict_files(model_path, inputs, review_band=band, on_progress=on_progress, cancel=cancel)


def load_preview(path: str, max_side: int, *, on_progress=None, cancel=None) -> tuple[str, object]:
    """``path`` decoded as the model saw it (8-bit RGB) and shrunk to a thumbnail (worker)."""
    import numpy as np

    from engine.data.decode import load_rgb

    img = load_rgb(path)
    img.thumbnail((max_side, max_side))
    return path, np.asarray(img)


class DiagnosePage(Page):
    title = "Diagnose"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.rows: list[dict] = []
        self.classes: list[str] = []
        self.positive = ""
        self.model_info = None  # engine ModelInfo of the chosen model, once read
        self.predicting: Task | None = None
        self._reading: Task | None = None
        self._pending: tuple[list[str], str] = ([], "")
        self._preview_path: str | None = None
        self.predicted_with: Path | None = None  # the model and the inputs of the rows shown (Certify uses them)
        self.predicted_inputs: list[Path] = []
        self.certify = CertifyAction(self)
        self.explain = ExplainAction(self)
        self.setAcceptDrops(True)
        self._build()
        ctx.state.run_changed.connect(self._run_changed)
        ctx.state.onnx_changed.connect(self._onnx_changed)
        self._onnx_changed(ctx.state.onnx_path)

    # --- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(
            heading(
                "Diagnose",
                "Run an exported ONNX model on your own slide images (PNG, JPEG, TIFF), offline. "
                "Drop image files or folders anywhere on this page.",
            )
        )
        self.disclaimer = QLabel(DISCLAIMER)
        self.disclaimer.setObjectName("disclaimer")
        self.disclaimer.setWordWrap(True)
        self.disclaimer.setStyleSheet("background:#fff4ce; border:1px solid #e0c060; padding:6px; color:#4a3b00;")
        layout.addWidget(self.disclaimer)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self._results_box())
        self.selected = SelectedImage()
        self.verdict, self.details, self.image_view = (
            self.selected.verdict,
            self.selected.details,
            self.selected.image_view,
        )
        self.selected.add_below(self.explain.bar)
        right.addWidget(self.selected)
        right.setSizes([340, 290])
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._left_column())
        splitter.addWidget(right)
        splitter.setSizes([330, 790])
        for s in (splitter, right):
            s.setChildrenCollapsible(False)
        layout.addWidget(splitter, 1)
        self.progress = ProgressPanel()
        layout.addWidget(self.progress)
        self.update_buttons()

    def _left_column(self) -> QWidget:
        self.model_box = ModelBox()
        self.model_box.picker.setMinimumWidth(160)  # narrower than its placeholder: the table needs the width
        self.model_box.model_chosen.connect(self._model_chosen)
        self.model_box.open_requested.connect(self._open_onnx)
        box = QGroupBox("Images")
        self.inputs = InputList()
        self.inputs.setMinimumHeight(48)  # it gives way first: the model's description above must not be squeezed
        self.inputs.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.add_images_button = QPushButton("Add images…")
        self.add_folder_button = QPushButton("Add folder…")
        self.clear_button = QPushButton("Clear")
        self.add_images_button.clicked.connect(self.add_images_dialog)
        self.add_folder_button.clicked.connect(self.add_folder_dialog)
        self.clear_button.clicked.connect(self.clear_inputs)
        buttons = QHBoxLayout()
        for b in (self.add_images_button, self.add_folder_button, self.clear_button):
            buttons.addWidget(b)
        self.run_button = QPushButton("Run prediction")
        self.run_button.setStyleSheet("font-weight:bold; padding:6px;")
        self.run_button.clicked.connect(self.run_prediction)
        hint = QLabel("PNG, JPEG or TIFF files, or folders (with their subfolders); or drop them on this page.")
        hint.setWordWrap(True)
        inner = QVBoxLayout(box)
        inner.addWidget(hint)
        inner.addWidget(self.inputs, 1)
        inner.addLayout(buttons)
        inner.addWidget(self.run_button)
        column = QWidget()
        col = QVBoxLayout(column)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.model_box)
        col.addWidget(box, 1)
        return column

    def _results_box(self) -> QGroupBox:
        box = QGroupBox("Predictions")
        self.summary = QLabel("No predictions yet: add images, then Run prediction.")
        self.summary.setWordWrap(True)
        self.table = PredictionTable()
        self.table.row_selected.connect(self._row_selected)
        self.band = ReviewBand()
        self.band.band_changed.connect(self._band_changed)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Every row records the model's and the image's sha256, version, provider, time")
        self.export_button.clicked.connect(self.export_csv_dialog)
        inner = QVBoxLayout(box)
        inner.addWidget(self.summary)
        inner.addWidget(self.band)
        inner.addWidget(self.certify.form)
        inner.addWidget(self.table, 1)
        inner.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignRight)
        return box

    # --- the model --------------------------------------------------------------------------------
    def _run_changed(self, run: RunInfo | None) -> None:
        self._refresh_choices()

    def _refresh_choices(self) -> None:
        run = self.ctx.state.run
        choices = [(f"Model {name} — {path.name}", path) for name, path in sorted(run.onnx.items())] if run else []
        self.model_box.set_choices(choices, self.ctx.state.onnx_path)

    def _model_chosen(self, path: Path) -> None:
        if path != self.ctx.state.onnx_path:
            self.ctx.state.set_onnx(path)

    def _open_onnx(self) -> None:
        window = self.window()
        if hasattr(window, "open_onnx_dialog"):
            window.open_onnx_dialog()

    def _onnx_changed(self, path: Path | None) -> None:
        """Read the new model's metadata on a worker (onnxruntime builds a session: not on the UI thread)."""
        self._refresh_choices()
        self.model_info, self._reading = None, None
        self.model_box.show_loading(path)
        if path is not None:
            self._reading = self.start_task("Read ONNX model", read_model, path)
            self._reading.finished.connect(self._model_read)
            self._reading.failed.connect(self._model_failed)
        self.update_buttons()

    def _model_read(self, info) -> None:
        if self.sender() is not self._reading:
            return  # another model was chosen meanwhile
        self._reading, self.model_info = None, info
        self.model_box.show_info(info)
        self.band.set_band(info.meta.review_band, info.meta.positive_class)
        self.certify.model_read(info)
        self.explain.model_read(info)
        self.update_buttons()

    def _model_failed(self, exc: BaseException, details: str) -> None:
        if self.sender() is self._reading and self.ctx.state.onnx_path is not None:
            self._reading = None
            self.model_box.show_error(self.ctx.state.onnx_path, user_message(exc))

    # --- inputs -----------------------------------------------------------------------------------
    def add_inputs(self, paths: list) -> int:
        """Add image files / folders (duplicates are skipped); return how many were new."""
        added = self.inputs.add_paths([Path(p) for p in paths])
        self.update_buttons()
        return added

    def add_images_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Add slide images", last_dir(self.ctx.settings, "diagnose"), IMAGE_FILTER
        )
        if files:
            remember_dir(self.ctx.settings, "diagnose", files[0])
            self.add_inputs(files)

    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Add a folder of images", last_dir(self.ctx.settings, "diagnose")
        )
        if folder:
            remember_dir(self.ctx.settings, "diagnose", Path(folder).parent)
            self.add_inputs([folder])

    def clear_inputs(self) -> None:
        self.inputs.clear()
        self.update_buttons()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if dropped_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 (Qt override)
        event.acceptProposedAction()  # only reached after dragEnterEvent accepted the URLs

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        paths = dropped_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        added = self.add_inputs(paths)
        self.ctx.state.message.emit(f"Added {added} dropped item(s) to the images to diagnose")
        event.acceptProposedAction()

    # --- prediction -------------------------------------------------------------------------------
    def _ready(self) -> bool:
        busy = self.predicting is not None or self.certify.task is not None
        return bool(self.model_info is not None and self.inputs.count() and not busy)

    def update_buttons(self) -> None:
        self.run_button.setEnabled(self._ready())
        self.export_button.setEnabled(bool(self.rows) and self.predicting is None and self.certify.task is None)
        self.certify.update()

    def run_prediction(self) -> Task | None:
        """Predict every listed image with the chosen model on a worker."""
        if not self._ready():
            return None
        meta = self.model_info.meta
        self._pending = (list(meta.classes), meta.positive_class)
        self.predicted_with, self.predicted_inputs = self.model_info.path, self.inputs.paths()
        self._show_rows([])
        self.summary.setText("Predicting…")
        self.predicting = self.start_task(
            "Predict images", predict, self.model_info.path, self.inputs.paths(), self.band.band()
        )
        self.progress.follow(self.predicting, "Opening the model…")
        self.predicting.finished.connect(self._predicted)
        self.predicting.cancelled.connect(self._prediction_cancelled)
        self.predicting.ended.connect(self._prediction_ended)
        self.update_buttons()
        return self.predicting

    def _predicted(self, rows: list[dict]) -> None:
        self.classes, self.positive = self._pending
        self._show_rows(rows)
        self.summary.setText(self._summary_text(rows))
        if rows:
            self.table.selectRow(0)

    def _band_changed(self, band) -> None:
        """Flag the shown rows again with the new band (no new prediction: the probabilities are the same)."""
        if self.rows:
            api.flag_rows(self.rows, self.positive, band)
            self._show_rows(self.rows)
            self.summary.setText(self._summary_text(self.rows))

    def show_rows_again(self) -> None:
        """Show the rows again after they changed (certificates added), keeping the selected image."""
        selected = self.table.selectionModel().selectedRows()
        chosen = self.table.row_at(selected[0].row()) if selected else None
        self._show_rows(self.rows)  # in the rows' own order
        self.summary.setText(self._summary_text(self.rows))
        if chosen is not None:
            self.table.selectRow(next(i for i, r in enumerate(self.rows) if r is chosen))

    def _prediction_cancelled(self) -> None:
        self.summary.setText("Prediction cancelled: no results.")

    def _prediction_ended(self) -> None:
        self.predicting = None
        self.update_buttons()

    def _show_rows(self, rows: list[dict]) -> None:
        self.rows = rows
        self.table.set_rows(rows, self._pending[1] or "positive")
        self._row_selected(None)

    def _summary_text(self, rows: list[dict]) -> str:
        counts = Counter(r["predicted"] for r in rows if r.get("predicted"))
        parts = [f"{counts.get(c, 0)} {c}" for c in self.classes]
        errors = sum(1 for r in rows if r.get("error"))
        if errors:
            parts.append(f"{errors} unreadable")
        review = sum(1 for r in rows if r.get("review"))
        if review:
            parts.append(f"{review} uncertain (to review first)")
        if certificate_summary(rows):
            parts.append(certificate_summary(rows))
        text = f"{len(rows)} image(s): {', '.join(parts)}"
        return f"{text} — model {rows[0]['model']}, {rows[0]['provider']}" if rows else text

    # --- the selected image -----------------------------------------------------------------------
    def _row_selected(self, row: dict | None) -> None:
        self._preview_path = None
        self.explain.row_changed(row)
        if not self.selected.show_row(row, self.positive) or row is None:
            return
        self._preview_path = row["path"]
        task = self.start_task("Load image", load_preview, row["path"], PREVIEW_SIDE)
        task.finished.connect(self._preview_loaded)

    def _preview_loaded(self, result: tuple) -> None:
        path, rgb = result
        if path == self._preview_path:  # the user may have selected another row meanwhile
            self.image_view.set_array(rgb)

    # --- export -----------------------------------------------------------------------------------
    def export_csv(self, path: str | Path) -> Path:
        """Write the rows (with model sha256, app version, provider, time, image sha256) as CSV, atomically."""
        from engine.core.fileio import write_text

        if not self.rows:
            raise DataError("there are no predictions to export; add images and run a prediction first")
        write_text(path, api.rows_to_csv(self.rows, self.classes))
        self.ctx.state.message.emit(f"Saved {len(self.rows)} predictions to {path}")
        return Path(path)

    def export_csv_dialog(self) -> None:
        start = str(Path(last_dir(self.ctx.settings, "predictions")) / "predictions.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Export predictions", start, "CSV files (*.csv)")
        if not path:
            return
        try:
            self.export_csv(path)
            remember_dir(self.ctx.settings, "predictions", path)
        except (EngineError, OSError) as exc:
            self.ctx.errors.show("Export CSV", exc)
