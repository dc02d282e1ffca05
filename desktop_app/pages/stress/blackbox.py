"""The Stress-test page's black-box mode: the Square attack on an ONNX file, over a labelled folder
or over a run's test split (``engine.api.blackbox_images``, the CLI's ``histoguard blackbox`` too; torch-free).

``blackbox_run`` runs on a worker thread and touches no widgets; ``BlackboxMode`` is the UI-thread part.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from desktop_app.settings import last_dir, remember_dir
from desktop_app.widgets.blackbox_form import BlackboxForm
from desktop_app.widgets.blackbox_view import BlackboxView
from desktop_app.workers import Task
from engine import api
from engine.core.errors import ConfigError


def blackbox_run(
    onnx: str, source, *, eps: float, n_queries: int, limit: int, seed: int = 0, on_progress=None, cancel=None
):
    """The engine's black-box result (``engine.api.blackbox_images``) for the page: ``source`` is an ImageSource.
    Runs on a worker."""
    from engine import api

    return api.blackbox_images(
        onnx, source, eps_values=[eps], n_queries=n_queries, limit=limit, seed=seed, on_progress=on_progress,
        cancel=cancel,
    )  # fmt: skip


def missing_images(key: str) -> ConfigError:
    hint = "open a run folder" if key == "split" else "click Choose… and pick a folder with class sub-folders"
    return ConfigError(f"no images chosen: {hint}")


class BlackboxMode(QObject):
    """The page's black-box mode: which ONNX files to offer, the Run button, and the result view. Runs
    ``blackbox_run`` through the page (``start_task`` / ``_follow``), so errors reach the one dialog."""

    def __init__(self, page, form: BlackboxForm) -> None:
        super().__init__(page)
        self.page, self.form, self.ctx = page, form, page.ctx
        self.view = BlackboxView()
        self.result: dict | None = None
        self.extra_onnx: list[Path] = []  # ONNX files opened here
        form.run_button.clicked.connect(self.run)
        form.choose_button.clicked.connect(self.choose_folder)
        form.open_onnx_button.clicked.connect(self.open_onnx_dialog)
        self.ctx.state.onnx_changed.connect(self._onnx_changed)

    def refresh_models(self, current: Path | None = None) -> None:
        """The run's ONNX files, the one opened in the app (File ▸ Open ONNX model…) and those opened here."""
        run, opened = self.ctx.state.run, self.ctx.state.onnx_path
        models = [(f"Model {n} — {p.name}", p) for n, p in sorted((run.onnx if run else {}).items())]
        for path in [opened, *self.extra_onnx]:
            if path is not None and all(path != p for _, p in models):
                models.append((path.name, path))
        self.form.set_models(models, current or opened or (models[0][1] if models else None))

    def _onnx_changed(self, path: Path | None) -> None:
        self.refresh_models(path)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self.page, "Choose a folder of labelled images (<class>/<image>)", last_dir(self.ctx.settings, "stress")
        )
        if path:
            remember_dir(self.ctx.settings, "stress", path)
            self.form.set_source("folder", path)

    def open_onnx_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.page, "Open ONNX model", last_dir(self.ctx.settings, "onnx"), "ONNX models (*.onnx)"
        )
        if path:
            remember_dir(self.ctx.settings, "onnx", path)
            self.extra_onnx.append(Path(path))
            self.refresh_models(Path(path))

    def run(self) -> Task | None:
        f = self.form
        key, path = f.source()
        if f.model() is None or path is None:
            no_model = ConfigError("no ONNX model: open a run folder with exported models, or click Open ONNX…")
            self.ctx.errors.show("Black-box attack", no_model if f.model() is None else missing_images(key))
            return None
        source = api.ImageSource.of_run(path) if key == "split" else api.ImageSource.of_folder(path)
        task = self.page.start_task(
            "Black-box attack", blackbox_run, str(f.model()), source, eps=f.eps_k() / 255,
            n_queries=f.queries_spin.value(), limit=f.limit_spin.value(),
        )  # fmt: skip
        task.finished.connect(self.show_result)
        return self.page._follow(task, f"Square attack on {f.model().name}…")

    def show_result(self, result: dict) -> None:
        self.result = result
        self.view.set_result(result)
        self.page.results.setCurrentWidget(self.view)
