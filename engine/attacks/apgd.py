"""Auto-PGD (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free
attacks", ICML 2020), L-inf: PGD with momentum whose step size halves itself at checkpoints, no alpha to tune."""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from engine.attacks._common import (
    BestPoint,
    Eps,
    attack_mode,
    check_inputs,
    eps_view,
    objective,
    project,
    uniform_like,
)
from engine.core.errors import AttackError

MOMENTUM = 0.75


def apgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: Eps = 8 / 255,
    steps: int = 20,
    restarts: int = 1,
    rho: float = 0.75,
    generator: torch.Generator | None = None,
    targeted: bool = False,
    loss: str = "margin",
) -> torch.Tensor:
    """APGD on the margin loss (default; for two classes what DLR reduces to, up to a scale: it does not
    saturate), APGD-CE with ``loss="ce"``, or APGD-DLR with ``loss="dlr"`` (untargeted, 3 classes or more);
    ``eps`` a float or one value per image.

    Each run starts at a uniform random point of the ball (from ``generator``) with step size 2 * eps:
    z = P(x_k + eta * sign(grad)), x_k+1 = P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_k-1)), the first step
    without momentum. At each checkpoint (``checkpoints``) an image's step size halves and it restarts
    from its best point when its loss rose in fewer than ``rho`` of the steps since the last checkpoint,
    or when neither its step size nor its best loss changed since then. Returns per image the best point
    of all iterates of all ``restarts`` runs: a success (misclassified / on target) first, then the loss.
    """
    check_inputs(x, y, eps)
    if steps < 1 or restarts < 1 or not 0 < rho <= 1:
        raise AttackError(f"APGD needs steps >= 1, restarts >= 1, 0 < rho <= 1 (got {steps}, {restarts}, {rho})")
    if loss not in ("margin", "ce", "dlr") or (loss == "dlr" and targeted):
        raise AttackError(
            f"APGD's loss is 'margin', 'ce', or 'dlr' when untargeted (got {loss!r}, targeted={targeted})"
        )
    f = partial(dlr_objective, y=y) if loss == "dlr" else partial(objective, y=y, targeted=targeted, loss=loss)
    x = x.detach()
    with attack_mode(model) as net:
        best = BestPoint(x, y, targeted)
        for _ in range(restarts):
            _run(net, x, eps_view(eps, x), steps, rho, generator, f, best)
    return best.x


def checkpoints(steps: int) -> set[int]:
    """Iterations ceil(p_j * steps) with p_0 = 0, p_1 = 0.22, p_j+1 = p_j + max(p_j - p_j-1 - 0.03, 0.06)."""
    p = [0.0, 0.22]
    while (nxt := p[-1] + max(p[-1] - p[-2] - 0.03, 0.06)) <= 1:
        p.append(nxt)
    return {math.ceil(q * steps - 1e-9) for q in p}


def dlr_objective(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Difference of Logits Ratio: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3), z sorted descending."""
    if logits.shape[1] < 3:
        raise AttackError(f"the DLR loss needs 3 classes or more (the model has {logits.shape[1]}); use loss='ce'")
    z = logits.sort(dim=1, descending=True).values
    z_y = logits.gather(1, y[:, None])[:, 0]
    other = torch.where(logits.argmax(1) == y, z[:, 1], z[:, 0])
    return -(z_y - other) / (z[:, 0] - z[:, 2] + 1e-12)


def _run(model, x, eps, steps, rho, generator, loss_fn, best: BestPoint) -> None:
    """One APGD run from a random start; every iterate is offered to ``best``."""
    x_k = project(x + (uniform_like(x, generator) * 2 - 1) * eps, x, eps)
    f_k, g_k = _evaluate(model, x_k, loss_fn, best)
    x_prev, x_max, f_max, g_max = x_k, x_k, f_k, g_k
    eta = 2 * eps * torch.ones_like(x[:, :1, :1, :1])
    marks, last, increases = checkpoints(steps), 0, torch.zeros_like(f_k)
    f_max_last, halved_last = f_max, torch.zeros_like(f_k, dtype=torch.bool)
    for k in range(steps):
        a = 1.0 if k == 0 else MOMENTUM
        z = project(x_k + eta * g_k.sign(), x, eps)
        x_next = project(x_k + a * (z - x_k) + (1 - a) * (x_k - x_prev), x, eps)
        f_next, g_next = _evaluate(model, x_next, loss_fn, best)
        increases += f_next > f_k
        x_prev, x_k, f_k, g_k = x_k, x_next, f_next, g_next
        up = f_k > f_max
        x_max, g_max, f_max = _where(up, x_k, x_max), _where(up, g_k, g_max), torch.where(up, f_k, f_max)
        if k + 1 in marks and k + 1 < steps:
            halve = (increases < rho * (k + 1 - last)) | (~halved_last & (f_max <= f_max_last))
            eta = _where(halve, eta / 2, eta)
            x_k, x_prev, g_k = _where(halve, x_max, x_k), _where(halve, x_max, x_prev), _where(halve, g_max, g_k)
            f_k = torch.where(halve, f_max, f_k)
            last, increases, f_max_last, halved_last = k + 1, torch.zeros_like(f_k), f_max, halve


def _evaluate(model, x_k, loss_fn, best: BestPoint) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss per image at ``x_k`` and its gradient w.r.t. ``x_k``; ``x_k`` is offered to ``best``."""
    x_k = x_k.detach().requires_grad_(True)
    logits = model(x_k)
    f = loss_fn(logits)
    (grad,) = torch.autograd.grad(f.sum(), x_k)
    best.update(x_k, logits.detach(), f.detach())
    return f.detach(), grad


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.view(-1, 1, 1, 1), a, b)
