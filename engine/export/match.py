"""An ONNX file and the torch checkpoint it was exported from: found by the run-folder layout, checked
by metadata and weights hash.

Attacks need gradients, which an onnxruntime session does not give; so an ONNX model is attacked through
its checkpoint, and only after the two are shown to be the same model (a wrong pairing would report the
robustness of another model). An INT8 copy (``engine.deploy.quantize``) is never paired: it keeps the fp32
file's metadata, but its weights are not the checkpoint's. Where a run keeps the checkpoint is the run
folder's business (``RunFolder.checkpoint_beside``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from engine.core.errors import ModelError
from engine.core.metadata import ModelMeta
from engine.core.progress import CancelToken, ProgressCallback
from engine.runs.folder import RunFolder

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)
MATCH_KEYS = ("arch", "classes", "positive_class", "image_size", "mean", "std", "split_hash", "weights_sha256")


def checkpoint_for_onnx(
    onnx_path: str | Path,
    checkpoint: str | Path | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path | None:
    """The torch checkpoint that ``onnx_path`` was exported from, verified; None when ``checkpoint`` is not
    given and none lies in the run-folder place (the caller then asks the user for it). An INT8 copy has no
    such checkpoint: ModelError, before any is looked for."""
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelError(f"ONNX model {onnx_path} does not exist; choose an .onnx file exported by HistoGuard")
    onnx_meta = _onnx_meta(onnx_path)
    refuse_int8(onnx_path, onnx_meta)
    if checkpoint is None:
        checkpoint = RunFolder.checkpoint_beside(onnx_path)
        if not checkpoint.is_file():
            return None
    _verify(onnx_path, onnx_meta, checkpoint)
    log.info("%s belongs to checkpoint %s", onnx_path.name, checkpoint)
    return Path(checkpoint)


def verify_onnx_checkpoint(onnx_path: str | Path, checkpoint: str | Path) -> None:
    """Raise ModelError unless the ONNX file's metadata and weights hash match the checkpoint's (never for an
    INT8 copy, whose weights differ from the checkpoint's even where its metadata names them)."""
    onnx_meta = _onnx_meta(onnx_path)
    refuse_int8(onnx_path, onnx_meta)
    _verify(onnx_path, onnx_meta, checkpoint)


def refuse_int8(onnx_path: str | Path, onnx_meta: ModelMeta) -> None:
    """ModelError for an INT8 copy (``engine.deploy.quantize``): it keeps the fp32 file's metadata, weights hash
    included, but its weights are rounded, so a white-box result of the checkpoint is not its result."""
    if not onnx_meta.quantized:
        return
    source = (onnx_meta.quantization or {}).get("source_file") or "the fp32 .onnx file it was made from"
    raise ModelError(
        f"{Path(onnx_path).name} is an INT8 copy of {source}; white-box attacks run on the fp32 checkpoint, so "
        f"use {source}, or run the black-box attack on the INT8 file"
    )


def _onnx_meta(onnx_path: str | Path) -> ModelMeta:
    from engine.deploy.session import create_session, session_meta

    return session_meta(create_session(onnx_path, device="cpu"), source=str(onnx_path))


def _verify(onnx_path: str | Path, onnx_meta: ModelMeta, checkpoint: str | Path) -> None:
    from engine.models.checkpoint import load_checkpoint, weights_sha256

    model, meta = load_checkpoint(checkpoint)
    meta = meta.replace(weights_sha256=weights_sha256(model))
    if onnx_meta.weights_sha256 is None:
        raise ModelError(f"{onnx_path} carries no weights hash; export it again with HistoGuard (histoguard export)")
    pairs = [(k, getattr(onnx_meta, k), getattr(meta, k)) for k in MATCH_KEYS]
    differ = [k for k, a, b in pairs if a is not None and b is not None and a != b]
    if differ:
        raise ModelError(
            f"{Path(onnx_path).name} and {checkpoint} do not belong together (they differ in {', '.join(differ)}); "
            "choose the checkpoint the ONNX file was exported from (<run>/model_x/best.pt)"
        )


def load_attack_model(path: str | Path) -> tuple[nn.Module, ModelMeta]:
    """A torch model to attack: a checkpoint, or the verified checkpoint beside an ONNX file."""
    from engine.models.checkpoint import load_checkpoint

    path = Path(path)
    if path.suffix.lower() == ".onnx":
        ckpt = checkpoint_for_onnx(path)
        if ckpt is None:
            raise ModelError(
                f"attacks need gradients, which {path.name} does not have, and its checkpoint "
                f"{RunFolder.checkpoint_beside(path)} is missing; give the checkpoint (best.pt) it was exported from"
            )
        path = ckpt
    return load_checkpoint(path)
