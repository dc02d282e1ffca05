"""Application state that emits signals; pages observe it instead of calling each other."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.core.config import DataConfig, ExperimentConfig
from engine.core.errors import RunFolderError

log = logging.getLogger(__name__)

MODEL_NAMES = ("A", "B", "C")  # C: on-the-fly adversarial training (issue 4); older runs have A and B


@dataclass
class RunInfo:
    """What the app knows about a run folder (``histoguard experiment --out`` or the Train page)."""

    path: Path
    config: ExperimentConfig | None = None
    report: dict | None = None  # report.json once the run has finished
    checkpoints: dict[str, Path] = field(default_factory=dict)  # "A"/"B"/"C" -> best.pt
    onnx: dict[str, Path] = field(default_factory=dict)  # "A"/"B"/"C" -> model_x.onnx

    @classmethod
    def load(cls, path: str | Path) -> RunInfo:
        root = Path(path)
        cfg_file = root / "config.json"
        if not cfg_file.is_file():
            raise RunFolderError(
                f"{root} is not a HistoGuard run folder (it has no config.json); open a folder made by the "
                "Train page or by `histoguard experiment --out`"
            )
        try:
            config = ExperimentConfig.from_dict(json.loads(cfg_file.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            raise RunFolderError(f"{cfg_file} cannot be read ({exc}); it was not written by this HistoGuard") from exc
        report = None
        if (root / "report.json").is_file():
            report = json.loads((root / "report.json").read_text(encoding="utf-8"))
        info = cls(root, config, report)
        for name in MODEL_NAMES:
            ckpt = root / f"model_{name.lower()}" / "best.pt"
            if ckpt.is_file():
                info.checkpoints[name] = ckpt
            onnx = root / f"model_{name.lower()}.onnx"
            if onnx.is_file():
                info.onnx[name] = onnx
        return info

    @property
    def finished(self) -> bool:
        return self.report is not None

    @property
    def synthetic(self) -> bool:
        return bool(self.report and self.report.get("synthetic_data")) or bool(self.config and self.config.data.demo)


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
