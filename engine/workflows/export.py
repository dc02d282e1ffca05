"""``histoguard export``: a checkpoint to one ONNX file, with parity checked on random clean and attacked images."""

from __future__ import annotations

from pathlib import Path

import torch

from engine.export.onnx_export import export_verified, parity_batches
from engine.models.checkpoint import load_checkpoint


def export_checkpoint(model_path: str | Path, out: str | Path, eps: float = 4 / 255) -> dict:
    model, meta = load_checkpoint(model_path)
    size = meta.image_size
    x = torch.rand(8, 3, size, size, generator=torch.Generator().manual_seed(0))
    y = model(x).argmax(1).detach()
    return export_verified(model, out, meta, size, parity_batches(model, x, y, eps))
