"""The model's stain normalisation where it runs (engine.deploy.model_inputs): ``histoguard predict`` normalises an
image from another lab to the model's recorded reference, a model without the record sees its images as they are,
and the path needs no torch. The model is the self-test's tiny ONNX classifier (a linear function of the mean colour),
so its call depends on colour alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.data.stain_norm import fit_reference
from engine.deploy.model_inputs import prepare_inputs
from engine.deploy.predict import predict_files
from engine.deploy.session import create_session, session_meta
from engine.deploy.tiny import tiny_metadata
from tests.engine.data.stain_images import OTHER_LAB_STAINS, REFERENCE_STAINS, he_images

ROOT = Path(__file__).resolve().parents[3]
SIZE = 32


def _colour_model(path: Path, stain: dict | None, threshold: float) -> Path:
    """The tiny model, its call p(malignant) >= 0.5 where 4R - 4G + 2B (mean colour in [0, 1]) >= ``threshold``."""
    import onnx
    from onnx import helper, numpy_helper

    from engine.core.fileio import write_bytes
    from engine.deploy.integrity import record_model, seal
    from engine.deploy.tiny import tiny_onnx_model

    proto = tiny_onnx_model(SIZE)
    bias = next(t for t in proto.graph.initializer if t.name == "bias")
    bias.CopyFrom(numpy_helper.from_array(np.array([threshold / 2, -threshold / 2], np.float32), "bias"))
    meta = tiny_metadata(SIZE, ("benign", "malignant")).replace(stain_norm=stain)
    del proto.metadata_props[:]
    helper.set_model_props(proto, {k: json.dumps(v) for k, v in meta.to_dict().items()})
    onnx.checker.check_model(proto, full_check=True)
    write_bytes(path, seal(proto))
    record_model(path)
    return path


def _score(images: np.ndarray) -> np.ndarray:
    colour = images.reshape(len(images), -1, 3).mean(axis=1) / 255
    return colour @ np.array([4.0, -4.0, 2.0])


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Reference-lab images, the same tissue from another lab (as PNG files), and the threshold between them."""
    root = tmp_path_factory.mktemp("labs")
    reference = he_images(REFERENCE_STAINS, n=6, size=SIZE, seed=3)
    other = he_images(OTHER_LAB_STAINS, n=6, size=SIZE, seed=3, strength=1.3)
    files = []
    for i, image in enumerate(other):
        files.append(root / f"other_{i}.png")
        Image.fromarray(image).save(files[-1])
    low, high = sorted([_score(reference), _score(other)], key=np.mean)
    assert low.max() < high.min()  # the other lab's colour alone moves every call
    ref_call = "malignant" if _score(reference).mean() > high.min() - 1e-9 else "benign"
    other_call = "benign" if ref_call == "malignant" else "malignant"
    return {"root": root, "reference": reference, "files": files, "threshold": float((low.max() + high.min()) / 2),
            "ref_call": ref_call, "other_call": other_call}  # fmt: skip


def _calls(model: Path, files) -> list[str]:
    rows = predict_files(model, files, device="cpu")
    assert not any(r["error"] for r in rows)
    return [r["predicted"] for r in rows]


@pytest.mark.parametrize("method", ["macenko", "reinhard"])
def test_predict_gives_another_labs_images_the_reference_labs_call_only_with_normalisation(tmp_path, lab, method):
    stain = fit_reference(method, lab["reference"], fitted_on="the reference lab")
    plain = _colour_model(tmp_path / "plain.onnx", None, lab["threshold"])
    normalised = _colour_model(tmp_path / "normalised.onnx", stain, lab["threshold"])
    assert _calls(plain, lab["files"]) == [lab["other_call"]] * 6  # the other lab's colour: every call moves
    assert _calls(normalised, lab["files"]) == [lab["ref_call"]] * 6  # normalised: the reference lab's call


def test_the_record_travels_in_the_onnx_metadata_and_old_models_are_untouched(tmp_path, lab):
    stain = fit_reference("macenko", lab["reference"])
    meta = session_meta(create_session(_colour_model(tmp_path / "m.onnx", stain, 0.0), device="cpu"))
    assert meta.stain_norm == stain
    old = session_meta(create_session(_colour_model(tmp_path / "old.onnx", None, 0.0), device="cpu"))
    assert old.stain_norm is None and "stain_norm" not in old.to_dict()
    images = lab["reference"][:2]
    assert np.array_equal(prepare_inputs(old, images), images.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    assert not np.array_equal(prepare_inputs(meta, he_images(OTHER_LAB_STAINS, n=2, size=SIZE)),
                              prepare_inputs(old, he_images(OTHER_LAB_STAINS, n=2, size=SIZE)))  # fmt: skip


def test_prediction_with_normalisation_needs_no_torch(tmp_path, lab):
    stain = fit_reference("reinhard", lab["reference"])
    model = _colour_model(tmp_path / "m.onnx", stain, lab["threshold"])
    code = (
        "import sys; sys.path.append('tests')\n"
        "from notorch import FULL_ONLY, BlockFullOnly\n"
        "sys.meta_path.insert(0, BlockFullOnly())\n"
        "from engine.deploy.predict import predict_files\n"
        f"rows = predict_files({str(model)!r}, {[str(f) for f in lab['files']]!r}, device='cpu')\n"
        "print([r['predicted'] for r in rows])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in FULL_ONLY))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    calls, loaded = proc.stdout.strip().splitlines()[-2:]
    assert calls == str([lab["ref_call"]] * 6) and loaded == "[]"
