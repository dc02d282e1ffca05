"""What every ONNX caller feeds a model: decoded uint8 pixels made into its input, the way it was trained.

``prepare_inputs(meta, images)`` is the one hook between decoded images and an exported model: the stain
normalisation its metadata records (``engine.data.stain_norm``; none for older models), then float32 NCHW in [0, 1].
Attacks, noise (certification) and occlusion act on its result: normalisation is preprocessing, before them.
Arrays already prepared (float NCHW, e.g. an experiment's normalised test split) are not prepared again. Torch-free.
"""

from __future__ import annotations

import numpy as np

from engine.core.errors import DataError
from engine.core.metadata import ModelMeta
from engine.data.stain_norm import for_model


def prepare_pixels(meta: ModelMeta, images: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) or (N, H, W, 3) as the model sees them (stain-normalised when it records a reference)."""
    return for_model(meta, images)


def prepare_inputs(meta: ModelMeta, images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) decoded images -> the model's float32 NCHW input in [0, 1], stain-normalised first when
    ``meta`` records a reference."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(f"decoded images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    pixels = prepare_pixels(meta, images)
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255)
