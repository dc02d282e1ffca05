"""Optional INT8 copies of exported ONNX models (onnxruntime.quantization), and what the copy costs in accuracy.

Static quantisation is the default because it is the only kind measured to be faster than fp32 on our CPUs
(``python -m bench.inference``: QOperator, uint8 activations, int8 per-channel weights, ~1.2x for DenseNet121; QDQ
and dynamic INT8 were slower). Static needs calibration images to fix each activation's range; MinMax over
a few dozen images of the validation split is enough for a classifier (more only costs time). Dynamic INT8
needs no calibration but picks one activation range per batch, so an image's probabilities depend on the
other images in its batch: not what a diagnostic tool should do, one more reason for static. The nodes
that write the graph outputs (the 2-way head and its softmax) stay in float: they cost nothing, keep
``logits`` precise, and keep ``probabilities`` summing to 1.

Nothing here imports torch: a lab can quantise and check the file it deploys with the lean install.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engine.core.errors import DataError, ExportError, ModelError, RunFolderError
from engine.core.fileio import write_bytes
from engine.core.intervals import metrics_with_intervals
from engine.core.paired import compare
from engine.deploy.blackbox import as_nchw_float
from engine.deploy.integrity import load_verified, record_model, seal

log = logging.getLogger(__name__)
MODES = ("static", "dynamic")
CALIBRATION_BATCH = 8  # MinMax keeps the extremes over all batches: the batch size changes only memory use
OUTPUTS = ("logits", "probabilities")


def quantize_onnx(
    src: str | Path,
    dst: str | Path,
    calibration: np.ndarray | None = None,
    mode: str = "static",
    per_channel: bool = True,
    reduce_range: bool = False,
) -> dict:
    """Write an INT8 copy of the HistoGuard ONNX file ``src`` to ``dst`` (atomically) and return what was done.

    ``calibration``: float32 (N, 3, H, W) images in [0, 1] at the model's input size, required for
    ``mode="static"`` (ignored by "dynamic"). ``reduce_range`` (7-bit weights) avoids int16 saturation on
    x86 CPUs without VNNI (pre-2019); leave it off elsewhere. The copy keeps the source's metadata plus a
    ``quantization`` entry ({mode, format, ..., source_sha256}) so the app and the CLI can say it is INT8,
    and its own embedded hashes; its sha256 is recorded beside it like an export's (``integrity``). The
    source is checked like every model that is opened, and the bytes checked are the bytes quantised.
    """
    import onnx

    src, dst = Path(src), Path(dst)
    src_bytes, proto, checked = _load_source(src)
    if dst.resolve() == src.resolve():
        raise ModelError(f"the INT8 copy would replace {src.name}; choose another output file (e.g. *.int8.onnx)")
    if mode not in MODES:
        raise ModelError(f"unknown quantisation mode {mode!r}; choose 'static' (faster on CPU) or 'dynamic'")
    input_name = proto.graph.input[0].name
    if mode == "static" or calibration is not None:  # dynamic uses them only to check the copy runs
        calibration = check_calibration(calibration, _input_shape(proto))
    exclude = _head_nodes(proto, mode)
    info = {
        "mode": mode,
        "format": "QOperator" if mode == "static" else "IntegerOps",
        "activation_type": "uint8",
        "weight_type": "int8",
        "per_channel": per_channel,
        "reduce_range": reduce_range,
        "calibration_images": int(len(calibration)) if mode == "static" else 0,
        "calibration_method": "MinMax" if mode == "static" else None,
        "float_nodes": exclude,
        "source_file": src.name,
        "source_sha256": checked["sha256"],
    }
    with _work_dir(dst) as tmp:  # beside dst: the intermediate files can be as large as the model
        source = tmp / "source.onnx"  # the verified bytes, not the path: the file may change meanwhile
        write_bytes(source, src_bytes)
        model_in = _pre_process(source, tmp / "pre.onnx")
        info["pre_processed"] = model_in != source
        try:
            _quantize(model_in, tmp / "int8.onnx", mode, calibration, input_name, per_channel, reduce_range, exclude)
            result = onnx.load(str(tmp / "int8.onnx"))
        except Exception as exc:
            raise ExportError(f"INT8 quantisation of {src.name} failed: {exc}") from exc
    _copy_metadata(proto, result, info)
    data = seal(result)
    _check_loads(data, proto, calibration)
    write_bytes(dst, data)
    info.update(path=str(dst), sha256=record_model(dst), bytes=dst.stat().st_size, source_bytes=len(src_bytes))
    log.info("INT8 (%s) copy of %s: %s, %d -> %d bytes", mode, src.name, dst, info["source_bytes"], info["bytes"])
    return info


@contextlib.contextmanager
def _work_dir(dst: Path) -> Iterator[Path]:
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.TemporaryDirectory(prefix=f".{dst.name}.", dir=dst.parent)
    except OSError as exc:
        raise RunFolderError(f"cannot write {dst}: {exc.strerror}; choose a folder you can write to") from exc
    with tmp as path:
        yield Path(path)


def _load_source(src: Path) -> tuple[bytes, object, dict]:
    """(bytes, ModelProto, integrity info) of the fp32 file, checked like every model that is opened."""
    data, proto, checked = load_verified(src)
    outputs = [o.name for o in proto.graph.output]
    if outputs != list(OUTPUTS):
        raise ModelError(f"{src.name} has outputs {outputs}, not {list(OUTPUTS)}; export it with HistoGuard")
    if any(p.key == "quantization" for p in proto.metadata_props):
        raise ModelError(f"{src.name} is already quantised; quantise the fp32 file it was made from")
    return data, proto, checked


def _head_nodes(proto, mode: str) -> list[str]:
    """Names of the nodes that write the graph outputs; dynamic quantisation first rewrites a Gemm into
    ``<name>_MatMul`` + ``<name>_Add`` (onnxruntime's replace_gemm_with_matmul), so that name is used there."""
    heads = [n for n in proto.graph.node if set(n.output) & set(OUTPUTS) and n.name]
    if mode == "dynamic":
        return [f"{n.name}_MatMul" if n.op_type == "Gemm" else n.name for n in heads]
    return [n.name for n in heads]


def _input_shape(proto) -> tuple:
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def check_calibration(images, shape: tuple) -> np.ndarray:
    """``images`` as float32 (N, 3, H, W) in [0, 1] matching the model's input ``shape``; DataError otherwise."""
    if images is None:
        raise DataError("static quantisation needs calibration images (a few dozen from the validation split)")
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1] != 3 or len(x) == 0 or not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"calibration images must be float (N, 3, H, W) with N >= 1, got {x.dtype} {x.shape}")
    if any(e and e != a for e, a in zip(shape[1:], x.shape[1:])):
        raise DataError(f"the model takes images of shape {shape[1:]}, the calibration images are {x.shape[1:]}")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise DataError("calibration images must be RGB in [0, 1] (divide 8-bit pixels by 255)")
    return np.ascontiguousarray(x, dtype=np.float32)


def _pre_process(src: Path, out: Path) -> Path:
    """ONNX shape inference + onnxruntime's basic graph optimisation, as recommended before quantising; the
    source itself if that fails. Symbolic shape inference is skipped: it is for symbolic (transformer) dims,
    our images have fixed sizes, and it imports torch (onnxruntime.tools), which costs seconds."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(out), skip_symbolic_shape=True)
        return out
    except Exception as exc:  # an optional optimisation: quantising without it still works
        log.warning("ONNX pre-processing for quantisation failed (%s); quantising the model as exported", exc)
        return src


def _quantize(src, out, mode, calibration, input_name, per_channel, reduce_range, exclude) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if mode == "dynamic":
        quantize_dynamic(
            str(src), str(out), per_channel=per_channel, reduce_range=reduce_range,
            weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
        )  # fmt: skip
        return
    quantize_static(
        str(src), str(out), _CalibrationReader(calibration, input_name),
        quant_format=QuantFormat.QOperator, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        per_channel=per_channel, reduce_range=reduce_range, nodes_to_exclude=exclude,
    )  # fmt: skip


class _CalibrationReader:
    """Feeds the calibration images in small batches; onnxruntime's CalibrationDataReader is an ABC that
    accepts any class with ``get_next`` (so onnxruntime is not imported when this module is)."""

    def __init__(self, images: np.ndarray, input_name: str) -> None:
        n, b = len(images), CALIBRATION_BATCH
        self._batches = iter([{input_name: images[i : i + b]} for i in range(0, n, b)])

    def get_next(self) -> dict | None:
        return next(self._batches, None)


def _copy_metadata(src_proto, proto, info: dict) -> None:
    """The source's HistoGuard metadata (exactly), plus ``quantization``; ``seal`` replaces the source's
    embedded hashes with the copy's own."""
    import onnx

    meta = {p.key: p.value for p in src_proto.metadata_props}
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, dict(meta, quantization=json.dumps(info)))
    proto.producer_name = src_proto.producer_name or "histoguard"


def _check_loads(data: bytes, src_proto, calibration) -> None:
    """onnxruntime opens the INT8 graph and it answers with the source's outputs and shapes."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        shape = [d if d else 1 for d in _input_shape(src_proto)]
        x = calibration[:2] if calibration is not None else np.full(shape, 0.5, np.float32)
        logits, probs = session.run(list(OUTPUTS), {session.get_inputs()[0].name: x})
    except Exception as exc:
        raise ExportError(f"onnxruntime cannot run the INT8 model: {exc}") from exc
    if logits.shape != probs.shape or len(probs) != len(x) or not np.allclose(probs.sum(1), 1, atol=1e-3):
        raise ExportError(f"the INT8 model answers with logits {logits.shape} and probabilities {probs.shape}")


def compare_quantized(
    fp32_session, int8_session, images: np.ndarray, labels, positive: int = 1, batch_size: int = 64, groups=None
) -> dict:
    """What the INT8 copy changes on labelled images: both models' accuracy, sensitivity, specificity and
    balanced accuracy with their patient-level intervals (``groups``: each image's patient), the accuracy
    change as a paired comparison (interval and McNemar p), their agreement, the images whose prediction
    flipped, and max/mean |probability difference|. ``images``: float32 (N, 3, H, W) in [0, 1] or the engine's
    cached uint8 (N, H, W, 3), converted one batch at a time (a test split at 224 px would not fit in memory as
    float). Sessions may be given as paths. ``*_seconds`` is the time spent in each session (a by-product, not
    a benchmark)."""
    from engine.deploy.session import create_session, session_provider

    y = np.asarray(labels, dtype=np.int64)
    if y.shape != (len(images),) or len(y) == 0:
        raise DataError(f"need N >= 1 images and N labels, got {len(images)} images and labels of shape {y.shape}")
    sessions = {"fp32": fp32_session, "int8": int8_session}
    sessions = {k: create_session(s, device="cpu") if isinstance(s, (str, Path)) else s for k, s in sessions.items()}
    probs: dict[str, list] = {k: [] for k in sessions}
    seconds = dict.fromkeys(sessions, 0.0)
    for i in range(0, len(y), batch_size):
        x = _float_batch(images[i : i + batch_size])
        for name, session in sessions.items():
            t = time.perf_counter()
            probs[name].append(session.run(["probabilities"], {session.get_inputs()[0].name: x})[0])
            seconds[name] += time.perf_counter() - t
    p32, p8 = np.concatenate(probs["fp32"]), np.concatenate(probs["int8"])
    flipped = np.flatnonzero(p32.argmax(1) != p8.argmax(1))
    diff = np.abs(p32 - p8)
    out: dict = {"n_images": int(len(y))}
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    for name, p in (("fp32", p32), ("int8", p8)):
        m = metrics_with_intervals(y == positive, y_pred=p.argmax(1) == positive, groups=groups)
        out[name] = dict(m, provider=session_provider(sessions[name]))
        out[f"{name}_seconds"] = round(seconds[name], 4)
    out["paired"] = compare(p8.argmax(1) == y, p32.argmax(1) == y, groups)  # INT8 minus FP32 accuracy
    return dict(
        out,
        accuracy_change=_delta(out["int8"]["accuracy"], out["fp32"]["accuracy"]),
        balanced_accuracy_change=_delta(out["int8"]["balanced_accuracy"], out["fp32"]["balanced_accuracy"]),
        agreement=1.0 - len(flipped) / len(y),
        flipped=int(len(flipped)),
        flipped_indices=flipped.tolist(),
        max_abs_prob_diff=float(diff.max()),
        mean_abs_prob_diff=float(diff.mean()),
    )


def _float_batch(images) -> np.ndarray:
    x = as_nchw_float(np.asarray(images))
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise DataError("float images must be RGB in [0, 1] (divide 8-bit pixels by 255)")
    return x


def _delta(a, b):
    return None if a is None or b is None else a - b
