"""Non-adversarial baselines of the same L-inf size as the attacks: how much does *random* noise hurt?

Same call signature as the attacks, so they sit in the same tables; the model and labels are not used.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.attacks._common import Eps, check_inputs, eps_view, uniform_like


def uniform_noise(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: Eps = 8 / 255,
    generator: torch.Generator | None = None,
    **ignored,
) -> torch.Tensor:
    """``x`` plus noise uniform in [-eps, eps] per pixel, clamped to [0, 1] (PGD's random start, no steps)."""
    check_inputs(x, y, eps)
    noise = uniform_like(x, generator) * 2 - 1
    return torch.clamp(x.detach() + noise * eps_view(eps, x), min=0, max=1)


def sign_noise(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: Eps = 8 / 255,
    generator: torch.Generator | None = None,
    **ignored,
) -> torch.Tensor:
    """``x`` plus +eps or -eps per pixel at random, clamped to [0, 1]: FGSM's size and shape, a random direction."""
    check_inputs(x, y, eps)
    sign = (uniform_like(x, generator) < 0.5).to(x.dtype) * 2 - 1
    return torch.clamp(x.detach() + sign * eps_view(eps, x), min=0, max=1)
