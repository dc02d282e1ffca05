"""What every attack shares: eval mode restored afterwards, gradients w.r.t. the input only, the loss an attack
climbs, checks, eps per image, the L-inf projection, random draws from a generator, and the best point kept per
image.

The loss. Cross-entropy saturates on a confident model: once the logit margin is a few tens, exp(-margin)
underflows in float32, the gradient is exactly zero (or noise), and a gradient attack that follows it stands
still and reports robustness that is not there (the classic false defence; Carlini & Wagner, 2017; Croce &
Hein, 2020). The **margin** loss, the best other logit minus the true one (Carlini-Wagner), has for two classes
the same gradient direction as cross-entropy wherever cross-entropy still works (d CE = sigmoid(margin) *
d margin), and never underflows, so it is every attack's default; ``loss="ce"`` keeps cross-entropy (the
torchattacks reference tests use it)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from engine.core.errors import AttackError
from engine.models.fast import fast_model

Eps = float | torch.Tensor  # a float for the whole batch, or one value per image: shape (N,)
NORMS = ("linf", "l2")
LOSSES = ("margin", "ce")  # engine.core.catalog.LOSS_LABELS names them


@contextlib.contextmanager
def attack_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode with frozen parameters; restore every module's mode and flags after.

    Freezing the parameters means autograd builds no weight-gradient work and never touches
    ``param.grad``. Yields the network to attack: for a model that came in eval mode, its cached
    BatchNorm-folded channels-last copy (``engine.models.fast``, same function, faster); for a model in
    training (adversarial training changes the weights every step) the model itself.
    """
    was_training = any(m.training for m in model.modules())
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model if was_training else fast_model(model)
    finally:
        for m, training in modes:
            m.training = training
        for p, flag in flags:
            p.requires_grad_(flag)


def input_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, targeted: bool = False, loss: str = "margin"
) -> torch.Tensor:
    """d objective / d x, the direction an attack climbs (``objective``: away from ``y``, or towards the
    target ``y`` when ``targeted``)."""
    return logits_and_gradient(model, x, y, targeted, loss)[1]


def logits_and_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, targeted: bool = False, loss: str = "margin"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits at ``x`` (detached) and ``input_gradient``, from one forward and one backward pass."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    per_image = objective(logits.float(), y, targeted, loss)
    # cross-entropy averaged over the batch, as torchattacks does (bit-identical steps); the margin summed
    total = per_image.mean() if loss == "ce" else per_image.sum()
    (grad,) = torch.autograd.grad(total, x)
    return logits.detach(), grad


def check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise AttackError(f"unknown attack loss {loss!r}; use one of {', '.join(LOSSES)}")


def objective(logits: torch.Tensor, y: torch.Tensor, targeted: bool, loss: str = "margin") -> torch.Tensor:
    """Per-image value an attack maximises. ``margin``: max over other classes of their logit minus the logit of
    ``y`` (> 0: the image is misclassified), or minus that when ``y`` is the target; ``ce``: the cross-entropy
    of ``y``, or minus it when ``y`` is the target."""
    if loss == "ce":
        return ce_objective(logits, y, targeted)
    check_loss(loss)
    return -margin(logits, y) if targeted else margin(logits, y)


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """max_{j != y} z_j - z_y per image: the Carlini-Wagner margin, positive exactly when the call is not ``y``."""
    z_y = logits.gather(1, y[:, None])[:, 0]
    others = logits.scatter(1, y[:, None], -math.inf)
    return others.max(1).values - z_y


def eps_view(eps: Eps, x: torch.Tensor) -> float | torch.Tensor:
    """A float stays a float; a per-image tensor becomes (N, 1, 1, 1) on ``x``'s device and dtype."""
    if isinstance(eps, torch.Tensor):
        return eps.detach().to(x.device, x.dtype).reshape(-1, 1, 1, 1)
    return eps


def check_eps(eps: Eps, n: int | None = None, norm: str = "linf") -> None:
    """eps in [0, 1] for L-inf, a finite radius >= 0 for L2; a tensor must hold one value per image."""
    if norm not in NORMS:
        raise AttackError(f"unknown norm {norm!r}; use one of {', '.join(NORMS)}")
    high = 1.0 if norm == "linf" else math.inf
    hint = "give it in pixel units, e.g. 2/255" if norm == "linf" else "give the L2 radius in pixel units, e.g. 0.5"
    if isinstance(eps, torch.Tensor):
        if eps.ndim != 1 or (n is not None and len(eps) != n):
            want = f"({n or 'N'},)"
            raise AttackError(f"per-image eps must have shape {want}, one value per image; got {tuple(eps.shape)}")
        ok = bool(((eps >= 0) & (eps <= high) & torch.isfinite(eps)).all())
        problem = f"per-image eps from {eps.min().item():.4g} to {eps.max().item():.4g} is" if len(eps) else ""
    else:
        ok, problem = 0 <= eps <= high and math.isfinite(eps), f"eps {eps} is"
    if not ok:
        raise AttackError(f"{problem} outside [0, {high:g}]; {hint}")


def check_inputs(x: torch.Tensor, y: torch.Tensor, eps: Eps, norm: str = "linf") -> None:
    check_eps(eps, x.shape[0] if x.ndim else None, norm)
    if x.ndim != 4 or x.shape[1] != 3:
        raise AttackError(f"images must be a (N, 3, H, W) batch, got shape {tuple(x.shape)}")
    if y.shape[0] != x.shape[0]:
        raise AttackError(f"{x.shape[0]} images but {y.shape[0]} labels")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise AttackError("images must be RGB in [0, 1] (normalisation is the model's first layer)")


def check_steps(name: str, steps: int, alpha: Eps) -> None:
    """At least one step, and a step size > 0 (a float, or one value per image)."""
    positive = bool((alpha > 0).all()) if isinstance(alpha, torch.Tensor) else alpha > 0
    if steps < 1 or not positive:
        raise AttackError(f"{name} needs steps >= 1 and alpha > 0 (got steps={steps}, alpha={alpha})")


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: Eps) -> torch.Tensor:
    """Clamp to the L-inf ball of radius ``eps`` (float or per image) around ``x`` and to [0, 1]."""
    eps = eps_view(eps, x)
    delta = torch.clamp(x_adv - x, min=-eps, max=eps)
    return torch.clamp(x + delta, min=0, max=1).detach()


def quantised(x: torch.Tensor) -> torch.Tensor:
    """Round to 8-bit levels, as a saved PNG would. For an image on the 8-bit grid and eps = k/255 the result
    stays inside the L-inf ball (rounding never crosses a grid point the ball ends on)."""
    return x.mul(255.0).round_().div_(255.0)


def uniform_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """U[0, 1) noise shaped like ``x`` from ``generator`` (the global RNG only when it is None)."""
    noise = torch.rand(x.shape, generator=generator, device=generator.device if generator else x.device)
    return noise.to(x.device, x.dtype)


def ce_objective(logits: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    """Per-image value an attack maximises: the loss of ``y``, or minus it when ``y`` is the target."""
    loss = F.cross_entropy(logits, y, reduction="none")
    return -loss if targeted else loss


class BestPoint:
    """Per image, the best point seen so far (over steps or restarts): a success (misclassified when
    untargeted, classified as the target when targeted) beats a failure, then the higher objective wins."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, targeted: bool, loss: str = "margin") -> None:
        self.x, self.y, self.targeted, self.loss = x.detach().clone(), y, targeted, loss
        self.success = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        self.objective = torch.full((len(x),), -math.inf, dtype=x.dtype, device=x.device)

    def update(self, x_new: torch.Tensor, logits: torch.Tensor, objective: torch.Tensor) -> None:
        hit = logits.argmax(1) == self.y
        success = hit if self.targeted else ~hit
        better = (success & ~self.success) | ((success == self.success) & (objective > self.objective))
        self.x[better] = x_new.detach()[better]
        self.objective = torch.where(better, objective.detach().to(x_new.dtype), self.objective)
        self.success |= success

    def score(self, model: nn.Module, x_new: torch.Tensor) -> None:
        """Evaluate ``x_new`` (one forward pass, no gradients) and keep it where it is better."""
        with torch.no_grad():
            logits = model(x_new)
        self.update(x_new, logits, objective(logits.float(), self.y, self.targeted, self.loss))
