"""Randomized smoothing's certificate over ONNX: the hand-written Clopper-Pearson bound matches SciPy, ties abstain
(and the noise is not clamped), a constant classifier gets alpha^(1/n), the certified radius never passes the
smoothed classifier's true boundary (exact for a linear model; PGD on the noise average for a small network),
certificates are seeded, and the certified accuracy curve counts only right, certified calls."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy.stats import beta, binom

from engine.core.config import CertifyConfig
from engine.core.errors import Cancelled, ConfigError, DataError
from engine.core.progress import CancelToken
from engine.deploy.blackbox import onnx_predictor
from engine.deploy.certify import (
    Certificate,
    certified_accuracy_curve,
    certify_arrays,
    clopper_pearson_lower,
    smoothing_radius,
)
from tests.engine.deploy.smoothing_models import SIZE, D, constant_model, linear_model

SIGMA = 0.25


def test_clopper_pearson_lower_bound_of_all_successes_is_alpha_to_the_one_over_n():
    assert clopper_pearson_lower(10, 10, 0.05) == pytest.approx(0.05 ** (1 / 10), abs=1e-15)
    assert clopper_pearson_lower(10, 10, 0.05) == pytest.approx(0.7411344491069477, abs=1e-12)  # by hand
    assert clopper_pearson_lower(0, 10, 0.05) == 0.0


@pytest.mark.parametrize(
    ("k", "n", "alpha"),
    [(7, 10, 0.05), (1, 10, 0.05), (9, 10, 0.001), (500, 1000, 0.001), (990, 1000, 0.001), (51234, 100000, 1e-5)],
)
def test_clopper_pearson_lower_bound_matches_scipy(k, n, alpha):
    bound = clopper_pearson_lower(k, n, alpha)
    assert bound == pytest.approx(beta.ppf(alpha, k, n - k + 1), rel=1e-10, abs=1e-14)
    assert binom.sf(k - 1, n, bound) == pytest.approx(alpha, rel=1e-6)  # P(X >= k) = alpha at the bound


def test_clopper_pearson_refuses_impossible_counts():
    for k, n, alpha in [(11, 10, 0.05), (-1, 10, 0.05), (0, 0, 0.05), (5, 10, 0.0), (5, 10, 1.0)]:
        with pytest.raises(ConfigError):
            clopper_pearson_lower(k, n, alpha)


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 0.8, (n, 3, SIZE, SIZE)).astype(np.float32)


def test_constant_classifier_never_abstains_and_gets_alpha_to_the_one_over_n(tmp_path):
    predict, _ = onnx_predictor(constant_model(tmp_path / "constant.onnx"))
    cfg = CertifyConfig(sigma=SIGMA, n0=20, n=500, alpha=0.01, batch_size=128)
    certs = certify_arrays(predict, _images(3), cfg)
    p_lower = 0.01 ** (1 / 500)
    for c in certs:
        assert c.predicted == 1 and c.counts == (0, 500) and c.selection_counts == (0, 20)
        assert c.p_a_lower == pytest.approx(p_lower, abs=1e-15)
        assert c.radius == pytest.approx(SIGMA * NormalDist().inv_cdf(p_lower), rel=1e-12)
        assert c.linf_eps == pytest.approx(c.radius / math.sqrt(D)) and c.linf_255 == pytest.approx(c.linf_eps * 255)


def test_tied_classes_abstain_and_the_noise_is_not_clamped(tmp_path):
    """f reads the sign of one pixel, which is 0 in a black image: unclamped noise makes each class come up half the
    time, so the smoothed classifier abstains. (Noise clamped to [0, 1] would make that pixel >= 0: always class 1.)"""
    w = np.zeros(D, np.float32)
    w[100] = 1.0
    predict, _ = onnx_predictor(linear_model(tmp_path / "pixel.onnx", w, 0.0))
    certs = certify_arrays(predict, np.zeros((4, 3, SIZE, SIZE), np.float32), CertifyConfig(sigma=SIGMA, n=1000))
    for c in certs:
        assert c.abstained and c.predicted is None and c.radius == 0.0 and c.p_a_lower <= 0.5
        assert 400 < c.counts[0] < 600 and sum(c.counts) == 1000


@pytest.fixture(scope="module")
def linear(tmp_path_factory):
    """A unit-norm linear model and images at signed distances ``t`` from its hyperplane."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=D).astype(np.float32)
    w /= np.linalg.norm(w)
    b = 0.1
    path = linear_model(tmp_path_factory.mktemp("linear") / "linear.onnx", w, b)
    x0 = _images(1)[0]
    t = np.array([-0.4, -0.1, 0.1, 0.2, 0.4, 0.8])
    x = np.stack([x0 + (ti - (w @ x0.ravel() + b)) * w.reshape(x0.shape) for ti in t]).astype(np.float32)
    return path, w, b, t, x


def test_certified_radius_never_passes_the_smoothed_linear_classifiers_boundary(linear):
    """The smoothed linear classifier's boundary is the hyperplane: the nearest point it calls otherwise is at
    distance |w.x + b| / ||w||. The certificate must stay below that distance, and come close with n = 10,000."""
    path, w, b, t, x = linear
    predict, _ = onnx_predictor(path)
    certs = certify_arrays(predict, x, CertifyConfig(sigma=SIGMA, n=10_000, batch_size=1000))
    distance = np.abs(x.reshape(len(x), -1) @ w + b) / np.linalg.norm(w)
    assert distance == pytest.approx(np.abs(t), abs=1e-5)
    for c, ti, dist in zip(certs, t, distance):
        assert c.predicted == int(ti > 0)
        assert c.radius <= dist, (ti, c.radius)
        assert c.radius >= 0.75 * dist, (ti, c.radius)  # the bound is loose by the confidence interval only
    # the nearest adversarial example of the smoothed classifier, pushed 0.15 past the boundary: called otherwise
    x_adv = x - (np.sign(t) * (np.abs(t) + 0.15))[:, None, None, None] * w.reshape(1, 3, SIZE, SIZE)
    flipped = certify_arrays(predict, x_adv.astype(np.float32), CertifyConfig(sigma=SIGMA, n=2000, batch_size=1000))
    for c, f, ti in zip(certs, flipped, t):
        assert f.predicted == int(ti < 0), ti
        assert c.radius < np.linalg.norm((x_adv - x)[list(t).index(ti)])


def test_same_seed_same_certificates_whatever_the_batch_size(linear):
    path, _, _, _, x = linear
    predict, _ = onnx_predictor(path)
    cfg = CertifyConfig(sigma=SIGMA, n0=50, n=300, batch_size=64, seed=3)
    first = certify_arrays(predict, x, cfg)
    assert certify_arrays(predict, x, cfg) == first
    assert certify_arrays(predict, x, CertifyConfig(sigma=SIGMA, n0=50, n=300, batch_size=7, seed=3)) == first
    other = certify_arrays(predict, x, CertifyConfig(sigma=SIGMA, n0=50, n=300, batch_size=64, seed=4))
    assert [c.counts for c in other] != [c.counts for c in first]


def test_certify_reports_progress_and_can_be_cancelled(linear):
    path, _, _, _, x = linear
    predict, _ = onnx_predictor(path)
    events = []
    certify_arrays(predict, x[:2], CertifyConfig(sigma=SIGMA, n=100), on_progress=events.append)
    assert [(e.done, e.total, e.unit) for e in events] == [(1, 2, "images"), (2, 2, "images")]
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        certify_arrays(predict, x, CertifyConfig(sigma=SIGMA), cancel=token)


def test_bad_inputs_and_settings_are_refused(linear):
    path, _, _, _, x = linear
    predict, _ = onnx_predictor(path)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        certify_arrays(predict, x * 255, CertifyConfig(sigma=SIGMA))
    with pytest.raises(DataError, match="3, H, W"):
        certify_arrays(predict, x[:, :1], CertifyConfig(sigma=SIGMA))
    with pytest.raises(ConfigError, match="sigma"):
        certify_arrays(predict, x, CertifyConfig())
    for bad in ({"sigma": 0}, {"sigma": 1.5}, {"n": 0}, {"n0": 0}, {"batch_size": 0}, {"alpha": 0}, {"alpha": 0.5}):
        with pytest.raises(ConfigError):
            CertifyConfig(**bad)


def _cert(predicted, radius, n_inputs=D):
    return Certificate(predicted, 0.9 if predicted is not None else 0.4, radius, (0, 0), (0, 0), n_inputs)


def test_certified_accuracy_curve_counts_right_certified_calls_only():
    certs = [_cert(1, 0.6), _cert(0, 0.2), _cert(None, 0.0), _cert(1, 0.3), _cert(0, 0.9)]
    labels = [1, 0, 1, 0, 0]  # the fourth call is wrong, the third abstains
    curve = certified_accuracy_curve(certs, labels, [0.0, 0.25, 0.5, 1.0])
    assert [r["accuracy"] for r in curve] == pytest.approx([3 / 5, 2 / 5, 2 / 5, 0.0])
    assert [r["radius"] for r in curve] == [0.0, 0.25, 0.5, 1.0] and all(r["n"] == 5 for r in curve)
    assert curve[2]["linf_255"] == pytest.approx(0.5 / math.sqrt(D) * 255)
    for r in curve[:3]:
        assert r["ci"][0] <= r["accuracy"] <= r["ci"][1]
    assert curve[3]["ci"][0] == 0.0  # none certified that far: the exact Clopper-Pearson repair of a zero score
    # balanced: class 1 (images 0, 2) and class 0 (images 1, 3, 4) each weigh one half
    assert [r["balanced_accuracy"] for r in curve] == pytest.approx(
        [(1 / 2 + 2 / 3) / 2, (1 / 2 + 1 / 3) / 2, (1 / 2 + 1 / 3) / 2, 0.0]
    )
    for r in curve[:3]:
        assert r["ci_balanced"][0] <= r["balanced_accuracy"] <= r["ci_balanced"][1]


def test_certified_accuracy_curve_resamples_patients():
    """Two patients of four images, all right or all wrong: the interval is as wide as one patient's weight."""
    certs = [_cert(1, 0.5)] * 4 + [_cert(0, 0.5)] * 4
    labels = [1] * 8
    by_image = certified_accuracy_curve(certs, labels, [0.0])[0]["ci"]
    by_patient = certified_accuracy_curve(certs, labels, [0.0], groups=["a"] * 4 + ["b"] * 4)[0]["ci"]
    assert by_patient[1] - by_patient[0] > by_image[1] - by_image[0]
    with pytest.raises(DataError):
        certified_accuracy_curve(certs, labels[:3])


def test_smoothing_radius_is_zero_at_or_below_one_half():
    assert smoothing_radius(0.5, 1.0) == 0.0 and smoothing_radius(0.3, 1.0) == 0.0
    assert smoothing_radius(NormalDist().cdf(2.0), 0.5) == pytest.approx(1.0)
