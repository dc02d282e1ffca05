"""Export a classifier to one self-contained ONNX file with its metadata, check it, and prove parity.

The legacy TorchScript exporter (``dynamo=False``, opset 17) is used on purpose: the default dynamo
exporter of torch 2.14 needs ``onnxscript`` and writes weights to a separate ``.onnx.data`` file.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.core.errors import ExportError
from engine.core.fileio import sha256_file, write_bytes
from engine.core.metadata import INPUT, ModelMeta
from engine.deploy.integrity import graph_sha256, record_model, seal
from engine.models.checkpoint import weights_sha256

log = logging.getLogger(__name__)
OPSET = 17
PARITY_TOLERANCE = 1e-4  # max |p_onnx - p_torch| on probabilities


class _WithProbabilities(nn.Module):
    """The model's logits as they are (attacks work on them) and its calibrated probabilities, softmax(z / T)."""

    def __init__(self, model: nn.Module, temperature: float = 1.0) -> None:
        super().__init__()
        self.model, self.temperature = model, float(temperature)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(x)
        scaled = logits if self.temperature == 1.0 else logits / self.temperature
        return logits, torch.softmax(scaled, dim=1)


def export_onnx(model: nn.Module, path: str | Path, metadata: ModelMeta, image_size: int) -> dict:
    """Write ``path`` (input 'image' N x 3 x S x S in [0, 1]; outputs 'logits' and 'probabilities', the latter
    calibrated with ``metadata.temperature``, which the metadata records).

    Returns {"path", "sha256", "weights_sha256", "graph_sha256"}; the ONNX metadata holds ``metadata`` plus
    the weights' sha256, each value JSON-encoded, and the embedded hashes of ``integrity.seal``. The file's
    sha256 is recorded beside it by ``export_verified``, the export every command uses, once parity is proven.
    """
    import onnx

    model = model.cpu().eval()
    dummy = torch.rand(2, 3, image_size, image_size)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _WithProbabilities(model, metadata.temperature).eval(),
                (dummy,),
                buffer,
                dynamo=False,
                opset_version=OPSET,
                input_names=["image"],
                output_names=["logits", "probabilities"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}, "probabilities": {0: "batch"}},
            )
        proto = onnx.load_from_string(buffer.getvalue())
    except Exception as exc:
        raise ExportError(f"ONNX export of {metadata.arch} failed: {exc}") from exc
    meta = metadata.replace(weights_sha256=weights_sha256(model), input=INPUT).to_dict()
    onnx.helper.set_model_props(proto, {k: json.dumps(v) for k, v in meta.items()})
    proto.producer_name = "histoguard"
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise ExportError(f"the exported ONNX graph fails onnx.checker: {exc}") from exc
    data = seal(proto)
    write_bytes(path, data)
    return {
        "path": str(path),
        "sha256": sha256_file(path),
        "weights_sha256": meta["weights_sha256"],
        "graph_sha256": graph_sha256(data),
    }


def check_parity(
    model: nn.Module,
    path: str | Path,
    batches: list[np.ndarray],
    tolerance: float = PARITY_TOLERANCE,
    temperature: float = 1.0,
) -> float:
    """Max |probability difference| between onnxruntime (CPU) and torch over ``batches`` (float32 NCHW), the
    torch side calibrated with ``temperature`` as the file's 'probabilities' are.

    Raises ExportError when it exceeds ``tolerance``.
    """
    from engine.deploy.session import create_session, run_session

    session = create_session(path, device="cpu")
    model = model.cpu().eval()
    worst = 0.0
    for x in batches:
        with torch.no_grad():
            ref = _WithProbabilities(model, temperature)(torch.from_numpy(x))[1].numpy()
        worst = max(worst, float(np.abs(run_session(session, x) - ref).max()))
    if worst > tolerance:
        raise ExportError(f"{path}: onnxruntime differs from torch by {worst:.2e} (> {tolerance:.0e}); not exported")
    log.info("ONNX parity %s: max |dp| = %.2e", Path(path).name, worst)
    return worst


def parity_batches(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> list[np.ndarray]:
    """The clean batch ``x`` and its FGSM and PGD-10 copies at ``eps`` (made on ``x``'s device), as float32
    NCHW arrays: parity is checked where the model is most sensitive, not only on clean images."""
    from engine.attacks import fgsm, pgd

    gen = torch.Generator().manual_seed(0)
    return [
        x.detach().cpu().numpy(),
        fgsm(model, x, y, eps=eps).cpu().numpy(),
        pgd(model, x, y, eps=eps, alpha=max(eps / 4, 1 / 255), steps=10, generator=gen).cpu().numpy(),
    ]


def export_verified(
    model: nn.Module, path: str | Path, metadata: ModelMeta, image_size: int, batches: list[np.ndarray]
) -> dict:
    """Export to a temporary file, check parity on ``batches``, only then move it to ``path`` and record its
    sha256 (``<name>.onnx.sha256``, and the run folder's SHA256SUMS when ``path`` lies in a run folder)."""
    import os

    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        info = export_onnx(model, tmp, metadata, image_size)
        info["max_abs_diff"] = check_parity(model, tmp, batches, temperature=metadata.temperature)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    info.update(path=str(path), sha256=record_model(path))
    return info
