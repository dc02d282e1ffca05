"""Basic Iterative Method, I-FGSM (Kurakin, Goodfellow & Bengio, "Adversarial examples in the physical world",
ICLR workshop 2017): FGSM repeated with small steps, clipped to the L-inf ball and [0, 1]; no random start."""

from __future__ import annotations

import torch
from torch import nn

from engine.attacks._common import Eps, check_inputs, check_steps
from engine.attacks.pgd import pgd


def bim(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: Eps = 8 / 255,
    alpha: Eps | None = None,
    steps: int = 10,
    targeted: bool = False,
    loss: str = "margin",
) -> torch.Tensor:
    """``steps`` signed-gradient steps of size ``alpha`` from the clean image, each clipped to the ``eps`` ball.

    ``alpha=None`` is 2/255, torchattacks.BIM's default (the paper used 1/255 with min(eps*255 + 4,
    1.25*eps*255) steps). Deterministic: it is PGD without the random start, and gives torchattacks.BIM's
    result for the same eps, alpha and steps (with ``loss="ce"``). ``eps``/``alpha`` are floats or one value per image.
    """
    check_inputs(x, y, eps)
    alpha = 2 / 255 if alpha is None else alpha
    check_steps("BIM", steps, alpha)
    return pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, random_start=False, targeted=targeted, loss=loss)
