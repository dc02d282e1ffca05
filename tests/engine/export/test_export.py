"""ONNX export with metadata and proven parity, onnxruntime sessions, and offline prediction of files."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from engine.attacks import fgsm
from engine.core.errors import ConfigError, DataError, ExportError, ModelError
from engine.data.decode import decode_image
from engine.data.inputs import collect_images
from engine.deploy.predict import predict_files
from engine.deploy.session import create_session, run_session, session_metadata, session_provider
from engine.export import onnx_export
from engine.export.onnx_export import check_parity, export_verified
from engine.models.checkpoint import make_metadata, weights_sha256
from engine.models.registry import create_model

SIZE = 32
CLASSES = ["benign", "malignant"]
HAS_CUDA = torch.cuda.is_available()


def _model(seed=0):
    torch.manual_seed(seed)
    model = create_model("small_cnn").train()
    with torch.no_grad():  # non-default BatchNorm statistics, so the export must use eval mode
        model(torch.rand(8, 3, SIZE, SIZE) * 0.5)
    return model.eval()


def _images(n, seed=0):
    return np.random.default_rng(seed).random((n, 3, SIZE, SIZE), dtype=np.float32)


def _meta():
    return make_metadata("small_cnn", CLASSES, SIZE, {"method": "clean", "eps": None}, split_hash="0123abcd")


def _torch_probs(model, x):
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    model = _model()
    x = _images(6)
    x_adv = fgsm(model, torch.from_numpy(x), torch.tensor([0, 1, 0, 1, 1, 0]), eps=8 / 255).numpy()
    path = folder / "model.onnx"
    info = export_verified(model, path, _meta(), SIZE, [x, x_adv])
    return model, path, info, x, x_adv


def test_export_is_one_self_contained_checked_file(exported):
    model, path, info, *_ = exported
    # no .onnx.data, no .partial; the sha256 recorded beside it (engine.deploy.integrity)
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx", "model.onnx.sha256"]
    assert info["path"] == str(path)
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["weights_sha256"] == weights_sha256(model)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.graph.initializer, "the weights are inside the file"
    assert not any(onnx.external_data_helper.uses_external_data(t) for t in proto.graph.initializer)
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["logits", "probabilities"]
    assert proto.producer_name == "histoguard"


def test_metadata_travels_in_the_onnx_file(exported):
    model, path, *_ = exported
    meta = session_metadata(create_session(path, device="cpu"))
    assert meta["classes"] == CLASSES
    assert meta["image_size"] == SIZE
    assert meta["arch"] == "small_cnn"
    assert meta["positive_class"] == "malignant"
    assert meta["split_hash"] == "0123abcd"
    assert meta["training"] == {"method": "clean", "eps": None}
    assert meta["weights_sha256"] == weights_sha256(model)
    assert meta["mean"] == pytest.approx([0.485, 0.456, 0.406])


@pytest.mark.parametrize("n", [1, 5])
def test_dynamic_batch_gives_logits_and_probabilities(exported, n):
    model, path, *_ = exported
    session = create_session(path, device="cpu")
    x = _images(n, seed=10 + n)
    logits, probs = session.run(["logits", "probabilities"], {"image": x})
    assert logits.shape == probs.shape == (n, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(probs, torch.softmax(torch.from_numpy(logits), dim=1).numpy(), atol=1e-6)
    with torch.no_grad():
        np.testing.assert_allclose(logits, model(torch.from_numpy(x)).numpy(), atol=1e-4)
    np.testing.assert_allclose(run_session(session, x, batch_size=2), probs, atol=1e-7)


def test_parity_on_clean_and_adversarial_images(exported):
    model, path, info, x, x_adv = exported
    assert 0 <= info["max_abs_diff"] <= 1e-4
    assert not np.allclose(_torch_probs(model, x), _torch_probs(model, x_adv))  # the FGSM batch is different
    assert check_parity(model, path, [x]) <= 1e-4
    assert check_parity(model, path, [x_adv]) <= 1e-4
    session = create_session(path, device="cpu")
    assert np.abs(run_session(session, x_adv) - _torch_probs(model, x_adv)).max() <= 1e-4


def test_check_parity_against_a_different_model_raises(exported):
    _, path, _, x, _ = exported
    other = _model(seed=1)
    with pytest.raises(ExportError, match="differs from torch"):
        check_parity(other, path, [x])


def test_failed_parity_leaves_no_file(tmp_path, monkeypatch):
    """The model changes between export and the parity check: export_verified must not publish the file."""
    model = _model()
    real_export = onnx_export.export_onnx

    def export_then_drift(m, p, metadata, image_size):
        info = real_export(m, p, metadata, image_size)
        with torch.no_grad():
            m.backbone[-1].bias += torch.tensor([1.0, -1.0])
        return info

    monkeypatch.setattr(onnx_export, "export_onnx", export_then_drift)
    target = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match="differs from torch"):
        export_verified(model, target, _meta(), SIZE, [_images(4)])
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # no .partial or temp files either


def test_failed_parity_keeps_an_existing_file(tmp_path, monkeypatch):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous export")
    monkeypatch.setattr(onnx_export, "check_parity", lambda *a, **k: (_ for _ in ()).throw(ExportError("forced")))
    with pytest.raises(ExportError, match="forced"):
        export_verified(_model(), target, _meta(), SIZE, [_images(2)])
    assert target.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_export_leaves_the_callers_weights_alone(tmp_path):
    model = _model()
    before = weights_sha256(model)
    info = export_verified(model, tmp_path / "m.onnx", _meta(), SIZE, [_images(2)])
    assert weights_sha256(model) == before == info["weights_sha256"]


def test_session_reports_the_provider_it_really_uses(exported):
    """'cpu' is always the CPU; 'auto' is CUDA exactly when a GPU and onnxruntime's CUDA provider are both there."""
    _, path, *_ = exported
    assert session_provider(create_session(path, device="cpu")) == "CPUExecutionProvider"
    expected = "CUDAExecutionProvider" if HAS_CUDA and _ort_has_cuda() else "CPUExecutionProvider"
    assert session_provider(create_session(path, device="auto", threads=1)) == expected


@pytest.mark.skipif(HAS_CUDA, reason="needs a machine without a CUDA GPU")
def test_cuda_session_without_gpu_is_an_error(exported):
    _, path, *_ = exported
    with pytest.raises(ModelError, match="CUDA"):
        create_session(path, device="cuda")


def _ort_has_cuda() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


@pytest.mark.skipif(not HAS_CUDA or not _ort_has_cuda(), reason="needs a CUDA GPU and onnxruntime-gpu")
def test_cuda_session_with_gpu(exported):
    _, path, *_ = exported
    assert session_provider(create_session(path, device="cuda")) == "CUDAExecutionProvider"


def test_session_on_a_non_onnx_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="bad.onnx"):
        create_session(bad, device="cpu")


# --- predict_files --------------------------------------------------------------------------------------


def _write_pngs(folder):
    rng = np.random.default_rng(3)
    folder.mkdir()
    paths = []
    for i, (w, h) in enumerate([(40, 48), (32, 32), (64, 36)]):
        p = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    sub = folder / "sub"
    sub.mkdir()
    gray = sub / "gray.png"
    Image.fromarray(rng.integers(0, 256, (50, 50), dtype=np.uint8), "L").save(gray)
    paths.append(gray)
    corrupt = folder / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    (folder / "notes.txt").write_text("not an image")
    return paths, corrupt


def test_predict_files_writes_one_row_per_image(exported, tmp_path):
    model, path, *_ = exported
    good, corrupt = _write_pngs(tmp_path / "imgs")
    out_csv = tmp_path / "out" / "predictions.csv"
    rows = predict_files(path, [tmp_path / "imgs"], out_csv, batch_size=2, device="cpu")
    assert len(rows) == len(good) + 1

    with open(out_csv, newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(good) + 1
    assert {"path", "predicted", "p_benign", "p_malignant", "error", "model_sha256", "provider"} <= set(table[0])
    by_path = {r["path"]: r for r in table}
    assert set(by_path) == {str(p) for p in good} | {str(corrupt)}
    file_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    for row in table:
        assert row["model_sha256"] == file_sha
        assert row["model"] == "model.onnx"
        assert row["provider"] == "CPUExecutionProvider"

    bad = by_path[str(corrupt)]
    assert "broken.png" in bad["error"]
    assert bad["predicted"] == "" and bad["p_benign"] == ""

    for p in good:
        row = by_path[str(p)]
        assert row["error"] == ""
        probs = np.array([float(row["p_benign"]), float(row["p_malignant"])])
        assert probs.sum() == pytest.approx(1.0, abs=1e-6)
        assert row["predicted"] == CLASSES[int(probs.argmax())]
        # same pre-processing as training: resize the short side, centre crop, /255
        x = (decode_image(p, SIZE).astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        np.testing.assert_allclose(probs, _torch_probs(model, np.ascontiguousarray(x))[0], atol=1e-4)
        assert row["review"] == ("uncertain" if 0.2 <= probs[1] <= 0.8 else "") and row["review_band"] == "0.20-0.80"
        assert row["temperature"] == ""  # not calibrated: no temperature recorded


def test_predict_files_flags_the_review_band(exported, tmp_path):
    """Every call inside a wide band is 'uncertain'; a band of one point flags none; a bad band is refused
    before any image is read."""
    _, path, *_ = exported
    good, _ = _write_pngs(tmp_path / "imgs")
    wide = predict_files(path, good, None, device="cpu", review_band=(0.0, 1.0))
    assert all(r["review"] == "uncertain" and r["review_band"] == "0.00-1.00" for r in wide)
    none = predict_files(path, good, None, device="cpu", review_band=(0.5, 0.5))
    assert all(r["review"] == "" for r in none if r["p_malignant"] != 0.5)
    with pytest.raises(ConfigError, match="review band"):
        predict_files(path, good, None, device="cpu", review_band=(0.6, 0.9))


def test_predict_files_without_csv_and_explicit_files(exported, tmp_path):
    _, path, *_ = exported
    good, _ = _write_pngs(tmp_path / "imgs")
    rows = predict_files(path, [good[1], good[0], good[1]], None, device="cpu")
    assert [r["path"] for r in rows] == [str(good[1]), str(good[0])]  # given order, no duplicates
    assert not list(tmp_path.glob("*.csv"))


def test_predict_files_refuses_onnx_without_metadata(tmp_path, exported):
    _, path, *_ = exported
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    img = tmp_path / "a.png"
    Image.new("RGB", (32, 32), (200, 100, 150)).save(img)
    with pytest.raises(ModelError, match="metadata"):
        predict_files(bare, [img], device="cpu")


def test_collect_images_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="no images"):
        collect_images([empty])
    with pytest.raises(DataError, match="does not exist"):
        collect_images([tmp_path / "missing"])


def test_collect_images_expands_folders_recursively(tmp_path):
    good, corrupt = _write_pngs(tmp_path / "imgs")
    found = collect_images([tmp_path / "imgs"])
    assert set(found) == set(good) | {corrupt}
    assert all(p.suffix == ".png" for p in found)


def test_gpu_check_ignores_a_half_imported_torch(monkeypatch):
    """The app imports torch on a worker at start-up; a model opened meanwhile must not touch torch.cuda."""
    import importlib.machinery
    import sys
    import types

    from engine.deploy import session

    half = types.ModuleType("torch")  # no ``cuda`` attribute yet, as during torch's own import
    half.__spec__ = importlib.machinery.ModuleSpec("torch", None)
    half.__spec__._initializing = True
    monkeypatch.setitem(sys.modules, "torch", half)
    assert session._gpu_driver_present() in (True, False)  # answered by the driver check, no AttributeError
