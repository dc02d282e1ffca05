"""Slides page: a whole-slide image viewed like QuPath or ASAP, predicted tile by tile, with its heatmap,
its robustness map, and any tile attacked on a click.

Everything that reads the slide or runs a model is a task on the worker pool (open + thumbnail, prediction,
robustness map, one tile read, one tile attacked, export); the viewer's tiles come from its own reader
thread. So the UI thread only draws: the viewer pans and zooms while a prediction runs. The page shares
the app's ONNX model (the open run's, or one opened here or on the Diagnose page).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QMessageBox,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop_app.context import AppContext
from desktop_app.errors import user_message
from desktop_app.pages.base import Page, heading
from desktop_app.pages.slides.tasks import export_outputs, load_slide, predict, read_model, robustness
from desktop_app.pages.slides.tiles import TileSelection
from desktop_app.settings import last_dir, remember_dir
from desktop_app.widgets.model_box import ModelBox
from desktop_app.widgets.progress_panel import ProgressPanel
from desktop_app.widgets.side_column import side_column
from desktop_app.widgets.slide_form import SlideForm
from desktop_app.widgets.slide_info_box import SlideInfoBox
from desktop_app.widgets.slide_summary import SlideSummary
from desktop_app.widgets.slide_tile_panel import SlideTilePanel
from desktop_app.widgets.slide_toolbar import SlideToolbar, zoom_text
from desktop_app.widgets.slide_view import SlideView
from desktop_app.workers import Task
from engine.core.edition import needs_full_edition
from engine.core.errors import EngineError, ModelError
from engine.slides.export import colourise, fragility, robustness_record
from engine.slides.scale import plan_tiles, resolve_scale

SLIDE_FILTER = (
    "Slides (*.svs *.ndpi *.mrxs *.scn *.vms *.vmu *.bif *.svslide *.dcm *.tif *.tiff *.png *.jpg *.jpeg);;"
    "All files (*)"
)
HINT = (
    "Open a whole-slide image (.svs, .ndpi, .mrxs, .scn, DICOM, pyramidal TIFF, or a plain image), predict every "
    "tissue tile with the ONNX model and see the heatmap; the robustness map shows how little an attack needs to flip "
    "each call. Research tool, not a medical device: every call must be reviewed by a pathologist."
)


class SlidesPage(Page):
    title = "Slides"
    THUMB_SIDE = 1024  # pixels a side of the thumbnail shown at once (read from a low pyramid level)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.slide_path: Path | None = None
        self.info = None
        self.model_info = None  # engine ModelInfo of the app's model, once read
        self.prediction = None
        self.predicted_with: Path | None = None  # the model file of ``prediction``
        self.input_size = 0  # and its input size (pixels a side)
        self.robust_settings: dict | None = None
        self.task: Task | None = None  # the running prediction or robustness map
        self.attacks_available = True  # False in the Diagnose edition (no PyTorch)
        self.export_message: QMessageBox | None = None
        self._opening: Task | None = None
        self._reading: Task | None = None
        self._build()
        self.tiles = TileSelection(self)
        self._connect()
        self._onnx_changed(ctx.state.onnx_path)

    # --- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(heading("Slides", HINT))
        self.toolbar = bar = SlideToolbar()
        layout.addWidget(bar)
        self.open_button, self.overlay_combo, self.opacity = bar.open_button, bar.overlay_combo, bar.opacity
        self.colour_bar, self.zoom_label = bar.colour_bar, bar.zoom_label
        self.view = SlideView()
        self.summary, self.tile_panel = SlideSummary(), SlideTilePanel()
        self._left_column()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(side_column(self.info_box, self.model_box, self.form, self.export_button, stretch=True))
        splitter.addWidget(self.view)
        splitter.addWidget(side_column(self.summary, self.tile_panel))
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([320, 480, 300])
        splitter.setChildrenCollapsible(False)
        layout.addWidget(splitter, 1)
        self.progress = ProgressPanel()
        layout.addWidget(self.progress)

    def _left_column(self) -> None:
        self.info_box, self.model_box, self.form = SlideInfoBox(), ModelBox(), SlideForm()
        self.model_box.picker.setMinimumWidth(120)  # long file names are elided, not widening the column
        self.export_button = QPushButton("Export heatmap, CSV, GeoJSON…")
        self.export_button.setToolTip("heatmap.png, tiles.csv, tiles.geojson (QuPath) and slide.json in a folder")

    def _connect(self) -> None:
        self.open_button.clicked.connect(self.open_slide_dialog)
        self.toolbar.fit_button.clicked.connect(self.view.fit)
        self.toolbar.one_button.clicked.connect(self.view.one_to_one)
        self.toolbar.zoom_in_button.clicked.connect(self._zoom_in)
        self.toolbar.zoom_out_button.clicked.connect(self._zoom_out)
        self.view.view_changed.connect(self._view_changed)
        self.view.clicked.connect(self.tiles.select_at)
        self.summary.tile_chosen.connect(self.tiles.go_to)
        self.overlay_combo.currentIndexChanged.connect(self.show_overlay)
        self.opacity.valueChanged.connect(self._opacity_changed)
        self.model_box.model_chosen.connect(self.ctx.state.set_onnx)
        self.model_box.open_requested.connect(self.open_model_dialog)
        self.form.run_button.clicked.connect(self.run_prediction)
        self.form.robust_button.clicked.connect(self.run_robustness)
        self.form.model_mpp.valueChanged.connect(self._update_tile_hint)
        self.form.slide_mpp.valueChanged.connect(self._update_tile_hint)
        self.export_button.clicked.connect(self.export_dialog)
        self.ctx.state.run_changed.connect(self._refresh_choices)
        self.ctx.state.onnx_changed.connect(self._onnx_changed)

    # --- the slide --------------------------------------------------------------------------------
    def open_slide_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open slide", last_dir(self.ctx.settings, "diagnose"), SLIDE_FILTER)
        if path:
            remember_dir(self.ctx.settings, "diagnose", path)  # a private key: slide names can carry patient ids
            self.open_slide(path)

    def open_slide(self, path: str | Path) -> Task:
        """Open ``path`` on a worker; the view shows its thumbnail as soon as it is read."""
        self._opening = self.start_task("Open slide", load_slide, Path(path), self.THUMB_SIDE)
        self._opening.finished.connect(self._slide_opened)
        self.ctx.state.message.emit(f"Opening {Path(path).name}…")
        return self._opening

    def _slide_opened(self, result: tuple) -> None:
        if self.sender() is not self._opening:
            return  # another slide was opened meanwhile
        self._opening = None
        self.slide_path, self.info, thumbnail = result
        self._forget_prediction("No prediction yet for this slide: Run prediction.")
        self.view.set_slide(self.slide_path, self.info, thumbnail)
        self.info_box.show_info(self.info)
        self._update_tile_hint()
        w, h = self.info.dimensions
        self.ctx.state.message.emit(f"Opened {self.slide_path.name} ({w:,} × {h:,} px, {self.info.level_count} levels)")

    def _forget_prediction(self, text: str) -> None:
        self.prediction = self.robust_settings = None
        self.summary.clear(text)
        self.tiles.clear()
        self.overlay_combo.setCurrentIndex(0)
        self.show_overlay()
        self._update_buttons()

    # --- the view ---------------------------------------------------------------------------------
    def _zoom_in(self) -> None:
        self.view.zoom_by(1.5)

    def _zoom_out(self) -> None:
        self.view.zoom_by(1 / 1.5)

    def _view_changed(self) -> None:
        if self.info is None:
            self.zoom_label.setText("")
            return
        self.zoom_label.setText(zoom_text(self.view.scale_factor(), self.view.level, self.info.objective_power))

    def show_overlay(self) -> None:
        """Draw the chosen overlay (probability or robustness) over the slide, with its colour key."""
        mode, pred = self.overlay_combo.currentData(), self.prediction
        has_map = pred is not None and pred.flip_eps is not None
        self.toolbar.set_robustness_available(has_map)
        if pred is None or mode == "none" or (mode == "robustness" and not has_map):
            self.view.set_overlay(None)
            self.colour_bar.setVisible(False)
            return
        if mode == "robustness":
            rgba = colourise(fragility(pred.robustness_heatmap()))
            self.colour_bar.set_labels("16/255+ robust", "fragile 1/255", "4/255")
        else:
            rgba = colourise(pred.heatmap())
            negative = next(c for c in pred.classes if c != pred.positive)
            self.colour_bar.set_labels(f"0 {negative}", f"1 {pred.positive}", "0.5")
        self.colour_bar.setVisible(True)
        self.view.set_overlay(rgba, pred.cell, self.opacity.value() / 100)  # a cell: one stride

    def _opacity_changed(self, value: int) -> None:
        self.view.set_overlay_opacity(value / 100)

    # --- the model --------------------------------------------------------------------------------
    def _refresh_choices(self, _run=None) -> None:
        run = self.ctx.state.run
        choices = [(f"Model {name} — {path.name}", path) for name, path in sorted(run.onnx.items())] if run else []
        self.model_box.set_choices(choices, self.ctx.state.onnx_path)

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open ONNX model", last_dir(self.ctx.settings, "onnx"), "ONNX models (*.onnx)"
        )
        if path:
            remember_dir(self.ctx.settings, "onnx", path)
            self.ctx.state.set_onnx(path)  # the app's model: the Diagnose page uses it too

    def _onnx_changed(self, path: Path | None) -> None:
        """Read the app's model's metadata on a worker. The Diagnose page reads every model the app opens and
        reports one that cannot be used in the error dialog; this page says so in its model box only, so the
        user gets one dialog, not one per page (hence the plain task runner, not ``start_task``)."""
        self._refresh_choices()
        self.model_info, self._reading = None, None
        self.model_box.show_loading(path)
        if path is not None:
            self._reading = self.ctx.tasks.start("Read ONNX model", read_model, path)
            self._reading.finished.connect(self._model_read)
            self._reading.failed.connect(self._model_failed)
        self._update_buttons()

    def _model_read(self, info) -> None:
        if self.sender() is self._reading:
            self._reading, self.model_info = None, info
            self.model_box.show_info(info)
            self._update_tile_hint()
            self._update_buttons()

    def _model_failed(self, exc: BaseException, details: str) -> None:
        if self.sender() is self._reading and self.ctx.state.onnx_path is not None:
            self._reading = None
            self.model_box.show_error(self.ctx.state.onnx_path, user_message(exc))

    def _update_tile_hint(self) -> None:
        """The tile the model will see, and where its scale comes from; a scale that would be refused, in words."""
        if self.info is None or self.model_info is None:
            self.form.tile_hint.setText("Open a slide and a model to see the tile size.")
            return
        meta, form = self.model_info.meta, self.form
        try:
            scale = resolve_scale(
                self.info, meta.mpp, model_mpp=form.model_mpp_value(), slide_mpp=form.slide_mpp_value()
            )
            plan = plan_tiles(self.info, scale, meta.image_size, warn=False)
        except EngineError as exc:
            form.tile_hint.setText(f"Cannot predict: {user_message(exc)}")
            return
        form.tile_hint.setText(
            f"One tile = {plan.side} × {plan.side} slide px, read at level {plan.level} ({scale.describe()})."
        )

    # --- prediction and robustness ----------------------------------------------------------------
    def _update_buttons(self) -> None:
        idle = self.task is None
        self.form.run_button.setEnabled(idle and self.info is not None and self.model_info is not None)
        can_map = idle and self.prediction is not None and self.attacks_available
        self.form.robust_button.setEnabled(can_map)
        self.export_button.setEnabled(idle and self.prediction is not None)
        self.open_button.setEnabled(idle)
        self.form.hint.setText(
            "" if self.attacks_available else needs_full_edition("The robustness map").split(", which")[0] + "."
        )

    def run_prediction(self) -> Task | None:
        if not self.form.run_button.isEnabled():
            return None
        self._forget_prediction("Predicting…")
        model = self.model_info.path
        self._task_size = self.model_info.meta.image_size
        kw = {"model_mpp": self.form.model_mpp_value(), "slide_mpp": self.form.slide_mpp_value()}
        kw["min_tissue"] = self.form.min_tissue.value() / 100
        kw.update(self.form.tiling_options())
        self.task = self.start_task("Predict slide", predict, self.slide_path, model, **kw)
        self.task.finished.connect(self._predicted)
        return self._follow(self.task, "Opening the model and finding tissue…", model)

    def _follow(self, task: Task, text: str, model: Path) -> Task:
        self._task_model = model
        self.progress.follow(task, text)
        task.cancelled.connect(self._task_cancelled)
        task.ended.connect(self._task_ended)
        self._update_buttons()
        return task

    def _predicted(self, prediction) -> None:
        self.prediction, self.predicted_with, self.input_size = prediction, self._task_model, self._task_size
        self.tiles.index_tiles(prediction)
        self.summary.set_prediction(prediction)
        self.overlay_combo.setCurrentIndex(self.overlay_combo.findData("probability"))
        self.show_overlay()
        s = prediction.summary(top=0)
        self.ctx.state.message.emit(f"Predicted {s['tissue_tiles']:,} tissue tiles: {s['positive_tiles']:,} positive")

    def show_saved_prediction(self, prediction, model: Path, input_size: int) -> None:
        """Show a prediction saved earlier (a cohort's slide) over the open slide, as if it had been run here."""
        self._task_model, self._task_size = Path(model), input_size
        self._predicted(prediction)
        self._update_buttons()

    def run_robustness(self) -> Task | None:
        if not self.form.robust_button.isEnabled():
            return None
        attack, limit = self.form.robustness_attack()
        self.task = self.start_task(
            "Robustness map", robustness, self.slide_path, self.predicted_with, self.prediction, attack, limit=limit
        )
        self.task.finished.connect(self._robustness_done)
        self._pending_settings = robustness_record(attack)
        return self._follow(self.task, "Loading the model's checkpoint for the attack…", self.predicted_with)

    def _robustness_done(self, flip_eps) -> None:
        if self.prediction is None:
            return
        self.prediction.flip_eps, self.robust_settings = flip_eps, self._pending_settings
        self.summary.set_prediction(self.prediction, self.robust_settings)
        self.overlay_combo.setCurrentIndex(self.overlay_combo.findData("robustness"))
        self.show_overlay()
        self.tiles.refresh()

    def _task_cancelled(self) -> None:
        if self.prediction is None:
            self.summary.clear("Prediction cancelled: no results. Run prediction again when ready.")
        self.ctx.state.message.emit(f"{self.sender().name} cancelled")

    def _task_ended(self) -> None:
        if self.sender() is self.task:
            self.task = None
        self._update_buttons()

    def cancel(self) -> None:
        self.progress.cancel()

    # --- export -----------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Export the slide's heatmap, CSV and GeoJSON into", last_dir(self.ctx.settings, "predictions")
        )
        if folder:
            remember_dir(self.ctx.settings, "predictions", Path(folder) / "x")
            self.export_to(Path(folder) / self.slide_path.stem)

    def export_to(self, folder: Path) -> Task | None:
        """Write heatmap.png, tiles.csv, tiles.geojson, slide.json (and robustness.png) into ``folder``."""
        if self.prediction is None:
            self.ctx.errors.show("Export", ModelError("there is no prediction to export; run a prediction first"))
            return None
        args = (self.prediction, folder, self.predicted_with, self.robust_settings)
        task = self.start_task("Export slide results", export_outputs, *args)
        task.finished.connect(self._exported)
        return task

    def _exported(self, paths: dict) -> None:
        names = "<br>".join(escape(str(p)) for p in paths.values())
        box = QMessageBox(QMessageBox.Icon.Information, "HistoGuard - Export", "", parent=self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(f"Saved {len(paths)} files:<br>{names}")
        box.open()  # not blocking: workers and the viewer go on
        self.export_message = box
        self.ctx.state.message.emit(f"Saved {', '.join(paths)} in {next(iter(paths.values())).parent}")

    # --- Diagnose edition -------------------------------------------------------------------------
    def limit_to_onnx(self) -> None:
        """The Diagnose edition has no PyTorch: no robustness map, no tile attack (both are white-box)."""
        self.attacks_available = False
        self.tiles.attacks_available = False
        self.tile_panel.attack_button.setToolTip(needs_full_edition("The tile attack"))
        self._update_buttons()
