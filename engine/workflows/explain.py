"""Attribution maps in the full edition: files (``histoguard explain``), one image (the Diagnose page with a captum
method) and an attacked image beside its original (the Stress page: did the attack move the model's attention?).

A checkpoint, or an ONNX file whose checkpoint lies beside it in its run folder (verified to be the same model,
``engine.export.match.load_attack_model``), gives the torch model the captum methods need. The writer, the sanity
check and the comparison of two maps are the torch-free ones of ``engine.deploy``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engine import __version__
from engine.core.fileio import sha256_file
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.decode import decode_image
from engine.deploy.explain_run import cached_explainer, check_input_size, explain_paths, target_index
from engine.deploy.explain_run import explain_image as explain_array
from engine.deploy.saliency import compare_maps, display_map
from engine.explain import TorchExplainer
from engine.export.match import load_attack_model
from engine.models.device import resolve_device
from engine.runs.folder import RunFolder

log = logging.getLogger(__name__)
OPTIONS = ("steps", "samples", "noise", "seed", "batch_size", "window", "stride", "baseline")


def torch_explainer(model_path: str | Path, method: str, *, device: str = "auto", **options) -> TorchExplainer:
    """The captum ``method`` (or occlusion) on the torch model of ``model_path`` (.pt, or .onnx with its checkpoint
    beside it), with the audit record of the file the user named."""
    model, meta = load_attack_model(model_path)
    path = Path(model_path)
    record = {"model": path.name, "model_sha256": sha256_file(path), "app_version": __version__,
              "provider": f"torch {resolve_device(device)}"}  # fmt: skip
    if path.suffix.lower() == ".onnx":  # the maps are the checkpoint's: say which one
        checkpoint = RunFolder.checkpoint_beside(path)
        record |= {"checkpoint": str(checkpoint), "checkpoint_sha256": sha256_file(checkpoint)}
    kwargs = {k: v for k, v in options.items() if k in OPTIONS and v is not None}
    return TorchExplainer(model, meta, method, record=record, device=device, **kwargs)


def _cached(model_path, method: str, device: str, options: dict):
    """The explainer of ``model_path`` kept between calls (the app explains one image after another)."""
    key = (method, device, *sorted((k, v) for k, v in options.items() if k in OPTIONS and v is not None))
    return cached_explainer(model_path, key, lambda: torch_explainer(model_path, method, device=device, **options))


def explain_files(
    model_path: str | Path,
    inputs: list,
    out_dir: str | Path,
    *,
    method: str = "gradcam",
    target: int | str | None = None,
    sanity: bool = True,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    **options,
) -> list[dict]:
    """Overlays, raw maps and the table of every input image (``engine.deploy.explain_run.explain_paths``)."""
    report(on_progress, f"load model ({method})", 0, 1, unit="models")
    explainer = torch_explainer(model_path, method, device=device, **options)
    return explain_paths(explainer, inputs, out_dir, target=target, sanity=sanity, on_progress=on_progress,
                         cancel=cancel)  # fmt: skip


def explain_image(
    model_path: str | Path,
    image_path: str | Path,
    *,
    method: str = "gradcam",
    target: int | str | None = None,
    sanity: bool = True,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    **options,
) -> dict:
    """One image file's map (``explain_rgb`` of the decoded image, with "image_path")."""
    explainer, _ = _cached(model_path, method, device, options)  # cached: explain_rgb finds the same one
    image = decode_image(image_path, explainer.meta.image_size)
    result = explain_rgb(model_path, image, method=method, target=target, sanity=sanity, device=device,
                         on_progress=on_progress, cancel=cancel, **options)  # fmt: skip
    return {**result, "image_path": str(image_path)}


def explain_rgb(
    model_path: str | Path,
    image: np.ndarray,
    *,
    method: str = "gradcam",
    target: int | str | None = None,
    sanity: bool = True,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    **options,
) -> dict:
    """The map of an (H, W, 3) uint8 array at the model's input size (a slide tile as the model saw it), with the
    record of the model file."""
    report(on_progress, f"{method} map", 0, 1, unit="images")
    explainer, lock = _cached(model_path, method, device, options)
    check_input_size(image, explainer.meta)
    check_cancel(cancel, "explanation")
    with lock:
        result = explain_array(explainer, image, target=target, sanity=sanity, cancel=cancel)
    report(on_progress, f"{method} map", 1, 1, unit="images")
    return {**result, **explainer.record}


def explain_attack(
    model_path: str | Path,
    original: np.ndarray,
    adversarial: np.ndarray,
    *,
    method: str = "gradcam",
    target: int | str | None = None,
    sanity: bool = False,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    **options,
) -> dict:
    """The maps of an image and its adversarial version ((H, W, 3) uint8 at the model's input size), both for the
    same class (``target``; default: the model's call on the original), and how the second differs from the first:
    {"original": result, "adversarial": result, "comparison": ``saliency.compare_maps``, "difference": the display
    maps' difference (after - before, in [-1, 1]), "method", "target"}."""
    report(on_progress, f"{method} maps", 0, 2, unit="images")
    explainer, lock = _cached(model_path, method, device, options)
    x = np.ascontiguousarray(original.transpose(2, 0, 1)[None], np.float32) / 255
    results = []
    with lock:
        t = target_index(target, explainer.meta, explainer.probabilities(x)[0])
        for i, image in enumerate((original, adversarial)):
            check_cancel(cancel, "explanation")
            results.append(explain_array(explainer, image, target=t, sanity=sanity, cancel=cancel))
            report(on_progress, f"{method} maps", i + 1, 2, unit="images")
    before, after = results
    return {
        "method": method, "label": before["label"], "target": before["target"], "original": before,
        "adversarial": after, "comparison": compare_maps(before["map"], after["map"]),
        "difference": display_map(after["map"]) - display_map(before["map"]), **explainer.record,
    }  # fmt: skip
