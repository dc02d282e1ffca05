"""Train page: configure and run the study (train Model A, FGSM images from A, train Model B on original +
FGSM images, train Model C with adversarial training, evaluate, robustness evaluation, export ONNX, black-box
attack on the ONNX files) on a worker, with stages, live curves, progress and the engine's log.

The run goes into a run folder; Cancel stops within one batch and leaves ``last.pt``, so the same settings
can be resumed later. A finished run (trained here or opened from disk) shows its curves from report.json.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop_app.pages.base import Page, heading
from desktop_app.state import RunInfo
from desktop_app.widgets.log_view import LogView
from desktop_app.widgets.progress_panel import ProgressPanel, format_eta
from desktop_app.widgets.run_folder_field import RunFolderField
from desktop_app.widgets.stage_list import StageList
from desktop_app.widgets.train_form import TrainForm
from desktop_app.widgets.training_curves import TrainingCurves, overfitting_warning
from engine import api
from engine.core.config import DEMO_EPS, DEMO_TRAIN, ExperimentConfig, TrainConfig
from engine.core.errors import ConfigError, EngineError
from engine.core.progress import Progress

log = logging.getLogger(__name__)

HINT = (  # one line at 1280x800
    "Model A: original images; B: plus FGSM images made on A; C: adversarial training. All are then attacked "
    "white-box, by transfer and black-box. Cancel keeps a checkpoint."
)
NO_DATA = "Open a dataset first (Start page, or File › Open dataset folder)."


def run_training(
    cfg: ExperimentConfig, out: Path, *, force: bool, resume: bool, log_handler: logging.Handler, on_progress, cancel
) -> tuple[Path, dict]:
    """Worker: the whole study into ``out``, with the engine's log copied to the page while it runs."""
    logger = logging.getLogger("engine")
    logger.addHandler(log_handler)
    try:
        report = api.run_experiment(cfg, out, force=force, resume=resume, on_progress=on_progress, cancel=cancel)
    finally:
        logger.removeHandler(log_handler)
    return Path(out), report


def _group(title: str, *parts) -> QGroupBox:
    """A titled box with compact margins around widgets and layouts."""
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(8, 4, 8, 6)
    for part in parts:
        if isinstance(part, QWidget):
            layout.addWidget(part)
        else:
            layout.addLayout(part)
    return box


class TrainPage(Page):
    title = "Train"

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.task = None
        self.unavailable: str | None = None  # why training cannot run here (the Diagnose edition)
        self._base, self._template = TrainConfig(), None  # settings the form does not show
        self._defaults_for: bool | None = None  # synthetic or not: which defaults the form holds
        self._last_out: Path | None = None
        self._epoch_seconds: dict[str, list[float]] = {}
        self.form = TrainForm()
        self.folder = RunFolderField(ctx.settings)
        self.start_button = QPushButton("Start training")
        self.start_button.setMinimumHeight(30)
        self.start_hint = QLabel()
        self.start_hint.setWordWrap(True)
        self.dataset_label = QLabel()
        self.dataset_label.setWordWrap(True)
        self.stages = StageList()
        self._plan_shown = True  # the stage list shows the form's plan (not a run's outcome)
        self.progress = ProgressPanel()
        self.eta_label = QLabel("")
        self.curves = TrainingCurves(vertical=True)
        self.log_view = LogView()
        self._build_layout()
        self._connect()
        self._data_changed()
        if ctx.state.run is not None:
            self._run_changed(ctx.state.run)

    # --- layout -------------------------------------------------------------------------------------
    def _build_layout(self) -> None:
        left_widget = self._left_column()
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.curves)
        splitter.addWidget(self.log_view)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        self.log_view.setMinimumHeight(100)
        right = QVBoxLayout()
        right.addWidget(self.progress)
        right.addWidget(self.eta_label)
        right.addWidget(splitter, 1)
        columns = QHBoxLayout()
        columns.addWidget(left_widget)
        columns.addLayout(right, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 10, 16, 10)
        layout.addWidget(heading("Train", HINT))
        layout.addWidget(self.dataset_label)
        layout.addLayout(columns, 1)

    def _left_column(self) -> QScrollArea:
        """Settings, run folder and Start, stages; fits 1280x800, and scrolls rather than cuts on less."""
        start_row = QHBoxLayout()
        start_row.addWidget(self.start_button)
        start_row.addWidget(self.start_hint, 1)
        left = QVBoxLayout()
        left.addWidget(_group("Settings", self.form))
        left.addWidget(_group("Run folder", self.folder, start_row))
        left.addWidget(_group("Stages", self.stages))
        left.addStretch(1)
        left.setContentsMargins(0, 0, 4, 0)
        inner = QWidget()
        inner.setLayout(left)
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFixedWidth(500)
        return scroll

    def _connect(self) -> None:
        state = self.ctx.state
        state.data_config_changed.connect(self._data_changed)
        state.dataset_changed.connect(self._data_changed)
        state.run_changed.connect(self._run_changed)
        self.form.changed.connect(self._refresh)
        self.folder.changed.connect(self._refresh)
        self.start_button.clicked.connect(self.start)

    # --- state in -----------------------------------------------------------------------------------
    def _synthetic(self) -> bool:
        state = self.ctx.state
        if state.dataset is not None:
            return bool(state.dataset.synthetic)
        return bool(state.data_config is not None and state.data_config.demo)

    def _data_changed(self, *_args) -> None:
        cfg, dataset = self.ctx.state.data_config, self.ctx.state.dataset
        if cfg is None:
            self.dataset_label.setText("<b>No dataset open.</b>")
        else:
            synthetic = self._synthetic()
            count = f"{len(dataset.records)} images, " if dataset is not None else ""
            kind = "SYNTHETIC demo data, " if synthetic else ""
            positive = dataset.positive_class if dataset is not None else cfg.positive_class
            where = dataset.root if dataset is not None else (cfg.data or "the synthetic demo")
            self.dataset_label.setText(
                f"<b>Dataset:</b> {where} ({count}{kind}positive class: {positive}; "
                f"split by {cfg.split_level}, {'/'.join(f'{r:.0%}' for r in cfg.ratios)} train/val/test)"
            )
            if self._defaults_for != synthetic and not self.running:
                self._apply_defaults(synthetic)
        self._refresh()

    def _apply_defaults(self, synthetic: bool) -> None:
        """The demo's settings for synthetic data; the engine's defaults otherwise."""
        self._defaults_for = synthetic
        self._base, self._template = (DEMO_TRAIN, None) if synthetic else (TrainConfig(), None)
        self.form.set_from(self._base, DEMO_EPS if synthetic else 4 / 255)
        self.form.set_experiment(None)

    def _run_changed(self, run: RunInfo | None) -> None:
        if run is None or self.running:
            return
        if run.config is not None:
            self._base, self._template, self._defaults_for = run.config.train, run.config, run.synthetic
            self.form.set_from(run.config.train, run.config.eps)
            self.form.set_experiment(run.config)
        self.curves.clear()
        self.stages.reset(run.config)
        self._epoch_seconds.clear()
        self._plan_shown = not run.finished
        if run.finished:
            self.curves.set_training(run.report.get("training", {}))
            self.curves.caption.setText(f"Training curves of the finished run in {run.path}")
            self.stages.show_report(run.report)
            self.folder.new_folder()
        else:
            self.curves.caption.setText(f"{run.path} is not finished: press Resume training to continue it.")
            self.folder.set_path(run.path)
            self.folder.resume_box.setChecked(True)
        self._refresh()

    # --- configuration ------------------------------------------------------------------------------
    def _data_config(self):
        """The open dataset's settings; for an opened unfinished run in its own folder, the run's (a resumed
        run must use exactly the dataset settings it started with)."""
        run = self.ctx.state.run
        if run is not None and not run.finished and run.config is not None and self.folder.path() == run.path:
            return run.config.data
        return self.ctx.state.data_config

    def build_config(self) -> ExperimentConfig:
        """The run's configuration from the dataset settings and the form; ConfigError if invalid."""
        data = self._data_config()
        if data is None:
            raise ConfigError("no dataset is open: open a dataset folder or the demo first, then train")
        train, extra = self.form.train_config(self._base), self.form.experiment_values()
        if self._template is not None:
            return replace(self._template, data=data, train=train, eps=self.form.eps(), **extra)
        return ExperimentConfig(data=data, train=train, eps=self.form.eps(), **extra)

    def _refresh(self) -> None:
        """Enable Start when it can run, and name it after what it will do (start or resume)."""
        try:
            cfg = self.build_config()
        except EngineError:
            cfg = None
        self.folder.refresh(cfg)
        if self._plan_shown and not self.running:
            self.stages.reset(cfg)  # e.g. "Train Model C: skipped" as soon as the defence is 'none'
        has_data = self._data_config() is not None
        self.start_button.setEnabled(has_data and not self.running and not self.unavailable)
        self.start_button.setText("Resume training" if self.folder.will_resume() else "Start training")
        self.start_hint.setText("Needs the full edition" if self.unavailable else "" if has_data else NO_DATA)
        for w in (self.form, self.folder):
            w.setEnabled(not self.running)

    @property
    def running(self) -> bool:
        return self.task is not None

    # --- running ------------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            cfg = self.build_config()
            resume, force = self.folder.plan(cfg)
        except EngineError as exc:
            self.ctx.errors.show("Train", exc)
            return
        out = self.folder.path()
        if not (resume and out == self._last_out):
            self.curves.clear()
            self._epoch_seconds.clear()
        self.stages.reset(cfg)
        self._plan_shown = False
        self._last_out = out
        self.curves.caption.setText(f"Training into {out}")
        self.log_view.append_line(f"--- {'resuming' if resume else 'starting'} the run in {out} ---")
        self.task = self.start_task(
            "Training", run_training, cfg, out, force=force, resume=resume, log_handler=self.log_view.handler()
        )
        self.progress.follow(self.task, "Preparing data…")
        self.task.progress.connect(self._on_progress)
        self.task.finished.connect(self._on_finished)
        self.task.cancelled.connect(self._on_cancelled)
        self.task.failed.connect(self._on_failed)
        self.task.ended.connect(self._on_ended)
        self.eta_label.setText("")
        self._refresh()

    def _on_progress(self, p: Progress) -> None:
        self.stages.on_progress(p)
        if not p.stage.startswith("train Model "):
            return
        model = p.stage.removeprefix("train Model ")[:1]
        if p.unit == "batches" and "loss" in p.metrics:
            self.curves.add_batch(model, p.metrics["epoch"] - 1 + p.done / max(p.total, 1), p.metrics["loss"])
        elif p.unit == "epochs":
            self.curves.add_epoch(model, p.metrics)
            self._epoch_seconds.setdefault(model, []).append(float(p.metrics.get("seconds", 0.0)))
            self.eta_label.setText(self._eta_text(model, p))
            if p.metrics.get("catastrophic_overfitting"):
                self._warn(overfitting_warning(model, p.metrics))

    def _warn(self, text: str) -> None:
        """A training warning in the log and the status bar (the curves show it under their caption too)."""
        self.log_view.append_line(text)
        self.ctx.state.message.emit(text)

    def _eta_text(self, model: str, p: Progress) -> str:
        seconds = self._epoch_seconds[model]
        left = (p.total - p.done) * sum(seconds) / len(seconds)
        text = f"Model {model}: epoch {p.done} of {p.total} done"
        if p.done < p.total:
            text += f", about {format_eta(left)} left for Model {model} (early stopping may end it sooner)"
        return text

    def _on_finished(self, result: tuple[Path, dict]) -> None:
        out, _report = result
        self.task = None
        self.stages.set_all("done")
        self._plan_shown = False
        try:
            run = api.open_run(out)
        except EngineError as exc:
            self.ctx.errors.show("Train", exc)
            return
        self.ctx.state.set_run(run)  # the other pages see the new run; this page shows its curves
        self.eta_label.setText(f"Finished: {out}")
        self.ctx.state.message.emit(f"Training finished; the run is in {out}")

    def _on_cancelled(self) -> None:
        self.task = None
        self.stages.stop("cancelled")
        self.eta_label.setText("Cancelled. The run folder keeps a checkpoint: press Resume training to continue.")
        self.ctx.state.message.emit("Training cancelled; it can be resumed from its run folder")

    def _on_failed(self, _exc, _details) -> None:
        self.task = None
        self.stages.stop("failed")
        self.eta_label.setText("Failed: see the error message and the log below.")

    def _on_ended(self) -> None:
        self.task = None
        self.folder.remember()
        self._refresh()
