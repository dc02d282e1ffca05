"""The small public surface the CLI and the desktop app use.

Functions are imported on first use (PEP 562), so ``import engine.api`` stays fast: torch alone takes
seconds to import, which a window that must open quickly cannot afford.
"""

from __future__ import annotations

import importlib

from engine.core.config import DEMO_TRAIN, DataConfig, ExperimentConfig, TrainConfig
from engine.core.errors import Cancelled, EngineError
from engine.core.progress import CancelToken, Progress

_LAZY = {
    "run_experiment": "engine.experiment",
    "train_model": "engine.tasks",
    "evaluate_checkpoint": "engine.tasks",
    "export_checkpoint": "engine.tasks",
    "attack_files": "engine.tasks",
    "predict_files": "engine.predict_files",
    "rows_to_csv": "engine.predict_files",
    "generate_demo_dataset": "engine.data.demo",
    "discover": "engine.data.discover",
    "load_dataset": "engine.data.prepare",
    "default_demo_dir": "engine.data.demo",
    "make_split": "engine.data.split",
    "split_summary": "engine.data.split",
    "load_split": "engine.data.split",
    "load_rgb": "engine.data.decode",
    "describe_device": "engine.models.device",
    "resolve_device": "engine.models.device",
    "list_models": "engine.models.registry",
    "parse_eps": "engine.core.eps",
    "export_report": "engine.report.export",
    "attack_image": "engine.stress",
    "stress_test_set": "engine.stress",
    "blackbox_images": "engine.stress",
    "blackbox_folder": "engine.blackbox_files",
    "checkpoint_for_onnx": "engine.export.match",
    "onnx_checkpoint_candidate": "engine.export.match",
    "quantize_onnx": "engine.export.quantize",
    "compare_quantized": "engine.export.quantize",
    "quantize_dataset": "engine.quantize_files",
    "open_slide": "engine.slides.reader",
    "slide_info": "engine.slides.reader",
    "predict_slide": "engine.slides.predict",
    "slide_robustness": "engine.slides.robust",
    "attack_tile": "engine.slides.robust",
    "write_slide_outputs": "engine.slides.export",
    "write_demo_slide": "engine.data.demo_slide",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'engine.api' has no attribute {name!r}")


__all__ = [
    "DEMO_TRAIN",
    "CancelToken",
    "Cancelled",
    "DataConfig",
    "EngineError",
    "ExperimentConfig",
    "Progress",
    "TrainConfig",
    *_LAZY,
]
