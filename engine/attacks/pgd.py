"""Projected Gradient Descent (Madry et al., 2018), L-inf, in pixel space."""

from __future__ import annotations

import torch
from torch import nn

from engine.attacks._common import attack_mode, check_inputs, input_gradient, project
from engine.errors import AttackError


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float = 8 / 255,
    alpha: float = 2 / 255,
    steps: int = 10,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    targeted: bool = False,
) -> torch.Tensor:
    """``steps`` signed-gradient steps of size ``alpha``, each projected to the ``eps`` ball and [0, 1].

    With ``random_start`` the attack starts from a uniform point in the ball, drawn from ``generator``
    (pass a seeded generator for reproducible results). Defaults follow the paper: eps 8/255,
    alpha 2/255, 10 steps.
    """
    check_inputs(x, y, eps)
    if steps < 1 or alpha <= 0:
        raise AttackError(f"PGD needs steps >= 1 and alpha > 0 (got steps={steps}, alpha={alpha})")
    x = x.detach()
    x_adv = x.clone()
    if random_start:
        noise = torch.rand(x.shape, generator=generator, device=generator.device if generator else x.device)
        x_adv = torch.clamp(x + (noise.to(x.device, x.dtype) * 2 - 1) * eps, min=0, max=1)
    with attack_mode(model):
        for _ in range(steps):
            grad = input_gradient(model, x_adv, y, targeted)
            x_adv = project(x_adv + alpha * grad.sign(), x, eps)
    return x_adv
