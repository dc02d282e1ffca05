"""Adversarial weight perturbation (AWP; Wu, Xia & Wang, "Adversarial Weight Perturbation Helps Robust
Generalization", NeurIPS 2020) for the adversarial defences (``TrainConfig.awp_gamma``, ``awp_warmup``).

Before each training step the weights are moved, layer by layer, in the direction that raises the defence's loss on
the batch's adversarial examples: ``w_l += gamma * ||w_l|| * g_l / ||g_l||`` with ``g_l`` the loss gradient of
layer l (the paper's one proxy step of gradient ascent, normalised per layer). Like the paper's code, only the
multi-dimensional weights (convolutions, linear layers) move, not biases or BatchNorm. The loss gradient of the
training step is then taken at the perturbed weights and the optimizer steps; ``restore`` takes the perturbation
back out, keeping the step: ``w = w_before + (w_after_step - w_perturbed)``, which is exactly ``w_before`` when the
step changed nothing. The extra forward pass runs in train mode, as the paper's proxy does, but the BatchNorm
running statistics it would update are put back. Under DDP the gradients are averaged over the ranks first, so
every rank moves its weights alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from engine.core.config import TrainConfig

AWP_DEFENCES = ("fgsm-rs", "pgd", "trades")
TINY = 1e-20  # keeps a zero gradient from dividing by zero (such a layer does not move)


def awp_on(cfg: TrainConfig, epoch: int) -> bool:
    """Whether AWP perturbs the steps of ``epoch`` (1-based): after ``awp_warmup`` epochs, adversarial defences."""
    return cfg.awp_gamma > 0 and cfg.adversarial in AWP_DEFENCES and epoch > cfg.awp_warmup


def perturbed_weights(model: nn.Module) -> list[nn.Parameter]:
    """The parameters AWP moves: trainable weights with more than one dimension."""
    return [p for p in model.parameters() if p.requires_grad and p.ndim > 1]


@dataclass
class WeightPerturbation:
    """One step's perturbation: the weights before it and right after it, to take it back out exactly."""

    params: list[nn.Parameter]
    before: list[torch.Tensor]
    after: list[torch.Tensor]

    @torch.no_grad()
    def restore(self) -> None:
        """Remove the perturbation and keep whatever the optimizer step did since ``perturb``."""
        for p, before, after in zip(self.params, self.before, self.after):
            p.copy_(before + (p - after))


def perturb(model: nn.Module, loss_fn: Callable[[], torch.Tensor], gamma: float, all_reduce=None) -> WeightPerturbation:
    """Move ``model``'s weights by ``gamma`` of their norm, per layer, up the gradient of ``loss_fn()`` (the
    defence's loss of the batch through ``model``, the raw network); ``all_reduce`` (a callable on a list of
    tensors) averages the gradients across DDP ranks. Returns what ``restore`` needs."""
    params = perturbed_weights(model)
    buffers = [b.detach().clone() for b in model.buffers()]
    grads = torch.autograd.grad(loss_fn(), params, allow_unused=True)
    with torch.no_grad():
        for b, saved in zip(model.buffers(), buffers):
            b.copy_(saved)
        grads = [torch.zeros_like(p) if g is None else g.detach().float() for p, g in zip(params, grads)]
        if all_reduce is not None:
            all_reduce(grads)
        before = [p.detach().clone() for p in params]
        for p, g in zip(params, grads):
            p.add_((gamma * p.norm() / (g.norm() + TINY)) * g.to(p.dtype))
        after = [p.detach().clone() for p in params]
    return WeightPerturbation(params, before, after)
