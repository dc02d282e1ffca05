"""Stress test page: attack one image and see it flip, sweep eps over a set for the run's models, or attack
the deployed ONNX file black-box.

White-box (each model attacked on its own gradients, ``engine.workflows``): one image shows original |
adversarial | amplified perturbation with the prediction before and after; a set (a labelled folder or the
open run's test split) shows accuracy, sensitivity and specificity against eps for every ticked model, and
the images whose prediction flipped (clicking one attacks it again). Every attack of the engine's registry
and the noise baselines can be chosen, targeted towards the negative class (the missed-cancer direction).
Black-box: the Square attack queries an ONNX file through onnxruntime only (``blackbox``). Under the one-image
result, the image's certified radius (randomized smoothing on an ONNX file, ``certify``). All the work runs on
workers.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.pages.base import Page, heading
from desktop_app.pages.stress.blackbox import BlackboxMode, missing_images
from desktop_app.pages.stress.certify import CertifyMode
from desktop_app.pages.stress.explain import ExplainMode
from desktop_app.pages.stress.set_view import SetView
from desktop_app.settings import last_dir, remember_dir
from desktop_app.state import RunInfo
from desktop_app.widgets.blackbox_form import BlackboxForm
from desktop_app.widgets.progress_panel import ProgressPanel
from desktop_app.widgets.stress_form import StressForm
from desktop_app.widgets.triptych import Triptych, eps_caption
from desktop_app.workers import Task
from engine import api
from engine.core.config import AttackConfig
from engine.core.errors import ConfigError, ModelError

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp)"
MODES = (("White-box: the models' own gradients", "white"), ("Black-box: the ONNX file, queries only", "black"))


def _attack_one(
    checkpoint: str, image: str, attack: AttackConfig, *, label=None, on_progress=None, cancel=None
) -> dict:
    return api.attack_image(checkpoint, image, attack, label=label, on_progress=on_progress, cancel=cancel)


def _stress_set(checkpoints: dict, source, attack: AttackConfig, *, eps_values: list, on_progress=None, cancel=None):
    return api.stress_test_set(
        checkpoints, source, attack, eps_values=eps_values, on_progress=on_progress, cancel=cancel
    )


def _match_onnx(onnx: str, checkpoint: str | None = None, **kw) -> tuple[str, Path]:
    found = api.checkpoint_for_onnx(onnx, checkpoint)
    if found is None:
        raise ModelError(f"no checkpoint found for {Path(onnx).name}; choose the best.pt it was exported from")
    return onnx, found


def model_label(path: Path) -> str:
    """'model_a/best.pt' for run checkpoints (every run has a best.pt), else the file name."""
    return f"{path.parent.name}/{path.name}" if path.stem in ("best", "last") else path.name


class StressPage(Page):
    title = "Stress test"

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.form, self.bb_form = StressForm(), BlackboxForm()
        self.progress = ProgressPanel()
        self.results = QTabWidget()  # every result stays: one image, the last set, the last black-box run
        self.single = Triptych(min_size=220)
        self.single.clear("Choose a model, one image and eps, then click Run.")
        self.set_view = SetView()
        self.summary, self.curves, self.flips = self.set_view.summary, self.set_view.curves, self.set_view.flips
        self.flips_title, self.flip_view = self.set_view.flips_title, self.set_view.flip_view
        self.blackbox = BlackboxMode(self, self.bb_form)
        self.bb_view = self.blackbox.view
        self.explain = ExplainMode(self)  # the maps of the one image: did the attack move the model's attention?
        self.results.addTab(self.single, "One image")
        self.results.addTab(self.explain.view, "Maps (one image)")
        self.results.addTab(self.set_view, "Set of images")
        self.results.addTab(self.bb_view, "Black-box (ONNX)")
        self.certify = CertifyMode(self)
        right = QVBoxLayout()
        right.addWidget(self.results, 1)
        right.addWidget(self.certify.panel)
        self.results.currentChanged.connect(self._tab_changed)
        body = QHBoxLayout()
        body.addWidget(self._left_column())
        body.addLayout(right, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(
            heading(
                "Stress test",
                "Attack a model at eps = k/255 (each pixel changed by at most k grey levels of 255) and see which "
                "predictions flip. White-box attacks use each model's own gradients (the worst case for that model); "
                "the black-box Square attack only queries the exported ONNX file, as anyone holding it could.",
            )
        )
        layout.addLayout(body, 1)
        layout.addWidget(self.progress)
        self.set_result: dict | None = None
        self.extra_models: list[tuple[str, str, Path]] = []  # (name, label, checkpoint) opened by the user
        self.task: Task | None = None
        self.flip_task: Task | None = None
        self._connect()
        self._run_changed(ctx.state.run)

    def _left_column(self) -> QWidget:
        self.mode_combo = QComboBox()
        for text, key in MODES:
            self.mode_combo.addItem(text, key)
        self.forms = QStackedWidget()
        self.forms.addWidget(self.form)
        self.forms.addWidget(self.bb_form)
        box = QWidget()
        box.setFixedWidth(310)
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.mode_combo)
        v.addWidget(self.forms, 1)
        return box

    def _connect(self) -> None:
        self.form.run_button.clicked.connect(self.run)
        self.form.choose_button.clicked.connect(self.choose_source)
        self.form.open_checkpoint_button.clicked.connect(self.open_checkpoint_dialog)
        self.form.open_onnx_button.clicked.connect(self.open_onnx_dialog)
        self.flips.flip_chosen.connect(self.show_flip)
        self.form.source_combo.currentIndexChanged.connect(self._source_changed)
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        self.ctx.state.run_changed.connect(self._run_changed)
        self.ctx.state.dataset_changed.connect(self._dataset_changed)

    # --- state --------------------------------------------------------------------------------------
    def _run_changed(self, run: RunInfo | None) -> None:
        """The open run's models first, then those the user opened (kept across runs)."""
        ours = [(n, f"Model {n} — {model_label(p)}", p) for n, p in (run.checkpoints.items() if run else ())]
        self.form.set_models(ours + self.extra_models)
        self.form.paths["split"] = self.bb_form.paths["split"] = run.path if run else None
        self.form.set_source("split" if run else self.form.source()[0])
        self.bb_form.set_source("split" if run else self.bb_form.source()[0])
        self.blackbox.refresh_models()
        self.certify.refresh_models()
        self._dataset_changed()

    def _dataset_changed(self, _dataset=None) -> None:
        """Name the classes of the targeted attack: the run's, else the open dataset's."""
        run, dataset = self.ctx.state.run, self.ctx.state.dataset
        classes = (run.report or {}).get("dataset", {}).get("classes") if run else None
        self.form.set_classes(list(classes or (dataset.classes if dataset is not None else [])) or None)

    def _mode_changed(self) -> None:
        black = self.mode_combo.currentData() == "black"
        self.forms.setCurrentWidget(self.bb_form if black else self.form)
        self.results.setCurrentWidget(self.bb_view if black else self._white_view())

    def _tab_changed(self) -> None:
        """The certificate panel belongs to the one-image result."""
        self.certify.panel.setVisible(self.results.currentWidget() is self.single)

    def limit_to_blackbox(self) -> None:
        """The Diagnose edition has no PyTorch: only the black-box attack on ONNX files can run."""
        white = self.mode_combo.findData("white")
        self.mode_combo.setCurrentIndex(self.mode_combo.findData("black"))
        self.mode_combo.model().item(white).setEnabled(False)
        self.results.setTabEnabled(self.results.indexOf(self.single), False)
        self.results.setTabEnabled(self.results.indexOf(self.set_view), False)
        self.results.setTabEnabled(self.results.indexOf(self.explain.view), False)

    def _white_view(self) -> QWidget:
        return self.single if self.form.source()[0] == "image" else self.set_view

    def _source_changed(self) -> None:
        """Show the result tab that matches the images chosen."""
        self.results.setCurrentWidget(self._white_view())

    # --- choosing models and images -----------------------------------------------------------------
    def choose_source(self) -> None:
        key, _ = self.form.source()
        if key == "image":
            path, _ = QFileDialog.getOpenFileName(
                self, "Choose an image", last_dir(self.ctx.settings, "stress"), IMAGE_FILTER
            )
        else:
            path = QFileDialog.getExistingDirectory(
                self, "Choose a folder of labelled images (<class>/<image>)", last_dir(self.ctx.settings, "stress")
            )
        if path:
            remember_dir(self.ctx.settings, "stress", path)
            self.form.set_source(key, path)

    def open_checkpoint_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open checkpoint", last_dir(self.ctx.settings, "run"), "HistoGuard checkpoints (*.pt)"
        )
        if path:
            self.add_checkpoint(path)

    def add_checkpoint(self, path: str | Path) -> None:
        p = Path(path)
        self._add_model(p.parent.name if p.stem in ("best", "last") else p.stem, model_label(p), p)

    def _add_model(self, name: str, label: str, checkpoint: Path) -> None:
        self.extra_models.append((name, label, checkpoint))
        self.form.models.setCurrentItem(self.form.add_model(name, label, checkpoint))

    def open_onnx_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open ONNX model", last_dir(self.ctx.settings, "onnx"), "ONNX models (*.onnx)"
        )
        if path:
            self.add_onnx(path)

    def add_onnx(self, onnx: str | Path, checkpoint: str | Path | None = None) -> Task | None:
        """Check on a worker that ``checkpoint`` (default: the run-folder place beside ``onnx``) is the one
        ``onnx`` was exported from; ask for it first when there is none there."""
        onnx = Path(onnx)
        if checkpoint is None and not api.checkpoint_beside(onnx).is_file():
            checkpoint = self._ask_checkpoint(onnx)
            if checkpoint is None:
                return None
        task = self.start_task("Check the ONNX model's checkpoint", _match_onnx, str(onnx), checkpoint)
        task.finished.connect(self._onnx_matched)
        return task

    def _onnx_matched(self, result) -> None:
        onnx, checkpoint = Path(result[0]), result[1]
        self._add_model(onnx.stem, f"{onnx.name} (gradients from {model_label(checkpoint)})", Path(checkpoint))

    def _ask_checkpoint(self, onnx: Path) -> str | None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            f"{onnx.name} has no gradients: choose the checkpoint (best.pt) it was exported from",
            str(onnx.parent),
            "HistoGuard checkpoints (*.pt)",
        )
        return path or None

    # --- running (white-box) -----------------------------------------------------------------------
    def run(self) -> Task | None:
        key, path = self.form.source()
        try:
            return self._run_one(path) if key == "image" else self._run_set(key, path)
        except ConfigError as exc:
            self.ctx.errors.show("Stress test", exc)
            return None

    def _run_one(self, image: Path | None) -> Task:
        model = self.form.current_model()
        if model is None:
            raise ConfigError("no model chosen: open a run folder or a checkpoint, and highlight a model")
        if image is None:
            raise ConfigError("no image chosen: click Choose… and pick an image file")
        task = self.start_task("Attack one image", _attack_one, model[1], str(image), self.form.attack())
        task.finished.connect(self._one_done)
        return self._follow(task, f"Attacking {image.name} on {model[0]}…")

    def _run_set(self, key: str, path: Path | None) -> Task:
        models = self.form.checked_models()
        if not models:
            raise ConfigError("no model ticked: tick Model A, B or C (or open a checkpoint)")
        if path is None:
            raise missing_images(key)
        source = api.ImageSource.of_run(path) if key == "split" else api.ImageSource.of_folder(path)
        task = self.start_task(
            "Stress test", _stress_set, models, source, self.form.attack(), eps_values=self.form.eps_values()
        )
        task.finished.connect(self.show_set_result)
        return self._follow(task, f"Stress-testing {', '.join(models)}…")

    def _follow(self, task: Task, text: str) -> Task:
        """Show ``task``'s progress; one attack at a time (both Run buttons wait for it)."""
        self.task = task
        for button in (self.form.run_button, self.bb_form.run_button, self.certify.panel.form.button):
            button.setEnabled(False)
        task.ended.connect(self._task_ended)
        self.progress.follow(task, text)
        return task

    def _task_ended(self) -> None:
        self.task = None
        for button in (self.form.run_button, self.bb_form.run_button, self.certify.panel.form.button):
            button.setEnabled(True)

    # --- results (white-box) ------------------------------------------------------------------------
    def _one_done(self, result: dict) -> None:
        self.single.set_result(result, self._title(result))
        self.explain.attack_done(result)
        self.results.setCurrentWidget(self.single)

    def _title(self, r: dict) -> str:
        return f"<b>{escape(Path(r['image_path']).name)}</b> attacked on {escape(model_label(Path(r['model'])))}"

    def show_set_result(self, result: dict) -> None:
        self.set_result = result
        self.results.setCurrentWidget(self.set_view)
        run = self.ctx.state.run
        self.set_view.show_result(result, synthetic=bool(result.get("synthetic_data") or (run and run.synthetic)))

    def show_flip(self, flip: dict) -> Task | None:
        """Attack the flipped image again (same model, attack settings, eps and label) and show its triptych."""
        if self.set_result is None:
            return None
        r = self.set_result
        checkpoint = r["checkpoints"][flip["model"]]
        self.flip_view.clear(f"Attacking {Path(flip['path']).name} on {flip['model']}…")
        attack = r["attack"].at(flip["eps"])
        task = self.start_task(
            "Attack flipped image", _attack_one, checkpoint, flip["path"], attack, label=flip["label"]
        )
        task.finished.connect(self._flip_done)
        self.flip_task = task
        return task

    def _flip_done(self, result: dict) -> None:
        if self.sender() is not self.flip_task:
            return  # an older click finished after a newer one
        what = "target" if result.get("targeted") else "true label"
        at = eps_caption(result).removeprefix("eps ")  # '8/255' or 'L2 radius 0.5': the title must stay short
        how = f"{result['attack'].info.short} {at}, {what} "
        self.flip_view.set_result(result, f"{self._title(result)} ({escape(how + result['label_attacked'])})")
