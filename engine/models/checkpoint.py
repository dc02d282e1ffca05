"""Checkpoints: weights plus the metadata that says what they are (``engine.core.metadata.ModelMeta``, stored
as a plain dict), loaded with ``weights_only=True``: a checkpoint is never unpickled as code."""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path
from typing import Any

import torch

from engine import __version__
from engine.core.errors import ModelError
from engine.core.fileio import atomic_open
from engine.core.metadata import ModelMeta
from engine.models.registry import IMAGENET_MEAN, IMAGENET_STD, Classifier, create_model

log = logging.getLogger(__name__)
REQUIRED = ("arch", "classes", "image_size", "mean", "std", "training")


def make_metadata(arch: str, classes, image_size: int, training: dict, **extra: Any) -> ModelMeta:
    """The metadata of a model about to be trained (its normalisation is the registry's ImageNet mean/std);
    ``extra`` entries ``ModelMeta`` does not name are kept in its ``extra``."""
    meta = {"arch": arch, "classes": list(classes), "image_size": int(image_size), "positive_class": classes[1]}
    meta |= {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "training": dict(training), "histoguard_version": __version__}
    return ModelMeta.from_dict({**meta, **{k: v for k, v in extra.items() if v is not None}})


def weights_sha256(model: torch.nn.Module) -> str:
    """Hash of the parameters and buffers in state-dict order: equal weights give equal hashes."""
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(path: str | Path, model: torch.nn.Module, metadata: ModelMeta, **state: Any) -> None:
    """Write weights + metadata (+ optional training state such as the optimizer) atomically."""
    if not metadata.training:
        raise ModelError("checkpoint metadata lacks ['training'] (how the model was trained)")
    payload = {"metadata": metadata.to_dict(), "state_dict": model.state_dict(), **state}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getbuffer())


def read_checkpoint(path: str | Path) -> dict:
    """The raw checkpoint dict, unpickled safely (``weights_only=True``); refuses anything else."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(
            f"refused to load {path}: it is not a plain weights checkpoint ({type(exc).__name__}); "
            "files that need arbitrary code to load are never opened (torch weights_only=True). Use a "
            "checkpoint saved by HistoGuard (a run's model_x/best.pt) or train the model again"
        ) from exc
    if not isinstance(payload, dict) or "metadata" not in payload or "state_dict" not in payload:
        raise ModelError(f"{path} is not a HistoGuard checkpoint (no metadata); export it from a HistoGuard run")
    missing = [k for k in REQUIRED if k not in payload["metadata"]]
    if missing:
        raise ModelError(f"checkpoint {path} has incomplete metadata (missing {missing})")
    return payload


def checkpoint_meta(payload: dict, path: str | Path) -> ModelMeta:
    return ModelMeta.from_dict(payload["metadata"], source=f"checkpoint {path}")


def load_checkpoint(path: str | Path) -> tuple[Classifier, ModelMeta]:
    """Rebuild the model described by the checkpoint's metadata and load its weights (eval mode)."""
    payload = read_checkpoint(path)
    meta = checkpoint_meta(payload, path)
    model = create_model(meta.arch, num_classes=len(meta.classes), weights=None)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ModelError(f"weights in {path} do not match its metadata (arch {meta.arch}): {exc}") from exc
    return model.eval(), meta
