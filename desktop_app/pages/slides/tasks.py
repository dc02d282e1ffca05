"""What the Slides page runs on the worker pool: plain functions over the engine's slide API (no Qt), each
taking the ``on_progress`` and ``cancel`` that ``workers.Task`` passes. PyTorch is imported only by the
robustness map, the tile attack and a tile's Grad-CAM map, on the worker, when first used."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from engine.core.progress import check_cancel


def read_model(path: Path, *, on_progress=None, cancel=None):
    """What the model file is (``engine.api.read_model_info``, its integrity checked)."""
    from engine import api

    return api.read_model_info(path, device="auto")


def load_slide(path: Path, thumb_side: int, *, on_progress=None, cancel=None) -> tuple:
    """(path, SlideInfo, thumbnail RGB array) of a slide (worker): the thumbnail comes from a low level."""
    import numpy as np

    from engine import api

    with api.open_slide(path) as slide:
        info = api.slide_info(slide, path)
        thumb = np.asarray(slide.get_thumbnail((thumb_side, thumb_side)).convert("RGB"))
    return Path(path), info, thumb


def predict(slide: Path, model: Path, *, on_progress=None, cancel=None, **kw):
    from engine.api import predict_slide

    def progress(p):  # "slide" is the engine's stage name; the page names what is happening
        on_progress(replace(p, stage="predicting tiles"))

    return predict_slide(slide, model, on_progress=progress if on_progress else None, cancel=cancel, **kw)


def robustness(slide: Path, model: Path, prediction, attack, *, limit=None, on_progress=None, cancel=None):
    from engine.api import slide_robustness  # imports torch: on the worker, when first needed

    return slide_robustness(slide, model, prediction, attack, limit=limit, on_progress=on_progress, cancel=cancel)


def export_outputs(prediction, folder: Path, model: Path, settings: dict | None, *, on_progress=None, cancel=None):
    from engine.api import write_slide_outputs

    return write_slide_outputs(prediction, folder, model, settings)


def read_tile(slide: Path, tile, level: int, size: int, *, on_progress=None, cancel=None) -> tuple:
    """(tile, (size, size, 3) uint8): the tile as the model saw it (worker)."""
    from engine import api

    with api.open_slide(slide) as s:
        return tile, api.read_tile_rgb(s, tile, level, size)


def attack(slide: Path, model: Path, tile, level: int, how, *, on_progress=None, cancel=None) -> dict:
    from engine.api import attack_tile  # imports torch: on the worker, when first needed

    check_cancel(cancel, "tile attack")  # a click on another tile before this one started
    return attack_tile(slide, model, tile, level, how)


def tile_map(slide: Path, model: Path, tile, level: int, size: int, method: str, *, on_progress=None, cancel=None):
    """(tile, the map of the tile as the model saw it with its colours) (worker): occlusion on the ONNX file
    (onnxruntime only) or Grad-CAM on the checkpoint beside it (``engine.api.explain_rgb``)."""
    from engine import api

    check_cancel(cancel, "tile map")  # a click on another tile before this one started
    with api.open_slide(slide) as s:
        rgb = api.read_tile_rgb(s, tile, level, size)
    result = api.explain_rgb(model, rgb, method=method, on_progress=on_progress, cancel=cancel)
    return tile, {**result, "heat": api.heat_rgba(result["shown"])}
