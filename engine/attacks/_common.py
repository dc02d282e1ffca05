"""What every attack shares: eval mode restored afterwards, gradients w.r.t. the input only, checks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import AttackError


@contextlib.contextmanager
def attack_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode with frozen parameters; restore every module's mode and flags after.

    Freezing the parameters means autograd builds no weight-gradient work (about a third of the
    backward pass) and never touches ``param.grad``.
    """
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training
        for p, flag in flags:
            p.requires_grad_(flag)


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, targeted: bool = False) -> torch.Tensor:
    """d loss / d x for cross-entropy (negated for targeted attacks, which move *towards* ``y``)."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    if targeted:
        loss = -loss
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def check_inputs(x: torch.Tensor, y: torch.Tensor, eps: float) -> None:
    if not 0 <= eps <= 1:
        raise AttackError(f"eps {eps} is outside [0, 1]; give it in pixel units, e.g. 2/255")
    if x.ndim != 4 or x.shape[1] != 3:
        raise AttackError(f"images must be a (N, 3, H, W) batch, got shape {tuple(x.shape)}")
    if y.shape[0] != x.shape[0]:
        raise AttackError(f"{x.shape[0]} images but {y.shape[0]} labels")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise AttackError("images must be RGB in [0, 1] (normalisation is the model's first layer)")


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Clamp to the L-inf ball of radius ``eps`` around ``x`` and to the valid pixel range [0, 1]."""
    delta = torch.clamp(x_adv - x, min=-eps, max=eps)
    return torch.clamp(x + delta, min=0, max=1).detach()
