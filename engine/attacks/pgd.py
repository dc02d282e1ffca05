"""Projected Gradient Descent (Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks",
ICLR 2018) in pixel space: L-inf (signed steps) or L2 (normalised steps), random start, restarts."""

from __future__ import annotations

import torch
from torch import nn

from engine.attacks._common import (
    BestPoint,
    Eps,
    attack_mode,
    check_inputs,
    check_loss,
    check_steps,
    eps_view,
    input_gradient,
    logits_and_gradient,
    quantised,
    uniform_like,
)
from engine.core.errors import AttackError


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: Eps = 8 / 255,
    alpha: Eps | None = 2 / 255,
    steps: int = 10,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    targeted: bool = False,
    restarts: int = 1,
    norm: str = "linf",
    early_stop: bool = False,
    loss: str = "margin",
) -> torch.Tensor:
    """``steps`` gradient steps of size ``alpha``, each projected to the ``eps`` ball and [0, 1].

    L-inf steps follow the gradient's sign; L2 steps its direction (unit L2 norm), and ``eps`` is then the
    L2 radius in [0, 1] pixel units (e.g. 0.5). ``eps`` and ``alpha`` are floats or one value per image.
    ``alpha=None`` means 2/255 for L-inf and 2.5 * eps / steps for L2. With ``random_start`` each run
    starts from a random point in the ball drawn from ``generator`` (seed it for reproducible results);
    with ``restarts`` > 1 each image keeps the run that succeeded (misclassified, or on the target when
    ``targeted``), else the one with the highest loss (lowest loss of the target). With ``early_stop`` an
    image stops moving once its point, rounded to 8 bits as every evaluation judges it, succeeds (for
    robust accuracy and minimal-eps searches, where only success counts; much faster on models that flip
    early). ``loss``: the margin (default; it does not saturate on
    confident models) or ``"ce"``, the paper's cross-entropy. Defaults follow the paper: eps 8/255, alpha
    2/255, 10 steps.
    """
    check_inputs(x, y, eps, norm)
    check_loss(loss)
    if alpha is None:
        alpha = 2 / 255 if norm == "linf" else l2_alpha(eps, max(steps, 1))
    check_steps("PGD", steps, alpha)
    if restarts < 1 or (restarts > 1 and not random_start):
        raise AttackError(f"PGD needs restarts >= 1, and restarts > 1 only with random_start (got {restarts})")
    x = x.detach()
    run = (eps, alpha, steps, random_start, generator, targeted, norm, early_stop, loss)
    with attack_mode(model) as net:
        if restarts == 1:
            return _run(net, x, y, *run)
        best = BestPoint(x, y, targeted, loss)
        for _ in range(restarts):
            best.score(net, _run(net, x, y, *run))
    return best.x


def _run(model, x, y, eps, alpha, steps, random_start, generator, targeted, norm, early_stop, loss) -> torch.Tensor:
    eps, alpha = eps_view(eps, x), eps_view(alpha, x)
    if norm == "l2":
        x_adv = _l2_start(x, eps, generator) if random_start else x.clone()
    elif random_start:
        x_adv = torch.clamp(x + (uniform_like(x, generator) * 2 - 1) * eps, min=0, max=1)
    else:
        x_adv = x.clone()
    if early_stop:
        return _run_early_stop(model, x_adv, x, y, eps, alpha, steps, targeted, norm, loss)
    for _ in range(steps):
        grad = input_gradient(model, x_adv, y, targeted, loss)
        if norm == "l2":
            x_adv = _l2_step(x_adv, grad, x, eps, alpha)
        else:
            _linf_step_(x_adv, grad, x, eps, alpha)
    return x_adv


def _run_early_stop(model, x_adv, x, y, eps, alpha, steps, targeted, norm, loss) -> torch.Tensor:
    """The same steps, but an image leaves the batch as soon as its current point succeeds (misclassified,
    or on the target): AutoAttack's protocol for robust accuracy, which only asks whether an image can be
    flipped; success is judged on the point rounded to 8 bits (one extra forward pass for the images that
    succeed before rounding), so an image does not stop on a point that a saved PNG would undo."""
    active = torch.arange(len(x), device=x.device)
    for _ in range(steps):
        logits, grad = logits_and_gradient(model, x_adv[active], y[active], targeted, loss)
        keep = _still_failing(model, x_adv[active], y[active], logits, targeted)
        active, grad = active[keep], grad[keep]
        if not len(active):
            break
        sub, e, a = x_adv[active], _rows(eps, active), _rows(alpha, active)
        if norm == "l2":
            sub = _l2_step(sub, grad, x[active], e, a)
        else:
            _linf_step_(sub, grad, x[active], e, a)
        x_adv[active] = sub
    return x_adv


def _still_failing(model, x_adv, y, logits, targeted) -> torch.Tensor:
    """Per image: its point (judged after rounding to 8 bits) does not succeed yet."""
    on_label = logits.argmax(1) == y
    failing = ~on_label if targeted else on_label
    candidates = (~failing).nonzero().squeeze(1)
    if len(candidates):
        with torch.no_grad():
            on_label_8bit = model(quantised(x_adv[candidates].clone())).argmax(1) == y[candidates]
        failing[candidates] = ~on_label_8bit if targeted else on_label_8bit
    return failing


def _rows(value, idx: torch.Tensor):
    """A per-image (N, 1, 1, 1) tensor restricted to ``idx``; a float unchanged."""
    return value[idx] if isinstance(value, torch.Tensor) else value


def _l2_step(x_adv: torch.Tensor, grad: torch.Tensor, x: torch.Tensor, eps, alpha) -> torch.Tensor:
    return _l2_project(x_adv + alpha * grad / (_l2_norm(grad) + 1e-10), x, eps)


def _linf_step_(x_adv: torch.Tensor, grad: torch.Tensor, x: torch.Tensor, eps, alpha) -> None:
    """``project(x_adv + alpha * sign(grad), x, eps)`` computed in place in ``x_adv`` and ``grad``: the same
    float operations in the same order (bit-identical results), without allocating four new images per step."""
    x_adv.add_(grad.sign_().mul_(alpha)).sub_(x)
    x_adv.clamp_(min=-eps, max=eps).add_(x).clamp_(min=0, max=1)


def l2_alpha(eps: Eps, steps: int) -> Eps:
    """2.5 * eps / steps (Madry et al.'s L2 step), at least 1e-6 so that eps = 0 (the clean point) is valid."""
    alpha = 2.5 * eps / steps
    return alpha.clamp_min(1e-6) if isinstance(alpha, torch.Tensor) else max(alpha, 1e-6)


def _l2_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(p=2, dim=1).view(-1, 1, 1, 1)


def _l2_project(x_adv: torch.Tensor, x: torch.Tensor, eps: Eps) -> torch.Tensor:
    """Scale ``x_adv - x`` into the L2 ball of radius ``eps``, then clamp to [0, 1] (which only shrinks it)."""
    delta = x_adv - x
    factor = torch.clamp(eps / _l2_norm(delta).clamp_min(1e-12), max=1)
    return torch.clamp(x + delta * factor, min=0, max=1).detach()


def _l2_start(x: torch.Tensor, eps: Eps, generator: torch.Generator | None) -> torch.Tensor:
    """A random direction (Gaussian) at a radius uniform in [0, eps], as in torchattacks' PGDL2."""
    device = generator.device if generator else x.device
    direction = torch.randn(x.shape, generator=generator, device=device).to(x.device, x.dtype)
    radius = torch.rand(len(x), generator=generator, device=device).to(x.device, x.dtype).view(-1, 1, 1, 1)
    return torch.clamp(x + direction / _l2_norm(direction).clamp_min(1e-12) * radius * eps, min=0, max=1)


def pgd_l2(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: Eps = 0.5, alpha: Eps | None = None, **kw):
    """PGD in the L2 norm (Madry et al., 2018): ``pgd(..., norm="l2")``, alpha 2.5 * eps / steps by default."""
    return pgd(model, x, y, eps=eps, alpha=alpha, norm="l2", **kw)
