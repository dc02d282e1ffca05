"""Query-only (black-box) attacks on the deployed ONNX model, with numpy and onnxruntime: no torch."""

from engine.blackbox.onnx_target import (
    as_nchw_float,
    blackbox_stress,
    fixed_subset,
    onnx_model_info,
    onnx_predictor,
)
from engine.blackbox.square import SquareResult, p_schedule, square_attack

__all__ = [
    "SquareResult",
    "as_nchw_float",
    "blackbox_stress",
    "fixed_subset",
    "onnx_model_info",
    "onnx_predictor",
    "p_schedule",
    "square_attack",
]
