"""Explaining calls: one image's attribution map with its sanity check, or a set of files written as overlays, raw maps
and an audit table. Torch-free: the occlusion map of an ONNX file (``OnnxOcclusion``) runs in the Diagnose edition;
the captum methods (``engine.explain``) plug into the same functions through the ``Explainer`` protocol.

The class explained is the model's own call (``target=None``: "why this call"), or a class named by the user. Per
image the output folder gets ``<name>_<method>.png`` (the map over the image as the model saw it),
``<name>_<method>.npy`` (the raw map, float32 at the model's input size) and one row in ``explain_<method>.csv`` /
``.json`` with the model's sha256, the input's sha256, the call, the probabilities and the randomisation check.
"""

from __future__ import annotations

import copy
import csv
import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from engine import __version__
from engine.core.catalog import EXPLAIN_INFO
from engine.core.errors import ConfigError, DecodeError
from engine.core.fileio import write_bytes, write_json, write_text
from engine.core.metadata import ModelMeta
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.decode import decode_image
from engine.data.inputs import collect_images
from engine.deploy.model_inputs import prepare_pixels
from engine.deploy.occlusion import default_window, occlusion_map, randomised_session
from engine.deploy.predict import audit_fields, input_audit
from engine.deploy.saliency import SANITY_THRESHOLD, display_map, overlay_png, sanity_check
from engine.deploy.session import create_session, run_session, session_meta
from engine.deploy.square import predicted

log = logging.getLogger(__name__)
OPACITY = 0.6


class Explainer(Protocol):
    """A model and one attribution method."""

    method: str
    meta: ModelMeta
    record: dict  # the audit fields of the model: model, model_sha256, app_version, provider

    def probabilities(self, images: np.ndarray) -> np.ndarray: ...  # float32 NCHW in [0, 1] -> (N, classes)

    def attribution(self, image: np.ndarray, target: int, cancel: CancelToken | None = None) -> np.ndarray: ...

    def randomised(self) -> Explainer: ...  # the same method on the model with random weights

    def settings(self) -> dict: ...


_CACHE: OrderedDict = OrderedDict()  # key -> (explainer, its lock): the app explains one image after another
_CACHE_LOCK = threading.Lock()
CACHED_EXPLAINERS = 2


def cached_explainer(model: str | Path, key: tuple, build: Callable[[], Explainer]) -> tuple[Explainer, threading.Lock]:
    """``build()``'s explainer of ``model``, kept while the file is unchanged (its size and time are in the key, so an
    edited file is opened and checked again), with a lock: one worker at a time uses it (Grad-CAM hooks the model)."""
    st = Path(model).stat()
    key = (str(Path(model).resolve()), st.st_mtime_ns, st.st_size, *key)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    entry = (build(), threading.Lock())
    with _CACHE_LOCK:
        _CACHE[key] = entry
        while len(_CACHE) > CACHED_EXPLAINERS:
            _CACHE.popitem(last=False)
    return entry


class OnnxOcclusion:
    """Occlusion sensitivity of an exported ONNX file (onnxruntime only)."""

    method = "occlusion"

    def __init__(
        self, path, *, window=None, stride=None, baseline="blur", batch_size=16, device="auto", seed=0, threads=None
    ):
        self.path, self.device, self.seed, self.threads = Path(path), device, seed, threads
        self.session = create_session(path, device=device, threads=threads)
        self.meta = session_meta(self.session, source=self.path.name)
        self.record = audit_fields(self.session, path)
        w, s = default_window(self.meta.image_size)
        self.window, self.stride, self.baseline, self.batch_size = window or w, stride or s, baseline, batch_size
        self._random: OnnxOcclusion | None = None

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return run_session(self.session, np.ascontiguousarray(images, np.float32), batch_size=self.batch_size)

    def attribution(self, image: np.ndarray, target: int, cancel: CancelToken | None = None) -> np.ndarray:
        return occlusion_map(
            self.probabilities, image, target, window=self.window, stride=self.stride, baseline=self.baseline,
            batch_size=self.batch_size, cancel=cancel,
        )  # fmt: skip

    def randomised(self) -> OnnxOcclusion:
        if self._random is None:
            twin = copy.copy(self)
            twin.session = randomised_session(self.path, seed=self.seed, device=self.device, threads=self.threads)
            self._random = twin
        return self._random

    def settings(self) -> dict:
        return {"window": self.window, "stride": self.stride, "baseline": self.baseline,
                "randomisation": "all weight tensors redrawn at once", "seed": self.seed}  # fmt: skip


def target_index(target: int | str | None, meta: ModelMeta, probs: np.ndarray) -> int:
    """The class explained: ``target`` (a class name or index), else the model's call on the image."""
    classes = list(meta.classes)
    if target is None:
        return int(predicted(probs[None])[0])
    if isinstance(target, str) and not target.isdigit():
        if target not in classes:
            raise ConfigError(f"class {target!r} is not one of the model's classes {classes}; check --target")
        return classes.index(target)
    if not 0 <= int(target) < len(classes):
        raise ConfigError(f"class index {target} is out of range for the classes {classes}; check --target")
    return int(target)


def explain_image(
    explainer: Explainer,
    image: np.ndarray,
    *,
    target: int | str | None = None,
    sanity: bool = True,
    cancel: CancelToken | None = None,
) -> dict:
    """The map of one (H, W, 3) uint8 image at the model's input size: "map" (raw, float32), "shown" (in [0, 1]),
    "image", "method", "label", "target", "predicted", "probabilities", "classes", "settings", "seconds" and
    "sanity" (``saliency.sanity_check``; None when ``sanity`` is False). The image is first stain-normalised as the
    model's metadata says (``model_inputs.prepare_pixels``): "image" and the map show the image as the model saw it."""
    start = time.perf_counter()
    image = prepare_pixels(explainer.meta, image)
    classes = list(explainer.meta.classes)
    x = np.ascontiguousarray(image.transpose(2, 0, 1)[None], np.float32) / 255
    probs = np.asarray(explainer.probabilities(x)[0], np.float64)
    t = target_index(target, explainer.meta, probs)
    raw = np.asarray(explainer.attribution(image, t, cancel), np.float32)
    check = None
    if sanity:
        check_cancel(cancel, "sanity check")
        check = sanity_check(raw, explainer.randomised().attribution(image, t, cancel), SANITY_THRESHOLD)
    return {
        "method": explainer.method, "label": EXPLAIN_INFO[explainer.method].label, "image": image, "map": raw,
        "shown": display_map(raw), "target": classes[t], "predicted": classes[int(predicted(probs[None])[0])],
        "probabilities": [float(p) for p in probs], "classes": classes, "positive_class": explainer.meta.positive_class,
        "settings": explainer.settings(), "sanity": check, "seconds": time.perf_counter() - start,
    }  # fmt: skip


def explain_paths(
    explainer: Explainer,
    inputs: list,
    out_dir: str | Path,
    *,
    target: int | str | None = None,
    sanity: bool = True,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[dict]:
    """Explain every image of ``inputs`` (files, folders) and write the overlays, the raw maps and the table."""
    paths, out_dir = collect_images(inputs), Path(out_dir)
    rows, stems = [], set()
    for i, path in enumerate(paths, start=1):
        check_cancel(cancel, "explanation")
        stem = _unique(path.stem, stems)
        rows.append(_explain_file(explainer, path, out_dir, stem, target, sanity, cancel))
        report(on_progress, f"explain ({explainer.method})", i, len(paths), unit="images")
    write_table(rows, out_dir, explainer)
    return rows


def _unique(stem: str, taken: set) -> str:
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}"
    taken.add(name)
    return name


def _explain_file(explainer, path: Path, out_dir: Path, stem: str, target, sanity: bool, cancel) -> dict:
    row = {"path": str(path), "method": explainer.method, **explainer.record, **input_audit(path)}
    try:
        image = decode_image(path, explainer.meta.image_size)
    except DecodeError as exc:
        log.warning("%s", exc)
        return {**row, "error": str(exc)}
    r = explain_image(explainer, image, target=target, sanity=sanity, cancel=cancel)
    png, npy = out_dir / f"{stem}_{r['method']}.png", out_dir / f"{stem}_{r['method']}.npy"
    write_bytes(png, overlay_png(r["image"], r["shown"], OPACITY))
    buffer = io.BytesIO()
    np.save(buffer, r["map"])
    write_bytes(npy, buffer.getvalue())
    s = r["sanity"]
    row |= {"predicted": r["predicted"], **{f"p_{c}": p for c, p in zip(r["classes"], r["probabilities"])}}
    row |= {"target": r["target"], "overlay": str(png), "map": str(npy), "seconds": round(r["seconds"], 3)}
    row |= {"rank_corr_randomised": None if s is None else round(s["rank_correlation"], 4)}
    verdict = "" if s is None else "inconclusive" if s.get("inconclusive") else "passed" if s["passed"] else "FAILED"
    row |= {"sanity": verdict, "error": ""}
    return row


def write_table(rows: list[dict], out_dir: Path, explainer) -> None:
    """``explain_<method>.csv`` (one row per image) and ``.json`` (the same rows with the model and the settings)."""
    classes = list(explainer.meta.classes)
    fields = ["path", "method", "target", "predicted", *(f"p_{c}" for c in classes), "rank_corr_randomised", "sanity",
              "overlay", "map", "seconds", "error", "model", "model_sha256", "app_version", "provider", "time",
              "input_sha256"]  # fmt: skip
    fields += [k for k in explainer.record if k not in fields]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n", restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out_dir / f"explain_{explainer.method}.csv", out.getvalue())
    write_json(out_dir / f"explain_{explainer.method}.json", {
        "method": explainer.method, "label": EXPLAIN_INFO[explainer.method].label, **explainer.record,
        "app_version": __version__, "settings": explainer.settings(), "sanity_threshold": SANITY_THRESHOLD,
        "rows": rows,
    })  # fmt: skip


def explain_onnx_files(
    model, inputs, out_dir, *, method="occlusion", target=None, sanity=True, window=None, stride=None, baseline="blur",
    device="auto", seed=0, on_progress=None, cancel=None, **_unused,
) -> list[dict]:  # fmt: skip
    """``explain_paths`` with the occlusion map of the ONNX file ``model`` (no torch); ``_unused``: the captum
    methods' settings (steps, samples), which the command line passes whatever the method."""
    _only_occlusion(method)
    explainer = OnnxOcclusion(model, window=window, stride=stride, baseline=baseline, device=device, seed=seed)
    return explain_paths(explainer, inputs, out_dir, target=target, sanity=sanity, on_progress=on_progress,
                         cancel=cancel)  # fmt: skip


def explain_onnx_image(
    model, image_path, *, method="occlusion", target=None, sanity=True, device="auto", on_progress=None, cancel=None,
    **_unused,
) -> dict:  # fmt: skip
    """``explain_image`` of one image file with the occlusion map of the ONNX file ``model`` (the Diagnose page)."""
    _only_occlusion(method)
    explainer, lock = cached_explainer(model, ("occlusion", device), lambda: OnnxOcclusion(model, device=device))
    image = decode_image(image_path, explainer.meta.image_size)
    report(on_progress, "occlusion map", 0, 1, unit="images")
    with lock:
        result = explain_image(explainer, image, target=target, sanity=sanity, cancel=cancel)
    report(on_progress, "occlusion map", 1, 1, unit="images")
    return {**result, "image_path": str(image_path), **explainer.record}


def explain_onnx_rgb(
    model, image, *, method="occlusion", target=None, sanity=True, device="auto", on_progress=None, cancel=None,
    **_unused,
) -> dict:  # fmt: skip
    """``explain_image`` of an (H, W, 3) uint8 array at the model's input size (a slide tile as the model saw it) with
    the occlusion map of the ONNX file ``model``."""
    _only_occlusion(method)
    explainer, lock = cached_explainer(model, ("occlusion", device), lambda: OnnxOcclusion(model, device=device))
    check_input_size(image, explainer.meta)
    report(on_progress, "occlusion map", 0, 1, unit="images")
    with lock:
        result = explain_image(explainer, image, target=target, sanity=sanity, cancel=cancel)
    report(on_progress, "occlusion map", 1, 1, unit="images")
    return {**result, **explainer.record}


def check_input_size(image: np.ndarray, meta: ModelMeta) -> None:
    size = meta.image_size
    if image.dtype != np.uint8 or image.shape != (size, size, 3):
        raise ConfigError(
            f"the map needs the image as the model sees it, ({size}, {size}, 3) uint8, got {image.dtype} {image.shape}"
            "; read it at the model's input size"
        )


def _only_occlusion(method: str) -> None:
    if method != "occlusion":
        raise ConfigError(
            f"an ONNX file alone gives no gradients, so only the occlusion map runs on it, not {method!r}; "
            "give the checkpoint (best.pt), or put the ONNX file in its run folder beside it"
        )
