"""Application state that emits signals; pages observe it instead of calling each other."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.core.config import DataConfig
from engine.runs.folder import RunContents

log = logging.getLogger(__name__)

# what the app knows about an open run folder is what the engine reads from it (engine.runs.folder.RunContents)
RunInfo = RunContents


class AppState(QObject):
    """The open dataset, the open run and the chosen ONNX model, with a signal for each change."""

    dataset_changed = Signal(object)  # engine Dataset or None
    data_config_changed = Signal(object)  # DataConfig (split settings included)
    run_changed = Signal(object)  # RunInfo or None
    onnx_changed = Signal(object)  # Path or None
    device_changed = Signal(str)  # "CPU" or the CUDA GPU's name
    message = Signal(str)  # a short line for the status bar

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.data_config: DataConfig | None = None
        self.dataset = None
        self.run: RunInfo | None = None
        self.onnx_path: Path | None = None
        self.device_text = "detecting…"

    def set_dataset(self, cfg: DataConfig, dataset) -> None:
        self.data_config, self.dataset = cfg, dataset
        log.info("dataset opened: %s (%d images)", cfg.data, len(dataset.records))
        self.data_config_changed.emit(cfg)
        self.dataset_changed.emit(dataset)

    def set_data_config(self, cfg: DataConfig) -> None:
        """Split settings changed (same images)."""
        self.data_config = cfg
        self.data_config_changed.emit(cfg)

    def set_run(self, run: RunInfo | None) -> None:
        self.run = run
        if run is not None and run.onnx and self.onnx_path is None:
            self.set_onnx(run.onnx.get("B") or run.onnx.get("A"))
        self.run_changed.emit(run)

    def set_onnx(self, path: str | Path | None) -> None:
        self.onnx_path = Path(path) if path else None
        self.onnx_changed.emit(self.onnx_path)

    def set_device(self, text: str) -> None:
        self.device_text = text
        self.device_changed.emit(text)
