"""The certificate against an attack on the smoothed classifier itself: PGD-L2 on the noise average (the smoothed
soft classifier, as SmoothAdv attacks it) of a small ReLU network, run in torch on a copy of the ONNX graph. Every
adversarial example it finds (a point the smoothed classifier confidently calls otherwise) lies beyond the
certified radius, and it does find one for every image, so the check is not empty."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.core.config import CertifyConfig
from engine.deploy.blackbox import onnx_predictor
from engine.deploy.certify import certify_arrays
from tests.engine.deploy.smoothing_models import SIZE, D, mlp_model

SIGMA = 0.25
HIDDEN = 32


def _torch_copy(weights: dict[str, np.ndarray]) -> nn.Module:
    net = nn.Sequential(nn.Flatten(), nn.Linear(D, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 2))
    with torch.no_grad():
        for layer, w, b in ((net[1], "W1", "B1"), (net[3], "W2", "B2")):
            layer.weight.copy_(torch.from_numpy(weights[w].T))
            layer.bias.copy_(torch.from_numpy(weights[b]))
    return net.eval()


def smoothed_pgd(net: nn.Module, x: np.ndarray, label: int, eps: float, steps: int = 40, samples: int = 64):
    """PGD-L2 within ``eps`` of ``x`` (1, 3, H, W), on -log of the smoothed soft classifier's probability of
    ``label`` (the softmax averaged over ``samples`` fresh noisy copies per step), kept in [0, 1]."""
    gen = torch.Generator().manual_seed(0)
    x0 = torch.from_numpy(x)
    delta = torch.zeros_like(x0)
    for _ in range(steps):
        delta.requires_grad_(True)
        noisy = x0 + delta + SIGMA * torch.randn((samples, *x0.shape[1:]), generator=gen)
        loss = -torch.log(torch.softmax(net(noisy), 1).mean(0)[label] + 1e-12)
        (grad,) = torch.autograd.grad(loss, delta)
        delta = delta.detach() + 2.5 * eps / steps * grad / (grad.norm() + 1e-12)
        delta = delta * min(1.0, eps / (delta.norm().item() + 1e-12))
        delta = (x0 + delta).clamp(0, 1) - x0
    return (x0 + delta).numpy()


def test_pgd_on_the_smoothed_classifier_never_beats_the_certificate(tmp_path):
    path, weights = mlp_model(tmp_path / "mlp.onnx", hidden=HIDDEN, seed=0)
    net = _torch_copy(weights)
    predict, _ = onnx_predictor(path)
    x = np.random.default_rng(1).uniform(0.2, 0.8, (6, 3, SIZE, SIZE)).astype(np.float32)
    with torch.no_grad():
        assert np.abs(predict(x) - net(torch.from_numpy(x)).numpy()).max() < 1e-4  # the same model
    certs = certify_arrays(predict, x, CertifyConfig(sigma=SIGMA, n=2000, batch_size=500))
    assert sum(not c.abstained for c in certs) >= 4
    for i, cert in enumerate(certs):
        if cert.abstained:
            continue
        found = None
        for eps in np.arange(1, 25) * 0.025:
            x_adv = smoothed_pgd(net, x[i : i + 1], cert.predicted, float(eps))
            check = certify_arrays(predict, x_adv, CertifyConfig(sigma=SIGMA, n=1000, batch_size=500, seed=1))[0]
            if not check.abstained and check.predicted != cert.predicted:
                found = float(np.linalg.norm(x_adv - x[i]))
                break
        assert found is not None, f"image {i}: no adversarial example within L2 0.6 (certified {cert.radius:.3f})"
        assert cert.radius < found <= eps + 1e-5, (i, cert.radius, found)
