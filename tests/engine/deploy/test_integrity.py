"""Model integrity: every export records its sha256 (metadata, sidecar, run folder's SHA256SUMS), every open
checks it, and a tampered file (weights or metadata) is refused with a message that says what and why;
prediction rows are an audit trail (model and input sha256, app version, time)."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

import engine
from engine.core.errors import ModelError, ModelIntegrityError
from engine.deploy.blackbox import onnx_predictor
from engine.deploy.integrity import GRAPH_KEY, META_KEY, SUMS, graph_sha256, record_model, seal, verify_model
from engine.deploy.model_info import onnx_meta, read_model_info
from engine.deploy.predict import predict_files
from engine.deploy.quantize import compare_quantized, quantize_onnx
from engine.deploy.session import create_session, run_session, session_integrity, session_metadata
from engine.export.match import verify_onnx_checkpoint
from engine.export.onnx_export import export_verified
from engine.models.checkpoint import make_metadata, save_checkpoint
from engine.models.registry import create_model

SIZE = 16
REPO = Path(__file__).resolve().parents[3]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A run folder (config.json, checkpoint) holding model_a.onnx exported by the normal path."""
    import torch

    run = tmp_path_factory.mktemp("integrity") / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    torch.manual_seed(0)
    model = create_model("small_cnn").eval()
    meta = make_metadata("small_cnn", ["benign", "malignant"], SIZE, {"method": "clean", "eps": None}, split_hash="0")
    save_checkpoint(run / "model_a" / "best.pt", model, meta)
    x = np.random.default_rng(0).random((4, 3, SIZE, SIZE), dtype=np.float32)
    export_verified(model, run / "model_a.onnx", meta, SIZE, [x])
    return run


@pytest.fixture
def run(exported, tmp_path) -> Path:
    """A copy of the run folder that a test may tamper with."""
    return Path(shutil.copytree(exported, tmp_path / "run"))


def images(n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, SIZE, SIZE), dtype=np.float32)


def flip_weight(path: Path) -> None:
    """Change one float of the largest initializer in place (its exponent byte): same size, still valid ONNX."""
    data = bytearray(path.read_bytes())
    weights = max(onnx.load_from_string(bytes(data)).graph.initializer, key=lambda t: len(t.raw_data)).raw_data
    start = bytes(data).find(weights)
    assert start > 0 and bytes(data).find(weights, start + 1) == -1, "the weights occur once in the file"
    data[start + 4 * 10 + 3] ^= 0x40  # float 10, most significant byte (little-endian)
    path.write_bytes(bytes(data))


def edit_metadata(path: Path, reseal: bool = False, **changes) -> None:
    """Set metadata entries (JSON-encoded) and save, as a user with the onnx package would; ``reseal``
    also recomputes the embedded hashes, as someone who knows HistoGuard would."""
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props} | {k: json.dumps(v) for k, v in changes.items()}
    onnx.helper.set_model_props(proto, {k: v for k, v in props.items() if v != "null"})
    path.write_bytes(seal(proto) if reseal else proto.SerializeToString())


def alone(run: Path) -> Path:
    """model_a.onnx without its recorded hashes (sidecar, SHA256SUMS): a file that travels alone."""
    (run / "model_a.onnx.sha256").unlink()
    (run / SUMS).unlink()
    return run / "model_a.onnx"


# --- what an export records -------------------------------------------------------------------------------
def test_export_records_the_sha256_in_metadata_sidecar_and_run_folder(exported):
    model = exported / "model_a.onnx"
    digest = sha256(model)
    assert (exported / "model_a.onnx.sha256").read_text() == f"{digest}  model_a.onnx\n"
    assert (exported / SUMS).read_text() == f"{digest}  model_a.onnx\n"
    data = model.read_bytes()
    props = {p.key: json.loads(p.value) for p in onnx.load_from_string(data).metadata_props}
    assert props[GRAPH_KEY] == graph_sha256(data) and len(props[META_KEY]) == 64
    info = verify_model(model)
    assert info["sha256"] == digest and info["recorded_in"] == ["model_a.onnx.sha256", SUMS]
    assert info["metadata"]["classes"] == ["benign", "malignant"]


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils' sha256sum")
def test_recorded_hashes_pass_sha256sum_check(run):
    check = ["sha256sum", "--check", "--strict"]
    for name in (SUMS, "model_a.onnx.sha256"):
        assert subprocess.run([*check, name], cwd=run, capture_output=True).returncode == 0
    flip_weight(run / "model_a.onnx")  # control: sha256sum does see a change
    assert subprocess.run([*check, SUMS], cwd=run, capture_output=True).returncode != 0


def test_export_again_and_int8_copy_update_sha256sums(run):
    (run / SUMS).write_text(f"{'0' * 64}  notes.txt\n{'1' * 64}  model_a.onnx\n")  # another file, a stale line
    digest = record_model(run / "model_a.onnx")
    assert (run / SUMS).read_text() == f"{'0' * 64}  notes.txt\n{digest}  model_a.onnx\n"
    info = quantize_onnx(run / "model_a.onnx", run / "model_a.int8.onnx", mode="dynamic")
    lines = (run / SUMS).read_text().splitlines()
    assert info["sha256"] == sha256(run / "model_a.int8.onnx")
    assert lines[-1] == f"{info['sha256']}  model_a.int8.onnx"
    assert (run / "model_a.int8.onnx.sha256").read_text() == lines[-1] + "\n"
    assert verify_model(run / "model_a.int8.onnx")["recorded_in"] == ["model_a.int8.onnx.sha256", SUMS]
    assert session_metadata(create_session(run / "model_a.int8.onnx", device="cpu"))["quantization"]["mode"]


def test_a_model_outside_a_run_folder_gets_only_a_sidecar(run, tmp_path):
    out = tmp_path / "elsewhere"
    out.mkdir()
    quantize_onnx(run / "model_a.onnx", out / "m.int8.onnx", mode="dynamic")
    assert sorted(p.name for p in out.iterdir()) == ["m.int8.onnx", "m.int8.onnx.sha256"]


def test_hashes_survive_an_onnx_load_save_round_trip(run, tmp_path):
    copy = tmp_path / "copy.onnx"
    onnx.save(onnx.load(str(run / "model_a.onnx")), str(copy))
    assert graph_sha256(copy.read_bytes()) == graph_sha256((run / "model_a.onnx").read_bytes())
    assert verify_model(copy)["recorded_in"] == []  # no record beside it: the embedded hashes are checked


# --- opening checks it -------------------------------------------------------------------------------------
def test_untouched_model_opens_and_the_session_runs_the_checked_bytes(run):
    session = create_session(run / "model_a.onnx", device="cpu")
    assert session_integrity(session)["sha256"] == sha256(run / "model_a.onnx")
    assert run_session(session, images()).shape == (3, 2)


@pytest.mark.parametrize("where", ["in its run folder", "alone"])
def test_flipped_weight_is_refused(run, where):
    path = run / "model_a.onnx" if where != "alone" else alone(run)
    before = ort.InferenceSession(path.read_bytes()).run(["probabilities"], {"image": images()})[0]
    flip_weight(path)
    # control: onnxruntime alone would run the tampered file, and it answers differently
    after = ort.InferenceSession(path.read_bytes()).run(["probabilities"], {"image": images()})[0]
    assert np.abs(after - before).max() > 1e-3
    with pytest.raises(ModelIntegrityError) as refused:
        create_session(path, device="cpu")
    message = str(refused.value)
    assert str(path) in message and "weights or graph changed" in message and "export it again" in message
    assert ("SHA256SUMS records" in message and "model_a.onnx.sha256 records" in message) == (where != "alone")


def test_swapped_classes_are_refused_by_the_recorded_file_hash(run):
    path = run / "model_a.onnx"
    edit_metadata(path, reseal=True, classes=["malignant", "benign"], positive_class="benign")
    with pytest.raises(ModelIntegrityError, match="model_a.onnx.sha256 records") as refused:
        verify_model(path)
    message = str(refused.value)
    assert "SHA256SUMS records" in message and sha256(path)[:16] in message
    assert "graph changed" not in message and "metadata changed" not in message  # the embedded hashes were redone
    # control: the same file alone opens (its embedded hashes were recomputed): the record caught it
    assert verify_model(alone(run))["metadata"]["classes"] == ["malignant", "benign"]


def test_metadata_edited_in_a_file_that_travels_alone_is_refused(run):
    path = alone(run)
    edit_metadata(path, classes=["malignant", "benign"])
    with pytest.raises(ModelIntegrityError, match="its metadata changed"):
        verify_model(path)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"image_size": 64}, "input has shape"),
        ({"classes": ["a", "b", "c"], "positive_class": "c"}, "'probabilities' has 2 values, but it has 3"),
        ({"classes": ["a", "a"], "positive_class": "a"}, "2 or more different names"),
        ({"positive_class": "tumour"}, "positive class 'tumour'"),
        ({"arch": None}, r"lacks \['arch'\]"),
    ],
)
def test_metadata_that_does_not_fit_the_graph_is_refused(run, changes, match):
    path = alone(run)
    edit_metadata(path, reseal=True, **changes)
    with pytest.raises(ModelIntegrityError, match=match):
        verify_model(path)


def test_old_export_without_hashes_and_foreign_onnx_are_refused(run):
    path = alone(run)
    edit_metadata(path, **{GRAPH_KEY: None, META_KEY: None})
    with pytest.raises(ModelIntegrityError, match=f"no {GRAPH_KEY}"):
        verify_model(path)
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    onnx.save(proto, str(path))
    with pytest.raises(ModelError, match="no HistoGuard metadata") as refused:
        verify_model(path)
    assert not isinstance(refused.value, ModelIntegrityError)


def test_a_broken_sidecar_is_refused(run):
    (run / "model_a.onnx.sha256").write_text("not a hash\n")
    with pytest.raises(ModelIntegrityError, match="sha256  name"):
        verify_model(run / "model_a.onnx")


def _opens(path: Path):
    return [
        lambda: predict_files(path, [path.with_name("a.png")], device="cpu"),
        lambda: onnx_predictor(path, device="cpu"),
        lambda: onnx_meta(path),
        lambda: read_model_info(path, device="cpu"),
        lambda: quantize_onnx(path, path.with_name("q.onnx"), mode="dynamic"),
        lambda: compare_quantized(path, path, images(), [0, 1, 0]),
        lambda: verify_onnx_checkpoint(path, path.parent / "model_a" / "best.pt"),
    ]


@pytest.mark.parametrize(
    "i", range(7), ids=["predict", "blackbox", "model-meta", "model-info", "quantize", "compare", "match"]
)
def test_every_way_of_opening_a_model_refuses_a_tampered_one(run, i):
    path = run / "model_a.onnx"
    Image.new("RGB", (SIZE, SIZE), (200, 100, 150)).save(run / "a.png")
    _opens(path)[i]()  # control: the untouched file opens that way
    (run / "q.onnx").unlink(missing_ok=True)
    flip_weight(path)
    with pytest.raises(ModelIntegrityError, match="model_a.onnx"):
        _opens(path)[i]()
    assert not (run / "q.onnx").exists()


def test_integrity_check_needs_no_torch(exported):
    code = (
        "import sys\n"
        "from engine.deploy.integrity import verify_model\n"
        "from engine.deploy.session import create_session\n"
        f"create_session({str(exported / 'model_a.onnx')!r}, device='cpu')\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]


# --- the audit trail of predictions -----------------------------------------------------------------------
def test_prediction_rows_record_model_input_version_and_time(run, tmp_path):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    Image.new("RGB", (24, 20), (200, 100, 150)).save(good)
    bad.write_bytes(b"not an image at all")
    out = tmp_path / "predictions.csv"
    predict_files(run / "model_a.onnx", [good, bad], out, device="cpu")
    rows = {r["path"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    recorded = (run / "model_a.onnx.sha256").read_text().split()[0]
    for path in (good, bad):
        row = rows[str(path)]
        assert row["input_sha256"] == sha256(path)
        assert row["model_sha256"] == recorded == sha256(run / "model_a.onnx")
        assert row["app_version"] == engine.__version__
        assert datetime.fromisoformat(row["time"]).utcoffset() is not None  # ISO 8601 with a time zone
    assert rows[str(good)]["predicted"] and rows[str(bad)]["error"]
