"""Opening things: a dataset folder, the synthetic demo, a run folder, an ONNX model.

Shared by the Start page, the File menu and the screenshot driver. Discovery runs on a worker (a large
dataset folder takes seconds to walk); a run folder's JSON files are small and read directly.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from desktop_app.context import AppContext
from desktop_app.settings import remember_dir
from desktop_app.state import RunInfo
from desktop_app.workers import Task
from engine import api
from engine.core.config import DataConfig
from engine.core.errors import EngineError, ModelError

log = logging.getLogger(__name__)


def _load(cfg: DataConfig, *, on_progress=None, cancel=None):
    dataset = api.load_dataset(cfg, on_progress=on_progress, cancel=cancel)
    # record the positive class discovery chose, so the config matches a CLI run's on the same data
    return replace(cfg, positive_class=dataset.classes[1]), dataset


def _detect_device(*, on_progress=None, cancel=None) -> str:
    from engine.core.edition import DIAGNOSE, edition
    from engine.deploy.session import describe_onnx_device

    if edition() == DIAGNOSE:
        return describe_onnx_device()
    return api.describe_device(api.resolve_device("auto"))


class Controller(QObject):
    dataset_loading = Signal(str)  # what is being opened, for a busy indicator

    def __init__(self, ctx: AppContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.loading: Task | None = None

    def open_dataset(self, path: str | Path, positive_class: str | None = None) -> Task:
        remember_dir(self.ctx.settings, "dataset", path)
        return self.load(DataConfig(data=str(path), positive_class=positive_class))

    def try_demo(self) -> Task:
        return self.load(DataConfig(demo=True, data=str(api.default_demo_dir())))

    def load(self, cfg: DataConfig) -> Task:
        """Discover ``cfg``'s dataset on a worker; the state changes when it is done."""
        self.dataset_loading.emit(str(cfg.data))
        self.loading = self.ctx.tasks.start("Open dataset", _load, cfg)
        self.loading.finished.connect(self._loaded)
        self.loading.failed.connect(self._failed)
        return self.loading

    def _loaded(self, result) -> None:
        cfg, dataset = result
        self.loading = None
        self.ctx.state.set_dataset(cfg, dataset)

    def _failed(self, exc: BaseException, details: str) -> None:
        self.loading = None
        self.ctx.errors.show("Open dataset", exc, details)

    def open_run(self, path: str | Path) -> RunInfo | None:
        try:
            run = api.open_run(path)
        except (EngineError, OSError, ValueError) as exc:
            self.ctx.errors.show("Open run folder", exc)
            return None
        remember_dir(self.ctx.settings, "run", Path(path).parent)
        self.ctx.state.set_run(run)
        if self.ctx.state.dataset is None and run.config is not None:
            self.load(run.config.data)  # show the run's dataset on the Data page as well
        return run

    def open_onnx(self, path: str | Path) -> bool:
        p = Path(path)
        if not p.is_file() or p.suffix.lower() != ".onnx":
            self.ctx.errors.show(
                "Open ONNX model", ModelError(f"{p} is not an .onnx file; choose a model exported by HistoGuard")
            )
            return False
        remember_dir(self.ctx.settings, "onnx", p)
        self.ctx.state.set_onnx(p)
        return True

    def detect_device(self) -> Task:
        """Importing torch takes seconds: find the device on a worker after the window is shown."""
        task = self.ctx.tasks.start("Detect device", _detect_device)
        task.finished.connect(self.ctx.state.set_device)
        task.failed.connect(self._device_failed)
        return task

    def _device_failed(self, exc: BaseException, details: str) -> None:
        self.ctx.state.set_device(f"unknown ({exc})")
