"""Square Attack on the deployed ONNX file: it fools a tiny model, stays in the eps ball, needs no torch,
ONNX matches torch on adversarial inputs, and the black-box stress metrics agree with the confusion matrix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.attacks import pgd
from engine.core.errors import AttackError, Cancelled, ConfigError, DataError
from engine.core.progress import CancelToken
from engine.data.decode import decode_image
from engine.data.demo import generate_demo_dataset
from engine.deploy.blackbox import blackbox_stress, onnx_predictor
from engine.deploy.session import create_session, run_session
from engine.deploy.square import margin, p_schedule, softmax, square_attack
from engine.export.onnx_export import export_onnx
from engine.models.checkpoint import make_metadata
from engine.models.registry import create_model

SIZE = 16
EPS = 8 / 255
REPO = Path(__file__).resolve().parents[3]


def _colour_task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey noise tinted slightly red (class 1) or blue (class 0): easy to learn, 8/255 can flip it."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = 0.5 + 0.2 * (torch.rand(n, 3, SIZE, SIZE, generator=g) - 0.5)
    tint = torch.tensor([0.025, 0.0, -0.025]).view(1, 3, 1, 1) * (2 * y - 1).view(-1, 1, 1, 1).float()
    return (x + tint).clamp(0, 1), y


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    torch.manual_seed(0)
    xt, yt = _colour_task(256, seed=0)
    model = _train(create_model("small_cnn"), xt, yt, 40, 1e-2)
    path = _export(model, tmp_path_factory.mktemp("blackbox") / "model.onnx")
    x, y = _colour_task(24, seed=1)
    return model, path, x.numpy(), y.numpy()


@pytest.fixture(scope="module")
def attacked(target):
    _, path, x, y = target
    predict, _ = onnx_predictor(path)
    return square_attack(predict, x, y, eps=EPS, n_queries=1000, seed=0)


def test_square_attack_fools_the_deployed_model(target, attacked):
    _, path, x, y = target
    predict, provider = onnx_predictor(path)
    assert provider in ("CPUExecutionProvider", "CUDAExecutionProvider")
    clean_acc = float((predict(x).argmax(1) == y).mean())
    robust_acc = float((predict(attacked.x_adv).argmax(1) == y).mean())
    assert clean_acc >= 0.9
    assert robust_acc <= clean_acc - 0.5, (clean_acc, robust_acc)
    assert attacked.accuracy_curve[0] == pytest.approx(clean_acc)
    assert attacked.accuracy_curve[-1] == pytest.approx(robust_acc)
    assert np.all(np.diff(attacked.accuracy_curve) <= 0)
    np.testing.assert_allclose(attacked.probabilities, softmax(predict(attacked.x_adv)), atol=1e-6)


def test_square_attack_bounds_queries_and_input(target, attacked):
    _, _, x, y = target
    assert attacked.x_adv.shape == x.shape and attacked.x_adv.dtype == np.float32
    assert np.abs(attacked.x_adv - x).max() <= EPS + 1e-6
    assert attacked.x_adv.min() >= 0 and attacked.x_adv.max() <= 1
    assert np.all(attacked.queries <= 1000) and np.all(attacked.queries[attacked.clean_correct] >= 1)
    assert np.all(attacked.queries[~attacked.success & attacked.clean_correct] == 1000)  # never gave up early
    assert not np.any(attacked.success & ~attacked.clean_correct)


def test_square_attack_is_deterministic_and_leaves_the_input(target, attacked):
    _, path, x, y = target
    predict, _ = onnx_predictor(path)
    x_before = x.copy()
    again = square_attack(predict, x, y, eps=EPS, n_queries=1000, seed=0)
    np.testing.assert_array_equal(again.x_adv, attacked.x_adv)
    np.testing.assert_array_equal(again.queries, attacked.queries)
    other = square_attack(predict, x, y, eps=EPS, n_queries=50, seed=1)
    assert not np.array_equal(other.x_adv, attacked.x_adv)
    np.testing.assert_array_equal(x, x_before)


def test_targeted_towards_the_other_class_is_the_untargeted_attack(target):
    _, path, x, y = target
    predict, _ = onnx_predictor(path)
    a = square_attack(predict, x[:6], y[:6], eps=EPS, n_queries=60, seed=3)
    b = square_attack(predict, x[:6], 1 - y[:6], eps=EPS, n_queries=60, seed=3, targeted=True)
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.success, b.success)


def test_progress_cancel_and_bad_parameters(target):
    _, path, x, y = target
    predict, _ = onnx_predictor(path)
    events = []
    square_attack(predict, x[:4], y[:4], eps=EPS, n_queries=45, on_progress=events.append)
    assert {e.unit for e in events} == {"queries"} and events[-1].done == events[-1].total == 45
    assert [e.done for e in events] == sorted(e.done for e in events) and len(events) >= 3
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        square_attack(predict, x[:4], y[:4], eps=EPS, n_queries=10, cancel=token)
    for kwargs in ({"eps": 0.0}, {"eps": 2.0}, {"eps": EPS, "n_queries": 0}, {"eps": EPS, "p_init": 0}):
        with pytest.raises(AttackError):
            square_attack(predict, x[:4], y[:4], **kwargs)
    with pytest.raises(AttackError, match="labels"):
        square_attack(predict, x[:4], y[:3], eps=EPS)
    with pytest.raises(AttackError, match="class indices"):
        square_attack(predict, x[:2], np.array([0, 2]), eps=EPS)
    with pytest.raises(AttackError, match=r"\[0, 1\]"):
        square_attack(predict, x[:4] * 255, y[:4], eps=EPS)


def test_p_schedule_halves_at_the_papers_milestones():
    assert p_schedule(0.05, 0, 10000) == 0.05
    assert p_schedule(0.05, 11, 10000) == 0.025
    assert p_schedule(0.05, 9999, 10000) == pytest.approx(0.05 / 512)
    assert p_schedule(0.05, 15, 1000) == p_schedule(0.05, 150, 10000)  # rescaled to the query budget


def test_blackbox_import_needs_no_torch(target):
    _, path, x, y = target
    code = (
        "import sys, numpy as np\n"
        "from engine.deploy.blackbox import onnx_predictor\nfrom engine.deploy.square import square_attack\n"
        f"predict, provider = onnx_predictor({str(path)!r})\n"
        f"x = np.random.default_rng(0).random((3, 3, {SIZE}, {SIZE}), dtype=np.float32)\n"
        "r = square_attack(predict, x, np.array([0, 1, 0]), eps=8 / 255, n_queries=20)\n"
        "assert np.abs(r.x_adv - x).max() <= 8 / 255 + 1e-6\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
        "print('ok', provider)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok ")


def test_onnx_matches_torch_on_adversarial_inputs(target, attacked):
    model, path, x, y = target
    x_pgd = pgd(model, torch.from_numpy(x), torch.from_numpy(y), eps=EPS, generator=torch.Generator().manual_seed(0))
    session = create_session(path, device="cpu")
    batches = {"clean": x, "pgd": x_pgd.numpy(), "square": attacked.x_adv}
    with torch.no_grad():
        for name, batch in batches.items():
            ref = torch.softmax(model(torch.from_numpy(batch)), dim=1).numpy()
            assert np.abs(run_session(session, batch) - ref).max() <= 1e-4, name
    assert (batches["pgd"] != x).any() and (batches["square"] != x).any()


def _train(model, x, y, steps: int, lr: float):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (min(64, len(x)),))
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _export(model, path):
    meta = make_metadata("small_cnn", ["benign", "malignant"], SIZE, {"method": "clean", "eps": None}, split_hash="0")
    export_onnx(model, path, meta, SIZE)
    model.eval()  # export_onnx leaves the model in training mode (its wrapper is built in training mode)
    return path


def _demo_set(tmp_path):
    root = generate_demo_dataset(tmp_path / "demo", patients_per_class=2, images_per_patient=5, image_size=(48, 32))
    paths = sorted(root.glob("*/*.png"))
    images = np.stack([decode_image(p, SIZE) for p in paths])
    return images, np.array([int(p.parent.name == "malignant") for p in paths])


def _check_row(row, labels, n_queries):
    (tn, fp), (fn, tp) = row["confusion_matrix"]
    assert tn + fp + fn + tp == row["n"] == len(labels) and tp + fn == labels.sum()
    assert row["accuracy"] == pytest.approx((tn + tp) / row["n"])
    assert row["sensitivity"] == pytest.approx(tp / (tp + fn))
    assert row["missed_cancer_rate"] == pytest.approx(fn / (tp + fn))
    assert row["specificity"] == pytest.approx(tn / (tn + fp))
    assert len(row["accuracy_curve"]) == n_queries + 1
    assert row["accuracy_curve"][-1] == pytest.approx(row["accuracy"])


def test_blackbox_stress_on_demo_images(tmp_path):
    images, labels = _demo_set(tmp_path)
    assert images.dtype == np.uint8 and images.shape == (20, SIZE, SIZE, 3) and labels.sum() == 10
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    torch.manual_seed(0)
    path = _export(_train(create_model("small_cnn"), x, torch.from_numpy(labels), 20, 3e-3), tmp_path / "demo.onnx")
    events = []
    eps_values = [0, 8 / 255, 32 / 255, 64 / 255]
    out = blackbox_stress(path, images, labels, eps_values=eps_values, n_queries=100, on_progress=events.append)
    assert out["provider"] == "CPUExecutionProvider" or torch.cuda.is_available()
    rows = out["results"]
    assert [r["eps"] for r in rows] == pytest.approx(eps_values)
    predict, _ = onnx_predictor(path)
    pred = (softmax(predict(x.numpy()))[:, 1] >= 0.5).astype(int)
    assert rows[0]["accuracy"] == pytest.approx(float((pred == labels).mean())) and rows[0]["accuracy"] >= 0.8
    for row in rows:
        _check_row(row, labels, 100)
        assert row["accuracy"] <= rows[0]["accuracy"]
        assert row["mean_queries"] is None or 1 <= row["mean_queries"] <= 100
    assert rows[-1]["accuracy"] < rows[0]["accuracy"] and rows[-1]["attack_success_rate"] > 0
    assert any("64/255" in e.stage for e in events)
    swapped = blackbox_stress(path, images, labels, eps_values=[0], n_queries=10, positive=0)["results"][0]
    (tn, fp), (fn, tp) = rows[0]["confusion_matrix"]
    assert swapped["confusion_matrix"] == [[tp, fn], [fp, tn]]
    again = blackbox_stress(path, x.numpy(), labels, eps_values=[32 / 255], n_queries=100)["results"][0]
    assert again["confusion_matrix"] == rows[2]["confusion_matrix"]  # float NCHW input = uint8 NHWC input


def test_blackbox_stress_rejects_bad_inputs(target, tmp_path):
    _, path, x, y = target
    with pytest.raises(DataError, match="shape"):
        blackbox_stress(path, np.zeros((2, 3, SIZE + 1, SIZE + 1), np.float32), [0, 1], eps_values=[0])
    with pytest.raises(DataError, match="labels"):
        blackbox_stress(path, x[:3], [0, 1], eps_values=[0])
    with pytest.raises(ConfigError, match="eps"):
        blackbox_stress(path, x[:2], y[:2], eps_values=[-1])


def test_margin_is_finite_where_the_softmax_saturates():
    """A confident model's float32 probabilities are exactly 1 and 0; the logit margin still orders candidates."""
    logits = np.array([[0.0, 120.0], [0.0, 110.0]], dtype=np.float32)
    assert np.all(softmax(logits)[:, 0] == 0.0)
    m = margin(logits, np.array([1, 1]), targeted=False)
    assert np.all(np.isfinite(m)) and m[1] < m[0]
