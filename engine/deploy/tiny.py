"""A tiny ONNX classifier built without PyTorch, for the installed app's self-test.

``histoguard --self-test`` must prove on a fresh install (the Diagnose edition has no PyTorch) that
onnxruntime, the model checks and the Diagnose page work, without shipping a model file: this builds
one in a few milliseconds. It is not trained: its "prediction" is a fixed linear function of the
image's mean colour (darker, more purple tiles score higher for the second class), and its metadata
says so, so it can never be mistaken for a diagnostic model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine import __version__
from engine.core.metadata import IMAGENET_MEAN, IMAGENET_STD, INPUT, ModelMeta

OPSET = 17


def tiny_metadata(image_size: int, classes: tuple[str, str]) -> ModelMeta:
    """What a HistoGuard export carries, for a model that was never trained."""
    return ModelMeta(
        arch="selftest_linear", classes=classes, image_size=int(image_size), mean=IMAGENET_MEAN, std=IMAGENET_STD,
        training={"note": "self-test model: fixed weights, never trained, not for diagnosis"}, synthetic_data=True,
        histoguard_version=__version__, input=INPUT,
    )  # fmt: skip


def tiny_onnx_model(image_size: int = 32, classes: tuple[str, str] = ("benign", "malignant")):
    """An ``onnx.ModelProto``: image (N, 3, S, S) in [0, 1] -> mean colour -> linear -> logits, probabilities."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array([[-2.0, 2.0], [2.0, -2.0], [-1.0, 1.0]], dtype=np.float32)  # R, G, B -> 2 classes
    bias = np.array([0.5, -0.5], dtype=np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["colour"], axes=[2, 3], keepdims=0),
        helper.make_node("Gemm", ["colour", "weights", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "histoguard_selftest",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, image_size, image_size])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2]),
        ],
        initializer=[
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="histoguard")
    model.ir_version = min(model.ir_version, 9)  # readable by onnxruntime releases older than this onnx
    helper.set_model_props(model, {k: json.dumps(v) for k, v in tiny_metadata(image_size, classes).to_dict().items()})
    onnx.checker.check_model(model, full_check=True)
    return model


def write_tiny_model(path: str | Path, image_size: int = 32) -> Path:
    """Write the self-test model to ``path`` (atomically, sealed and recorded like an export) and return it."""
    from engine.core.fileio import write_bytes
    from engine.deploy.integrity import record_model, seal

    write_bytes(path, seal(tiny_onnx_model(image_size)))
    record_model(path)
    return Path(path)
