"""onnxruntime sessions: CUDA when a GPU is really there, else CPU, and say which one is used.

``onnxruntime-gpu`` lists the CUDA provider even on machines without a GPU and silently falls back to
the CPU, so the provider reported is the one ``session.get_providers()`` says is active.

Every session is built from bytes that passed ``integrity.load_verified`` (hashes and metadata checked),
never from the path itself, so what was checked is what runs.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from engine.core.errors import ModelError
from engine.core.metadata import ModelMeta
from engine.deploy.integrity import HASH_KEYS, load_verified

log = logging.getLogger(__name__)


def _gpu_driver_present() -> bool:
    torch = sys.modules.get("torch")
    # only a torch whose import has finished: the app imports torch on another worker at start-up, and a
    # half-imported torch has no ``cuda`` yet (AttributeError when a model was opened in the first seconds)
    if torch is not None and not getattr(getattr(torch, "__spec__", None), "_initializing", False):
        return bool(torch.cuda.is_available())
    for lib in ("libcuda.so.1", "nvcuda.dll"):
        try:
            ctypes.CDLL(lib)
            return True
        except OSError:
            continue
    return False


def create_session(path: str | Path, device: str = "auto", threads: int | None = None):
    """An ``InferenceSession`` with full graph optimisation; ``device`` is 'auto', 'cpu' or 'cuda'.

    The file is checked first (``integrity.load_verified``): ModelIntegrityError when it does not match its
    recorded hashes or its metadata. What was checked is in ``session_integrity(session)``.
    """
    data, proto, info = load_verified(path)
    del proto  # onnxruntime parses the bytes itself: free the Python copy of a large model first
    session = session_from_bytes(data, device=device, threads=threads, name=str(path))
    session.histoguard_integrity = info
    log.info("onnxruntime session for %s uses %s", Path(path).name, session.get_providers()[0])
    return session


def session_from_bytes(data: bytes, device: str = "auto", threads: int | None = None, name: str = "the model"):
    """An ``InferenceSession`` of model bytes already checked, or derived in memory from a checked file (the
    randomised copy of the saliency sanity check); ``name`` is what errors call it."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    providers = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers() and _gpu_driver_present():
        providers.insert(0, "CUDAExecutionProvider")
    elif device == "cuda":
        raise ModelError("onnxruntime has no usable CUDA GPU here; use device 'cpu' or 'auto'")
    try:
        return ort.InferenceSession(data, sess_options=opts, providers=providers)
    except Exception as exc:
        raise ModelError(f"onnxruntime cannot open {name}: {exc}") from exc


def session_provider(session) -> str:
    return session.get_providers()[0]


def session_integrity(session) -> dict:
    """What ``create_session`` checked: path, sha256 (of the bytes the session runs), graph_sha256,
    recorded_in (the files that record the sha256), metadata."""
    return session.histoguard_integrity


def session_metadata(session) -> dict:
    """The HistoGuard metadata stored in the ONNX file (values that were JSON are decoded), without the
    embedded hashes (they describe this file, not the model: see ``session_integrity``)."""
    props = session.get_modelmeta().custom_metadata_map
    out = {}
    for key, value in props.items():
        if key in HASH_KEYS:
            continue
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def session_meta(session, source: str = "the ONNX model") -> ModelMeta:
    """``session_metadata`` as a ``ModelMeta``; ModelError when HistoGuard's entries are missing."""
    return ModelMeta.from_dict(session_metadata(session), source=source)


def run_session(session, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Probabilities (N, classes) for float32 NCHW images in [0, 1]."""
    name = session.get_inputs()[0].name
    outs = [
        session.run(["probabilities"], {name: images[i : i + batch_size]})[0] for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(outs) if outs else np.zeros((0, 2), np.float32)


def describe_onnx_device() -> str:
    """What the Diagnose edition computes on: onnxruntime's CUDA provider when a GPU is really there."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers() and _gpu_driver_present():
        return "CUDA GPU (onnxruntime)"
    return f"CPU (onnxruntime, {os.cpu_count()} cores)"
