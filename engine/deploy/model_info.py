"""What an exported ONNX file is, read the way every face shows it: its sha256, its metadata and the provider
onnxruntime really runs it on. Opening checks the file's integrity first (``engine.deploy.integrity``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.core.errors import ModelError
from engine.core.metadata import ModelMeta
from engine.deploy.session import create_session, session_integrity, session_meta, session_provider

GPU_PROVIDERS = ("CUDA", "Tensorrt", "TensorRT")


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    sha256: str  # of the verified bytes the session runs
    meta: ModelMeta
    provider: str  # "CPUExecutionProvider", "CUDAExecutionProvider", ...

    @property
    def on_gpu(self) -> bool:
        return self.provider.startswith(GPU_PROVIDERS)


def read_model_info(path: str | Path, device: str = "auto") -> ModelInfo:
    """Open ``path`` (integrity checked) and say what it is; ModelError / ModelIntegrityError otherwise."""
    session = create_session(path, device=device)
    meta = session_meta(session, source=Path(path).name)
    return ModelInfo(Path(path), session_integrity(session)["sha256"], meta, session_provider(session))


def onnx_meta(path: str | Path) -> ModelMeta:
    """The metadata of a HistoGuard two-class ONNX file (checked like every open)."""
    meta = session_meta(create_session(path, device="cpu"), source=Path(path).name)
    if len(meta.classes) != 2:
        raise ModelError(f"{Path(path).name} has {len(meta.classes)} classes; HistoGuard's attacks need two")
    return meta
