"""Stress test page: attack one image and see it flip, sweep eps over a set for the run's models, or attack
the deployed ONNX file black-box.

White-box (each model attacked on its own gradients, ``engine.stress``): one image shows original |
adversarial | amplified perturbation with the prediction before and after; a set (a labelled folder or the
open run's test split) shows accuracy, sensitivity and specificity against eps for every ticked model, and
the images whose prediction flipped (clicking one attacks it again). Every attack of the engine's registry
and the noise baselines can be chosen, targeted towards the negative class (the missed-cancer direction).
Black-box: the Square attack queries an ONNX file through onnxruntime only (``stress_blackbox``). All the
work runs on workers.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.pages.base import Page, heading
from desktop_app.pages.stress_blackbox import BlackboxMode, missing_images
from desktop_app.settings import last_dir, remember_dir
from desktop_app.state import RunInfo
from desktop_app.widgets.blackbox_form import BlackboxForm
from desktop_app.widgets.eps_curves import EpsCurves
from desktop_app.widgets.flips_table import FlipsTable
from desktop_app.widgets.progress_panel import ProgressPanel
from desktop_app.widgets.stress_form import L2, StressForm
from desktop_app.widgets.triptych import Triptych, eps_caption
from desktop_app.workers import Task
from engine import api
from engine.core.catalog import ATTACK_LABELS
from engine.core.errors import ConfigError, ModelError

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp)"
MODES = (("White-box: the models' own gradients", "white"), ("Black-box: the ONNX file, queries only", "black"))


def _attack_one(checkpoint: str, image: str, *, method: str, eps: float, **kw) -> dict:
    result = api.attack_image(checkpoint, image, method=method, eps=eps, **kw)
    if method == L2 and result["linf"] > 0:  # an L2 change is spread thin: scale its picture by its largest pixel
        scale = result["linf"]
        view = np.clip(0.5 + result["perturbation"] / (2 * scale), 0, 1)
        result.update(perturbation_view=np.round(view * 255).astype(np.uint8), view_scale=scale)
    return result


def _stress_set(checkpoints: dict, images: dict, *, method: str, eps_values: list, **kw) -> dict:
    return api.stress_test_set(checkpoints, images, method=method, eps_values=eps_values, **kw)


def attack_text(r: dict) -> str:
    """'PGD, 10 steps, 1 restart(s), targeted towards benign' from a result's settings."""
    parts = [ATTACK_LABELS.get(r["method"], r["method"])]
    if r.get("steps"):
        parts.append(f"{r['steps']} steps")
    if r.get("restarts", 1) > 1:
        parts.append(f"{r['restarts']} restarts")
    if r.get("target"):
        parts.append(f"targeted towards {r['target']}")
    return ", ".join(parts)


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
        self.set_view = self._set_view()
        self.blackbox = BlackboxMode(self, self.bb_form)
        self.bb_view = self.blackbox.view
        self.results.addTab(self.single, "One image")
        self.results.addTab(self.set_view, "Set of images")
        self.results.addTab(self.bb_view, "Black-box (ONNX)")
        body = QHBoxLayout()
        body.addWidget(self._left_column())
        body.addWidget(self.results, 1)
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

    def _set_view(self) -> QWidget:
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.curves = EpsCurves()
        self.flips = FlipsTable()
        self.flips_title = QLabel("Choose the models and a set of images (a folder or the run's test split), then Run.")
        self.flips_title.setWordWrap(True)
        self.flip_view = Triptych(min_size=80, compact=True)
        self.flip_view.clear("Click a flipped image to see it attacked.")
        bottom = QSplitter(Qt.Orientation.Horizontal)
        table_box = QWidget()
        tv = QVBoxLayout(table_box)
        tv.setContentsMargins(0, 0, 0, 0)
        tv.addWidget(self.flips_title)
        tv.addWidget(self.flips, 1)
        bottom.addWidget(table_box)
        bottom.addWidget(self.flip_view)
        bottom.setStretchFactor(0, 3)
        bottom.setStretchFactor(1, 2)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.curves)
        split.addWidget(bottom)
        split.setSizes([300, 320])
        box = QWidget()
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.summary)
        v.addWidget(split, 1)
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

    def limit_to_blackbox(self) -> None:
        """The Diagnose edition has no PyTorch: only the black-box attack on ONNX files can run."""
        white = self.mode_combo.findData("white")
        self.mode_combo.setCurrentIndex(self.mode_combo.findData("black"))
        self.mode_combo.model().item(white).setEnabled(False)
        self.results.setTabEnabled(self.results.indexOf(self.single), False)
        self.results.setTabEnabled(self.results.indexOf(self.set_view), False)

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
        if checkpoint is None and not api.onnx_checkpoint_candidate(onnx).is_file():
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
        settings = self.form.attack_settings()
        task = self.start_task("Attack one image", _attack_one, model[1], str(image), eps=self.form.eps(), **settings)
        task.finished.connect(self._one_done)
        return self._follow(task, f"Attacking {image.name} on {model[0]}…")

    def _run_set(self, key: str, path: Path | None) -> Task:
        models = self.form.checked_models()
        if not models:
            raise ConfigError("no model ticked: tick Model A, B or C (or open a checkpoint)")
        if path is None:
            raise missing_images(key)
        images = {"run": str(path)} if key == "split" else {"folder": str(path)}
        task = self.start_task(
            "Stress test", _stress_set, models, images, eps_values=self.form.eps_values(), **self.form.attack_settings()
        )
        task.finished.connect(self.show_set_result)
        return self._follow(task, f"Stress-testing {', '.join(models)}…")

    def _follow(self, task: Task, text: str) -> Task:
        """Show ``task``'s progress; one attack at a time (both Run buttons wait for it)."""
        self.task = task
        self.form.run_button.setEnabled(False)
        self.bb_form.run_button.setEnabled(False)
        task.ended.connect(self._task_ended)
        self.progress.follow(task, text)
        return task

    def _task_ended(self) -> None:
        self.task = None
        self.form.run_button.setEnabled(True)
        self.bb_form.run_button.setEnabled(True)

    # --- results (white-box) ------------------------------------------------------------------------
    def _one_done(self, result: dict) -> None:
        self.single.set_result(result, self._title(result))
        self.results.setCurrentWidget(self.single)

    def _title(self, r: dict) -> str:
        return f"<b>{escape(Path(r['image_path']).name)}</b> attacked on {escape(model_label(Path(r['model'])))}"

    def show_set_result(self, result: dict) -> None:
        self.set_result = result
        self.results.setCurrentWidget(self.set_view)
        l2 = result["method"] == L2
        self.curves.set_curves(result["curves"], result.get("majority_baseline"), result.get("positive_class"), l2)
        self.flips.set_flips(result["flips"])
        at = eps_caption({"method": result["method"], "eps": result["flip_eps"]})
        self.flips_title.setText(
            f"<b>{len(result['flips'])} prediction(s) flipped at {at}</b> ({escape(attack_text(result))}); "
            "click a row to see the image"
        )
        self.flip_view.clear(
            "Click a flipped image to see it attacked." if result["flips"] else "No prediction flipped."
        )
        self.summary.setText(self._summary(result))

    def _summary(self, r: dict) -> str:
        parts = []
        for name, points in r["curves"].items():
            clean, last = points[0], points[-1]
            at = eps_caption({"method": r["method"], "eps": last["eps"]})
            parts.append(
                f"<b>{escape(name)}</b>: accuracy {clean['accuracy']:.2f} clean → {last['accuracy']:.2f} at "
                f"{at} ({last['n_flipped']} of {r['n']} flipped)"
            )
        synthetic = " <i>(synthetic demo data: says nothing about diagnosis)</i>" if self._synthetic() else ""
        positive = escape(r.get("positive_class") or "")
        return (
            f"{r['n']} images, positive class <b>{positive}</b>; {escape(attack_text(r))}{synthetic}<br>"
            + "; ".join(parts)
        )

    def _synthetic(self) -> bool:
        run = self.ctx.state.run
        return bool(run and run.synthetic)

    def show_flip(self, flip: dict) -> Task | None:
        """Attack the flipped image again (same model, attack settings, eps and label) and show its triptych."""
        if self.set_result is None:
            return None
        r = self.set_result
        checkpoint = r["checkpoints"][flip["model"]]
        kwargs = {"method": r["method"], "restarts": r.get("restarts") or 1, "target": r.get("target")}
        if r.get("steps"):
            kwargs["steps"] = r["steps"]
        self.flip_view.clear(f"Attacking {Path(flip['path']).name} on {flip['model']}…")
        task = self.start_task(
            "Attack flipped image", _attack_one, checkpoint, flip["path"], eps=flip["eps"], label=flip["label"],
            **kwargs,
        )  # fmt: skip
        task.finished.connect(self._flip_done)
        self.flip_task = task
        return task

    def _flip_done(self, result: dict) -> None:
        if self.sender() is not self.flip_task:
            return  # an older click finished after a newer one
        what = "target" if result.get("targeted") else "true label"
        at = eps_caption(result).removeprefix("eps ")  # '8/255' or 'L2 radius 0.5': the title must stay short
        how = f"{ATTACK_LABELS.get(result['method'], result['method'])} {at}, {what} "
        self.flip_view.set_result(result, f"{self._title(result)} ({escape(how + result['label_attacked'])})")
