"""The one facade both faces use: the CLI (``engine.cli``) and the desktop app (``desktop_app``) call the engine
through these names only.

Names are imported on first use (PEP 562), so ``import engine.api`` stays fast: torch alone takes seconds to
import, which a window that must open quickly cannot afford. What the Diagnose edition offers comes from the
torch-free packages (``core``, ``data``, ``runs``, ``deploy``, ``slides``, ``report``); the rest needs PyTorch.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from engine.core.config import DEMO_TRAIN, AttackConfig, CertifyConfig, DataConfig, ExperimentConfig, TrainConfig
from engine.core.errors import Cancelled, EngineError
from engine.core.progress import CancelToken, Progress

_LAZY = {
    # torch-free: the Diagnose edition runs these
    "ImageSource": "engine.runs.images",
    "RunFolder": "engine.runs.folder",
    "ModelMeta": "engine.core.metadata",
    "predict_files": "engine.deploy.predict",
    "rows_to_csv": "engine.deploy.predict",
    "flag_rows": "engine.deploy.predict",
    "blackbox_images": "engine.deploy.blackbox",
    "certify_files": "engine.deploy.certify_run",
    "certify_dataset": "engine.deploy.certify_run",
    "certify_set": "engine.deploy.certify_run",
    "attach_certificates": "engine.deploy.certify_run",
    "certificates_csv": "engine.deploy.certify_run",
    "model_sigma": "engine.deploy.smoothed",
    "certified_accuracy_curve": "engine.deploy.certify",
    "compare_maps": "engine.deploy.saliency",
    "overlay_png": "engine.deploy.saliency",
    "heat_rgba": "engine.deploy.saliency",
    "difference_rgba": "engine.deploy.saliency",
    "sanity_text": "engine.deploy.saliency",
    "moved_text": "engine.deploy.saliency",
    "attention_moved": "engine.deploy.saliency",
    "read_model_info": "engine.deploy.model_info",
    "describe_onnx_device": "engine.deploy.session",
    "quantize_onnx": "engine.deploy.quantize",
    "compare_quantized": "engine.deploy.quantize",
    "quantize_dataset": "engine.deploy.quantize_data",
    "generate_demo_dataset": "engine.data.demo",
    "default_demo_dir": "engine.data.demo",
    "discover": "engine.data.discover",
    "load_dataset": "engine.data.prepare",
    "make_split": "engine.data.split",
    "split_summary": "engine.data.split",
    "load_split": "engine.data.split",
    "load_rgb": "engine.data.decode",
    "parse_eps": "engine.core.eps",
    "open_slide": "engine.slides.reader",
    "slide_info": "engine.slides.reader",
    "predict_slide": "engine.slides.predict",
    "read_tile_rgb": "engine.slides.predict",
    "write_slide_outputs": "engine.slides.export",
    "write_demo_slide": "engine.data.demo_slide",
    "read_cohort": "engine.slides.cohort_table",
    "load_prediction": "engine.slides.cohort_table",
    "run_cohort": "engine.workflows.cohort",  # torch-free unless a robustness map is asked for
    # full edition (PyTorch)
    "run_experiment": "engine.workflows.experiment",
    "run_folds": "engine.workflows.folds",
    "train_model": "engine.workflows.train",
    "evaluate_checkpoint": "engine.workflows.evaluate",
    "export_checkpoint": "engine.workflows.export",
    "attack_files": "engine.workflows.attack",
    "attack_image": "engine.workflows.attack",
    "stress_test_set": "engine.workflows.stress",
    "slide_robustness": "engine.workflows.slide_robustness",
    "attack_tile": "engine.workflows.slide_robustness",
    "explain_attack": "engine.workflows.explain",
    "checkpoint_for_onnx": "engine.export.match",
    "describe_device": "engine.models.device",
    "resolve_device": "engine.models.device",
    "list_models": "engine.models.registry",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'engine.api' has no attribute {name!r}")


def open_run(path: str | Path):
    """What the run folder ``path`` holds (``RunContents``); RunFolderError when it is not a run folder."""
    from engine.runs.folder import RunFolder

    return RunFolder.open(path).contents()


def run_folder_state(path: str | Path, config: ExperimentConfig | None) -> str:
    """What ``path`` offers a new run with ``config`` (``RunFolder.state``: 'new', 'resumable', 'locked', ...)."""
    from engine.runs.folder import RunFolder

    return RunFolder.state(path, config)


def checkpoint_beside(onnx: str | Path) -> Path:
    """Where a run folder keeps the checkpoint an ONNX file was exported from."""
    from engine.runs.folder import RunFolder

    return RunFolder.checkpoint_beside(onnx)


def export_report(result: dict, out: str | Path, *, run_dir: str | Path | None = None, on_progress=None, cancel=None):
    """report.html and metrics.csv of a report (``engine.report.export``); figures the run folder lacks are drawn
    where matplotlib is installed (the full edition) and left out where it is not (the Diagnose edition)."""
    from engine.report.export import export_report as write

    return write(result, out, run_dir=run_dir, draw=_figure_drawer(), on_progress=on_progress, cancel=cancel)


def default_explain_method(model: str | Path) -> str:
    """Occlusion for an ONNX file (it runs without PyTorch), Grad-CAM for a checkpoint."""
    return "occlusion" if Path(model).suffix.lower() == ".onnx" else "gradcam"


def _explain_module(model: str | Path, method: str):
    """Where ``method`` on ``model`` runs: the torch-free occlusion map of an ONNX file, else the torch model."""
    if method == "occlusion" and Path(model).suffix.lower() == ".onnx":
        return importlib.import_module("engine.deploy.explain_run"), "_onnx"
    return importlib.import_module("engine.workflows.explain"), ""


def explain_files(model: str | Path, inputs: list, out_dir: str | Path, *, method: str | None = None, **kwargs):
    """Attribution maps of image files written to ``out_dir`` (overlay PNG, raw .npy, explain_<method>.csv/json);
    occlusion of an ONNX file imports no torch (``engine.deploy.explain_run``), the rest runs on the checkpoint
    (``engine.workflows.explain``)."""
    method = method or default_explain_method(model)
    module, kind = _explain_module(model, method)
    return getattr(module, f"explain{kind}_files")(model, inputs, out_dir, method=method, **kwargs)


def explain_image(model: str | Path, image: str | Path, *, method: str | None = None, **kwargs) -> dict:
    """One image file's map, its call and its randomisation check (what the Diagnose page shows)."""
    method = method or default_explain_method(model)
    module, kind = _explain_module(model, method)
    return getattr(module, f"explain{kind}_image")(model, image, method=method, **kwargs)


def explain_rgb(model: str | Path, image, *, method: str | None = None, **kwargs) -> dict:
    """The map of an (H, W, 3) uint8 array at the model's input size (a slide tile), its call and its check."""
    method = method or default_explain_method(model)
    module, kind = _explain_module(model, method)
    return getattr(module, f"explain{kind}_rgb")(model, image, method=method, **kwargs)


def _figure_drawer():
    try:
        if importlib.util.find_spec("matplotlib") is None:
            return None
    except (ImportError, ValueError):
        return None
    from engine.evaluate.figures import draw_figures

    return draw_figures


__all__ = [
    "DEMO_TRAIN",
    "AttackConfig",
    "CancelToken",
    "CertifyConfig",
    "Cancelled",
    "DataConfig",
    "EngineError",
    "ExperimentConfig",
    "Progress",
    "TrainConfig",
    "checkpoint_beside",
    "default_explain_method",
    "explain_files",
    "explain_image",
    "explain_rgb",
    "export_report",
    "open_run",
    "run_folder_state",
    *_LAZY,
]
