"""Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy, ICLR 2015), L-inf, in pixel space."""

from __future__ import annotations

import torch
from torch import nn

from engine.attacks._common import Eps, attack_mode, check_inputs, check_loss, eps_view, input_gradient


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: Eps = 8 / 255,
    targeted: bool = False,
    loss: str = "margin",
) -> torch.Tensor:
    """One step of size ``eps`` along the sign of the input gradient; result clamped to [0, 1].

    ``x`` is a batch of RGB images in [0, 1]; ``eps`` is in pixel units (2/255 = two grey levels), a float
    or one value per image (shape (N,)). Untargeted: increases the loss of the true labels ``y``;
    targeted: decreases the loss of ``y``, the target labels. ``loss``: the margin (default: it never
    saturates) or ``"ce"``, the paper's cross-entropy; both give the same step wherever cross-entropy's
    gradient has not underflowed.
    """
    check_inputs(x, y, eps)
    check_loss(loss)
    with attack_mode(model) as net:
        grad = input_gradient(net, x, y, targeted, loss)
    return torch.clamp(x + eps_view(eps, x) * grad.sign(), min=0, max=1).detach()
