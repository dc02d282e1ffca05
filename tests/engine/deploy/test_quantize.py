"""INT8 copies of exported ONNX models: they run with the same outputs, agree with fp32 on an easy task, carry
the metadata (marked INT8), are smaller, reject bad input with typed errors, need no torch, and the
``histoguard quantize`` command calibrates on val and reports the change on test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from engine.core.errors import DataError, ModelError
from engine.core.fileio import sha256_file
from engine.data.demo import default_demo_dir, generate_demo_dataset
from engine.data.discover import discover
from engine.data.split import make_split, save_split
from engine.deploy.quantize import compare_quantized, quantize_onnx
from engine.deploy.session import create_session, run_session, session_metadata
from engine.export.onnx_export import export_onnx
from engine.models.checkpoint import make_metadata
from engine.models.registry import create_model
from tests.conftest import toy_arrays

SIZE = 32
CLASSES = ("benign", "malignant")
REPO = Path(__file__).resolve().parents[3]
INT8_OPS = {"QLinearConv", "ConvInteger"}
QUANTISED_HEAD_OPS = {"QGemm", "QLinearSoftmax", "MatMulInteger", "QLinearMatMul"}


def _toy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = toy_arrays(n, SIZE, seed=seed)
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / 255, labels


@pytest.fixture(scope="module")
def fp32(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A small_cnn trained for a few steps on a separable toy set, exported; plus held-out images."""
    torch.manual_seed(0)
    x, y = (torch.from_numpy(a) for a in _toy(64, seed=0))
    model = create_model("small_cnn")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(15):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path_factory.mktemp("quantize") / "model.onnx"
    meta = make_metadata("small_cnn", ["benign", "malignant"], SIZE, {"method": "clean", "eps": None}, split_hash="0")
    export_onnx(model.eval(), path, meta, SIZE)
    return (path, *_toy(48, seed=1))


@pytest.fixture(scope="module")
def int8(fp32) -> dict[str, tuple[Path, dict]]:
    path, _, _ = fp32
    calibration, _ = _toy(32, seed=2)
    out = {}
    for mode in ("static", "dynamic"):
        dst = path.with_name(f"model.{mode}.onnx")
        out[mode] = dst, quantize_onnx(path, dst, calibration if mode == "static" else None, mode=mode)
    return out


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_int8_copy_runs_with_the_same_outputs(fp32, int8, mode):
    _, x, _ = fp32
    path, info = int8[mode]
    session = create_session(path, device="cpu")
    assert [o.name for o in session.get_outputs()] == ["logits", "probabilities"]
    logits, probs = session.run(None, {session.get_inputs()[0].name: x[:5]})
    assert logits.shape == probs.shape == (5, 2)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ops & INT8_OPS, f"no INT8 convolution in {sorted(ops)}"
    assert not ops & QUANTISED_HEAD_OPS, "the 2-way head and its softmax stay in float"
    assert info["mode"] == mode and info["format"] == ("QOperator" if mode == "static" else "IntegerOps")
    assert info["sha256"] == sha256_file(path)


def test_static_weights_are_int8_per_channel(int8):
    proto = onnx.load(str(int8["static"][0]))
    inits = {t.name: t for t in proto.graph.initializer}
    convs = [n for n in proto.graph.node if n.op_type == "QLinearConv"]
    assert len(convs) == 3
    for node in convs:  # inputs: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp[, bias]
        w, w_scale = inits[node.input[3]], inits[node.input[4]]
        assert w.data_type == onnx.TensorProto.INT8
        assert list(w_scale.dims) == [w.dims[0]], "one weight scale per output channel"


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_int8_agrees_with_fp32_on_an_easy_task(fp32, int8, mode):
    path, x, y = fp32
    r = compare_quantized(path, int8[mode][0], x, y)
    assert r["fp32"]["accuracy"] >= 0.9, "the toy net must have learnt the task for the check to mean anything"
    assert r["agreement"] >= 0.9 and r["int8"]["accuracy"] >= r["fp32"]["accuracy"] - 0.1
    p32 = run_session(create_session(path, device="cpu"), x, batch_size=64)  # compare_quantized's batches: dynamic
    p8 = run_session(create_session(int8[mode][0], device="cpu"), x, batch_size=64)  # INT8 depends on the batch
    flipped = np.flatnonzero(p32.argmax(1) != p8.argmax(1))
    assert r["flipped"] == len(flipped) and r["flipped_indices"] == flipped.tolist()
    assert r["max_abs_prob_diff"] == pytest.approx(np.abs(p32 - p8).max())
    assert 0 < r["max_abs_prob_diff"] < 0.2, "INT8 changes the probabilities a little, not a lot"
    assert r["accuracy_change"] == pytest.approx(r["int8"]["accuracy"] - r["fp32"]["accuracy"])
    uint8 = np.round(x * 255).astype(np.uint8).transpose(0, 2, 3, 1)  # the engine's cached form gives the same
    assert compare_quantized(path, int8[mode][0], uint8, y)["flipped_indices"] == r["flipped_indices"]


def test_metadata_is_carried_over_and_marks_int8(fp32, int8):
    path = fp32[0]
    source = session_metadata(create_session(path, device="cpu"))
    meta = session_metadata(create_session(int8["static"][0], device="cpu"))
    assert {k: meta[k] for k in source} == source
    q = meta["quantization"]
    assert (q["mode"], q["format"], q["calibration_images"]) == ("static", "QOperator", 32)
    assert q["source_sha256"] == sha256_file(path) and q["per_channel"] is True
    assert session_metadata(create_session(int8["dynamic"][0], device="cpu"))["quantization"]["mode"] == "dynamic"


def test_int8_file_is_smaller(fp32, int8):
    size = fp32[0].stat().st_size
    assert size > 80_000, "weights must dominate the file for this check to mean anything"
    for path, info in int8.values():
        assert path.stat().st_size == info["bytes"] < 0.5 * size


def test_bad_inputs_raise_typed_errors_and_leave_the_output_alone(fp32, int8, tmp_path):
    path, x, y = fp32
    dst = tmp_path / "out.onnx"
    dst.write_bytes(b"an earlier file")
    cases = [
        (DataError, "float", dict(calibration=x.transpose(0, 2, 3, 1))),
        (DataError, r"\[0, 1\]", dict(calibration=x * 255)),
        (DataError, "shape", dict(calibration=x[:, :, :16, :16])),
        (DataError, "calibration images", dict(calibration=None)),
        (ModelError, "mode", dict(calibration=x, mode="fp16")),
        (ModelError, "does not exist", dict(src=tmp_path / "missing.onnx", calibration=x)),
        (ModelError, "replace", dict(dst=path, calibration=x)),
        (ModelError, "already quantised", dict(src=int8["static"][0], calibration=x)),
    ]
    for error, match, kwargs in cases:
        args = {"src": path, "dst": dst} | kwargs
        with pytest.raises(error, match=match):
            quantize_onnx(args.pop("src"), args.pop("dst"), args.pop("calibration"), **args)
    assert dst.read_bytes() == b"an earlier file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.onnx"], "no temporary files left behind"
    with pytest.raises(DataError, match="labels"):
        compare_quantized(path, int8["static"][0], x, y[:-1])
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        compare_quantized(path, int8["static"][0], x * 255, y)


def test_quantize_command_on_the_demo_needs_no_torch(fp32, tmp_path):
    """End to end: calibrate on val, compare on test, table + JSON; the model sits in a run folder whose
    split.csv (not a new split) decides which images are val and test."""
    run = tmp_path / "run"
    run.mkdir()
    model = run / "model_a.onnx"
    model.write_bytes(fp32[0].read_bytes())
    dataset = discover(generate_demo_dataset(default_demo_dir()))
    split = make_split(dataset, ratios=(0.5, 0.3, 0.2), seed=3)
    save_split(run / "split.csv", dataset, split)
    code = (
        "import sys\n"
        "import engine.deploy.quantize\n"
        "assert 'torch' not in sys.modules, 'importing engine.deploy.quantize imports torch'\n"
        "from engine.cli import main\n"
        f"rc = main(['quantize', '--model', {str(model)!r}, '--demo', '--calibration-images', '40'])\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fp32" in proc.stdout and "int8" in proc.stdout and "agree" in proc.stdout
    result = json.loads((run / "model_a.int8.json").read_text())
    assert result["split_source"] == "split.csv"  # paths in a run folder are the folder's
    assert (result["model"], result["int8_model"], result["quantization"]["path"]) == (
        "model_a.onnx",
        "model_a.int8.onnx",
        "model_a.int8.onnx",
    )
    assert result["quantization"]["calibration_images"] == 40
    c = result["comparison"]
    assert c["n_images"] == len(split.indices("test"))
    # intervals over the test split's patients, and the change as a paired comparison of the same images
    test_patients = {dataset.records[i].patient_id for i in split.indices("test")}
    assert (
        len(test_patients) >= 2
        and c["fp32"]["ci"]["accuracy"][0] <= c["fp32"]["accuracy"] <= c["fp32"]["ci"]["accuracy"][1]
    )
    assert c["paired"]["difference"] == pytest.approx(c["accuracy_change"]) and 0 < c["paired"]["p_value"] <= 1
    assert "McNemar p" in proc.stdout or c["paired"]["ci"] is None
    assert result["synthetic_data"] is True
    meta = session_metadata(create_session(run / "model_a.int8.onnx", device="cpu"))
    assert meta["quantization"]["source_sha256"] == sha256_file(model)


def test_the_split_of_an_image_level_run_is_kept_not_replaced(tmp_path):
    """A saved split.csv is checked at the level its run was made with: an image-level run's split (patients in
    two splits) still decides the test images, rather than failing the patient-level check for a new split."""
    from engine.core.config import DataConfig, ExperimentConfig, TrainConfig
    from engine.data.records import Dataset, ImageRecord
    from engine.deploy.quantize_data import _split
    from engine.runs.folder import RunFolder

    records = [
        ImageRecord(tmp_path / c / f"{c[0]}{p}_{i}.png", c, f"{c[0]}{p}") for c in CLASSES for p in range(6)
        for i in range(4)
    ]  # fmt: skip
    dataset = Dataset(tmp_path, "class-folders", records, tuple(CLASSES))
    split = make_split(dataset, seed=1, level="image")
    run = tmp_path / "run"
    RunFolder.prepare(run, ExperimentConfig(DataConfig(demo=True, split_level="image"), TrainConfig())).release()
    save_split(run / "split.csv", dataset, split)
    kept, source = _split(run / "model_a.onnx", DataConfig(demo=True), dataset)
    assert (kept.assignment, kept.level, source) == (split.assignment, "image", str(run / "split.csv"))
