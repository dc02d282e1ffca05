"""Tiny sealed ONNX classifiers whose smoothed classifier is known exactly, for the certification tests.

``linear_model``: logits (0, w.x + b), so f calls class 1 where w.x + b >= 0. Under noise N(0, sigma^2 I) the
score w.(x + d) + b is normal with mean w.x + b and sd sigma ||w||, so the smoothed classifier's probability of
the top class is Phi(|w.x + b| / (sigma ||w||)) and its decision boundary is the hyperplane itself: the distance
from x to the nearest point the smoothed classifier calls otherwise is exactly |w.x + b| / ||w||.
``mlp_model``: a random two-layer ReLU network (weights returned, for a torch copy of it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.core.fileio import write_bytes
from engine.deploy.integrity import record_model, seal
from engine.deploy.tiny import OPSET, tiny_metadata

SIZE = 16
D = 3 * SIZE * SIZE


def _write(path: Path, nodes, weights: dict[str, np.ndarray], training: dict | None) -> Path:
    import json

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Flatten", ["image"], ["flat"], axis=1), *nodes,
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)],
        "smoothing_test",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])],
        initializer=[numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="histoguard")
    model.ir_version = min(model.ir_version, 9)
    meta = tiny_metadata(SIZE, ("benign", "malignant"))
    if training is not None:
        meta = meta.replace(training=training)
    helper.set_model_props(model, {k: json.dumps(v) for k, v in meta.to_dict().items()})
    onnx.checker.check_model(model, full_check=True)
    write_bytes(path, seal(model))
    record_model(path)
    return Path(path)


def linear_model(path: Path, w: np.ndarray, b: float, training: dict | None = None) -> Path:
    """logits = (0, w.x + b) for x flattened (3 * SIZE * SIZE values)."""
    weights = np.zeros((D, 2), np.float32)
    weights[:, 1] = np.asarray(w, np.float32).reshape(-1)
    bias = np.array([0.0, b], np.float32)
    return _write(path, [onnx_gemm("flat", "W", "B", "logits")], {"W": weights, "B": bias}, training)


def constant_model(path: Path, training: dict | None = None) -> Path:
    """Always class 1, whatever the input (logits (0, 1))."""
    return linear_model(path, np.zeros(D, np.float32), 1.0, training)


def mlp_model(path: Path, hidden: int = 32, seed: int = 0) -> tuple[Path, dict[str, np.ndarray]]:
    """logits = W2 relu(W1 x + b1) + b2 with random weights; returns the path and the weights."""
    from onnx import helper

    rng = np.random.default_rng(seed)
    weights = {
        "W1": rng.normal(0, 1 / np.sqrt(D), (D, hidden)).astype(np.float32) * 4,
        "B1": rng.normal(0, 0.5, hidden).astype(np.float32),
        "W2": rng.normal(0, 1 / np.sqrt(hidden), (hidden, 2)).astype(np.float32),
        "B2": np.zeros(2, np.float32),
    }
    nodes = [
        onnx_gemm("flat", "W1", "B1", "h"),
        helper.make_node("Relu", ["h"], ["r"]),
        onnx_gemm("r", "W2", "B2", "logits"),
    ]
    return _write(path, nodes, weights, None), weights


def onnx_gemm(x: str, w: str, b: str, out: str):
    from onnx import helper

    return helper.make_node("Gemm", [x, w, b], [out])
