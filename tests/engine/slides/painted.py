"""The painted test slide of test_slide_predict (benign tissue with a known "tumour" square, on glass) and two
tiny ONNX models for it: the self-test's mean-colour model (invariant to flips and turns) and a linear model of
the pixels themselves (not invariant: a turned tile scores differently)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.deploy.tiny import OPSET, tiny_metadata, write_tiny_model
from tests.engine.slides.test_slide_predict import SIDE, TISSUE, TUMOUR
from tests.engine.slides.test_slides import write_pyramid

SIZE = 32  # the models' input; at model_mpp 1.0 on this 0.5 µm/px slide a tile is 64 level-0 px


def paint_slide(folder: Path) -> Path:
    """The same pixels as test_slide_predict's ``slide`` fixture (seed 0)."""
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(236, 3, (SIDE, SIDE, 3)), 0, 255).astype(np.uint8)
    image[TISSUE] = np.clip(rng.normal((130, 170, 190), 6, (1024, 1536, 3)), 0, 255).astype(np.uint8)
    image[TUMOUR] = np.clip(rng.normal((220, 60, 200), 6, (512, 512, 3)), 0, 255).astype(np.uint8)
    write_pyramid(folder / "slide.tiff", image, levels=3, mpp=0.5)
    return folder / "slide.tiff"


def mean_colour_model(folder: Path) -> Path:
    return write_tiny_model(folder / "tiny.onnx", image_size=SIZE)


def pixel_weights(size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(3*S*S, 2) weights and (2,) bias of the pixel-linear model: red minus green weighted by a zero-mean ramp
    that grows right and (twice as fast) down, plus noise, so no flip or turn of a structured tile (a tumour
    edge) leaves its score unchanged; a uniform tile scores near 0.5."""
    rng = np.random.default_rng(1)
    ramp = np.add.outer(2 * np.arange(size), np.arange(size)) / (3 * size)
    ramp -= ramp.mean()
    w = ramp[None] * np.array([1.0, -1.0, 0.3])[:, None, None] * (16 / size**2) + rng.normal(0, 1e-3, (3, size, size))
    weights = np.stack([-w.ravel(), w.ravel()], axis=1).astype(np.float32)
    return weights, np.zeros(2, np.float32)


def pixel_linear_model(folder: Path, size: int = SIZE) -> Path:
    """A sealed HistoGuard ONNX file: image -> flatten -> linear -> softmax (not rotation-invariant)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from engine.core.fileio import write_bytes
    from engine.deploy.integrity import record_model, seal

    weights, bias = pixel_weights(size)
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "weights", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "pixel_linear",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2]),
        ],
        initializer=[numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="histoguard")
    model.ir_version = min(model.ir_version, 9)
    meta = tiny_metadata(size, ("benign", "malignant")).to_dict()
    helper.set_model_props(model, {k: json.dumps(v) for k, v in meta.items()})
    onnx.checker.check_model(model, full_check=True)
    path = folder / "pixel_linear.onnx"
    write_bytes(path, seal(model))
    record_model(path)
    return path
